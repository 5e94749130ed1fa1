import { CheckLine, CheckReport, verdictLine } from '../core/go-no-go';

/** One line per check (`PASS`, `WARN`, `FAIL`, what was found), what to do under each that is not a pass, then the verdict. */
export function formatReport(report: CheckReport): string {
  const width = Math.max(...report.lines.map((line) => line.name.length));
  const text = (line: CheckLine) =>
    `${line.status}  ${line.name.padEnd(width)}  ${line.message}${line.action ? `\n${' '.repeat(width + 8)}→ ${line.action}` : ''}`;
  return `${report.lines.map(text).join('\n')}\n${verdictLine(report)}\n`;
}
