import { GOOGLE_REDIRECT_URL, formatCrdCommand, parseCrdCommand, startHostArgs } from '../../core/crd-command';
import { crdCommand, fakeCode } from '../support/fixtures';

describe('parseCrdCommand', () => {
  const code = fakeCode();

  it('accepts the Debian Linux command exactly as Google shows it', () => {
    expect(parseCrdCommand(crdCommand(code))).toEqual({ ok: true, command: { code, redirectUrl: GOOGLE_REDIRECT_URL } });
  });

  it('accepts the command wrapped over lines with shell continuations and extra spaces', () => {
    const wrapped = `  DISPLAY= /opt/google/chrome-remote-desktop/start-host \\\n    --code="${code}" \\\n    --redirect-url="${GOOGLE_REDIRECT_URL}" \\\n    --name=$(hostname)\n`;
    expect(parseCrdCommand(wrapped)).toMatchObject({ ok: true, command: { code } });
  });

  it.each([
    ['typographic quotes', crdCommand(code).replace(/"([^"]*)"/g, '\u201c$1\u201d')],
    ['a shell prompt in front', `$ ${crdCommand(code)}`],
    ['a zsh prompt and a non-breaking space', `% ${crdCommand(code).replace(' --code', '\u00a0--code')}`],
    ['a line break between flags, without a continuation', crdCommand(code).replace(' --redirect-url', '\n--redirect-url')],
    [
      'a line break inside the quoted code (a chat app wrapped it)',
      crdCommand(code).replace(code, `${code.slice(0, 25)}\r\n  ${code.slice(25)}`),
    ],
    ['dashes turned into an em dash by autocorrect', crdCommand(code).replace('--code', '\u2014code').replace('--name', '\u2013name')],
  ])('cleans up %s and takes the code as Google gave it', (_case, pasted) => {
    expect(parseCrdCommand(pasted)).toEqual({ ok: true, command: { code, redirectUrl: GOOGLE_REDIRECT_URL } });
  });

  it.each([
    [
      'inside the quoted code',
      `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code.slice(0, 30)}`,
      /stops in the middle of the code \(after "/,
    ],
    ['inside an unquoted code', `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=4/0Aan`, /stops in the middle of the code/],
    [
      'right after the code',
      `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code}"`,
      /stops right after the code: the rest \(--redirect-url=…\) was cut off/,
    ],
  ])('says a command cut off %s was cut off', (_case, pasted, message) => {
    const result = parseCrdCommand(pasted);
    expect(result).toEqual({ ok: false, message: expect.stringMatching(message) });
  });

  it('round-trips through the canonical form stored for the VM', () => {
    const parsed = parseCrdCommand(crdCommand(code));
    if (!parsed.ok) throw new Error(parsed.message);
    expect(parseCrdCommand(formatCrdCommand(parsed.command))).toEqual(parsed);
  });

  const rejected: [string, unknown, RegExp][] = [
    ['empty input', '   ', /empty/],
    ['a non-string', 42, /empty/],
    [
      'no --code',
      `DISPLAY= /opt/google/chrome-remote-desktop/start-host --redirect-url="${GOOGLE_REDIRECT_URL}" --name=$(hostname)`,
      /no --code/,
    ],
    ['the code alone', code, /code alone/],
    ['the quoted code alone', `"${code}"`, /code alone/],
    ['a truncated code', crdCommand('4/0AanRJ'), /incomplete or malformed/],
    [
      'a wrong redirect URL',
      crdCommand(code).replace(GOOGLE_REDIRECT_URL, 'https://evil.example.com/_/oauthredirect'),
      /redirect-url must be Google's/,
    ],
    ['a shell command appended', `${crdCommand(code)}; rm -rf /`, /contains "rm"/],
    [
      'a command substitution in the code',
      crdCommand('4/0Aan$(curl evil.example.com)abcdefghijklmnop'),
      /not quoted|incomplete or malformed|contains/,
    ],
    ['a backtick in the code', crdCommand('4/0Aan`id`abcdefghijklmnopqrstuvwxyz'), /incomplete or malformed/],
    ['a newline followed by another command', `${crdCommand(code)}\nrm -rf /`, /contains "rm"/],
    ['a control character', `${crdCommand(code)}\u0007`, /control character/],
    ['a pipe', `${crdCommand(code)} | sh`, /contains "\|"/],
    ['over-long input', `${crdCommand(code)}${' '.repeat(3000)}`, /longer than 2048/],
    [
      'the Windows command',
      `"%PROGRAMFILES(X86)%\\Google\\Chrome Remote Desktop\\CurrentVersion\\remoting_start_host.exe" --code="${code}" --redirect-url="${GOOGLE_REDIRECT_URL}" --name=%COMPUTERNAME%`,
      /Windows command/,
    ],
    [
      'the macOS command',
      `"/Library/PreferencePanes/ChromeRemoteDesktop.prefPane/Contents/Helpers/remoting_me2me_host" --code="${code}" --redirect-url="${GOOGLE_REDIRECT_URL}" --name=$(hostname)`,
      /^This is the macOS command; the VM runs Linux\./,
    ],
    [
      'a macOS command from an app bundle',
      `/Applications/Chrome\\ Remote\\ Desktop\\ Host.app/Contents/MacOS/remoting_me2me_host --code="${code}"`,
      /^This is the macOS command/,
    ],
    ['a duplicated --code', `${crdCommand(code)} --code="${code}"`, /--code twice/],
    ['an unknown flag', `${crdCommand(code)} --pin=123456`, /contains "--pin=123456"/],
    ['a Unicode dash before another flag', `${crdCommand(code)} \u2014pin=123456`, /contains/],
    ['a name with shell syntax', crdCommand(code).replace('--name=$(hostname)', '--name="$(reboot)"'), /not a valid host name/],
    ['no start-host at all', `--code="${code}" --redirect-url="${GOOGLE_REDIRECT_URL}"`, /not a start-host command/],
  ];

  it.each(rejected)('rejects %s with a message saying what to paste', (_case, input, reason) => {
    const result = parseCrdCommand(input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message).toMatch(reason);
    expect(result.message).toMatch(/Debian Linux/);
  });
});

describe('startHostArgs', () => {
  it('uses the VM its own name, never one from the pasted command', () => {
    const code = fakeCode();
    expect(startHostArgs({ code, redirectUrl: GOOGLE_REDIRECT_URL }, 'lablink-vm-7')).toEqual([
      `--code=${code}`,
      `--redirect-url=${GOOGLE_REDIRECT_URL}`,
      '--name=lablink-vm-7',
    ]);
  });
});
