/**
 * Parsing of the command a participant copies from remotedesktop.google.com/headless.
 * The command is never run through a shell: only the OAuth code is taken from it,
 * checked against a strict pattern, and the agent rebuilds argv itself.
 */

export const GOOGLE_REDIRECT_URL = 'https://remotedesktop.google.com/_/oauthredirect';
export const START_HOST_PATH = '/opt/google/chrome-remote-desktop/start-host';
export const MAX_COMMAND_LENGTH = 2048;

/** Google's one-time codes: "4/" then URL-safe characters. */
const CODE_PATTERN = /^4\/[0-9A-Za-z_-]{20,512}$/;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface CrdCommand {
  code: string;
  redirectUrl: string;
}

export type CrdParseResult = { ok: true; command: CrdCommand } | { ok: false; message: string };

const WHAT_TO_PASTE =
  'Paste the whole "Debian Linux" command from remotedesktop.google.com/headless; it starts with "DISPLAY= /opt/google/chrome-remote-desktop/start-host".';

function reject(problem: string): CrdParseResult {
  return { ok: false, message: `${problem} ${WHAT_TO_PASTE}` };
}

function unquote(value: string): string | undefined {
  const quoted = /^"([^"]*)"$/.exec(value) ?? /^'([^']*)'$/.exec(value);
  if (quoted) return quoted[1];
  return /["'\\]/.test(value) ? undefined : value;
}

/** Typographic quotes that chat apps and word processors put in place of the ASCII ones. */
const SMART_DOUBLE_QUOTES = /[\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb]/g;
const SMART_SINGLE_QUOTES = /[\u2018\u2019\u201a\u201b\u2032]/g;
const UNICODE_SPACES = /[\u00a0\u2000-\u200a\u202f\u205f\u3000]/g;

/** Joins a line break inside a quoted value (a wrapped code) and turns one between words into a space. */
function joinLines(text: string): string {
  let out = '';
  let inQuotes = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (char === '"') inQuotes = !inQuotes;
    if (char === '\r' || char === '\n') {
      out = inQuotes ? out.replace(/[ \t]+$/, '') : `${out} `;
      while (/[\r\n \t]/.test(text[i + 1] ?? '')) i += 1;
      continue;
    }
    out += char;
  }
  return out;
}

/**
 * Undoes what copying and pasting does to a command whose intent is plain: typographic quotes and
 * dashes, odd spaces, a shell prompt in front, and line breaks. Anything else stays for the parser to refuse.
 */
export function cleanPastedCommand(input: string): string {
  let text = input
    .replace(SMART_DOUBLE_QUOTES, '"')
    .replace(SMART_SINGLE_QUOTES, "'")
    .replace(UNICODE_SPACES, ' ')
    .replace(/[\u2010-\u2015\u2212](?=(code|redirect-url|name)=)/g, '--')
    .replace(/\\\r?\n/g, ' ');
  text = joinLines(text.trim());
  // A prompt copied along from a terminal or a tutorial: "$ ", "% ", "# ", "> ".
  text = text.replace(/^[$%#>]\s+(?=DISPLAY=|\/opt\/google)/, '');
  return text.replace(/[ \t]+/g, ' ').trim();
}

/** The code is the last thing in the command and never finished: the copy stopped inside it. */
function cutOffProblem(text: string): string | undefined {
  const lastCode = /--code=(["']?)(4\/[0-9A-Za-z_-]*)$/.exec(text);
  if (lastCode && (lastCode[1] !== '' || !CODE_PATTERN.test(lastCode[2]))) {
    return `The command stops in the middle of the code (after "${lastCode[2].slice(-12)}"): it was cut off while copying. Copy the whole command again; it ends with --name=$(hostname).`;
  }
  const endsWithCode = /--code=(\S+)$/.exec(text);
  if (endsWithCode && !text.includes('--redirect-url=') && CODE_PATTERN.test(unquote(endsWithCode[1]) ?? '')) {
    return 'The command stops right after the code: the rest (--redirect-url=…) was cut off while copying. Copy the whole command again; it ends with --name=$(hostname).';
  }
  return undefined;
}

export function parseCrdCommand(input: unknown): CrdParseResult {
  if (typeof input !== 'string' || input.trim() === '') return reject('The Chrome Remote Desktop command is empty.');
  if (input.length > MAX_COMMAND_LENGTH)
    return reject(`The command is longer than ${MAX_COMMAND_LENGTH} characters, so it is not the one Google shows.`);
  if (/remoting_start_host\.exe|%PROGRAMFILES|%COMPUTERNAME%/i.test(input)) {
    return reject('This is the Windows command; the VM runs Linux.');
  }
  // Google's macOS command runs a host inside an app bundle or preference pane under /Library or /Applications.
  if (/\/Library\/|\/Applications\/|\.app\/Contents|\.prefPane|remoting_me2me_host/i.test(input)) {
    return reject('This is the macOS command; the VM runs Linux.');
  }
  const text = cleanPastedCommand(input);
  if (/[\u0000-\u001f\u007f]/.test(text)) return reject('The command contains a control character.');
  if (CODE_PATTERN.test(unquote(text) ?? '')) return reject('This looks like the code alone, not the whole command.');
  const cutOff = cutOffProblem(text);
  if (cutOff) return { ok: false, message: cutOff };

  const fields = new Map<string, string>();
  for (const token of text.split(/ +/)) {
    if (token === 'DISPLAY=' || token === START_HOST_PATH) continue;
    if (token === '--name=$(hostname)') continue;
    const flag = /^--(code|redirect-url|name)=(.*)$/.exec(token);
    if (!flag) return reject(`The command contains "${token.slice(0, 40)}", which Google's command does not.`);
    const [, name, rawValue] = flag;
    if (fields.has(name)) return reject(`The command gives --${name} twice.`);
    const value = unquote(rawValue);
    if (value === undefined) return reject(`The value of --${name} is not quoted the way Google quotes it.`);
    fields.set(name, value);
  }

  if (!text.includes('start-host')) return reject('This is not a start-host command.');
  const code = fields.get('code');
  if (code === undefined) return reject('The command has no --code.');
  if (!CODE_PATTERN.test(code)) {
    return reject('The code in the command is incomplete or malformed (it may have been cut off while copying).');
  }
  const redirectUrl = fields.get('redirect-url');
  if (redirectUrl !== GOOGLE_REDIRECT_URL) {
    return reject(`The --redirect-url must be Google's (${GOOGLE_REDIRECT_URL}).`);
  }
  const name = fields.get('name');
  if (name !== undefined && !NAME_PATTERN.test(name)) return reject('The --name in the command is not a valid host name.');
  return { ok: true, command: { code, redirectUrl } };
}

/** The canonical command that is stored and sent to the VM, rebuilt from parsed parts only. */
export function formatCrdCommand(command: CrdCommand): string {
  return `DISPLAY= ${START_HOST_PATH} --code="${command.code}" --redirect-url="${command.redirectUrl}" --name=$(hostname)`;
}

/** argv for start-host, built by the agent: the VM's own name, never the pasted one. */
export function startHostArgs(command: CrdCommand, vmName: string): string[] {
  return [`--code=${command.code}`, `--redirect-url=${command.redirectUrl}`, `--name=${vmName}`];
}
