/** Quotes a CSV cell, and defuses cells a spreadsheet would run as a formula (= + - @, tab, carriage return). */
export function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) || text.startsWith("'") ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A header line and one line per row, CRLF-terminated as spreadsheets expect. */
export function csvLines(header: readonly string[], rows: unknown[][]): string {
  return [header.join(','), ...rows.map((cells) => cells.map(csvCell).join(','))].map((line) => `${line}\r\n`).join('');
}
