/**
 * apt inside the rehearsal: a local, empty repository instead of the internet, and a
 * stand-in Chrome Remote Desktop package.
 *
 * The container has no route to any mirror, so the user-data's `apt-get update` would
 * retry for ten minutes. An empty flat repository served by the rehearsal's own HTTP
 * server makes it succeed at once; the desktop packages are already in the cached
 * rootfs, so the user-data's `apt-get install` of them is a no-op.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OAUTH_REFUSAL } from '../core/go-no-go';
import { PROBE_CODE_MARKER } from '../contract/wire';
import { run } from './util';

/** URL path prefix of the repository on the rehearsal HTTP server. */
export const APT_REPO_PATH = '/debian';

/**
 * Files of an empty flat repository (`deb [trusted=yes] <url>/debian ./`), as URL
 * path -> body. Release carries the hash of the empty Packages file so apt accepts it;
 * InRelease and Release.gpg are deliberately absent (404), which `trusted=yes` allows.
 */
export function emptyAptRepoFiles(): Record<string, string> {
  const packages = '';
  const sha256 = createHash('sha256').update(packages).digest('hex');
  const release = [
    'Origin: lablink-rehearsal',
    'Label: lablink-rehearsal',
    'Suite: rehearsal',
    'Codename: rehearsal',
    `Date: ${new Date().toUTCString()}`,
    'Architectures: amd64 all',
    'SHA256:',
    ` ${sha256} ${Buffer.byteLength(packages)} Packages`,
    '',
  ].join('\n');
  return { [`${APT_REPO_PATH}/Packages`]: packages, [`${APT_REPO_PATH}/Release`]: release };
}

/**
 * Points apt in a container root at the local repository. Write it into the writable
 * layer of a rehearsal (the overlay's merged dir before boot), never into the cached
 * base: the base keeps its real mirror for rebuilds.
 */
export async function writeAptSources(rootDir: string, baseUrl: string): Promise<void> {
  const etcApt = join(rootDir, 'etc/apt');
  await writeFile(join(etcApt, 'sources.list'), `deb [trusted=yes] ${baseUrl}${APT_REPO_PATH} ./\n`);
  // Any other source would be unreachable and slow every `apt-get update` down.
  const listDir = join(etcApt, 'sources.list.d');
  await mkdir(listDir, { recursive: true });
  for (const name of await readdir(listDir)) await rm(join(listDir, name), { force: true });
  // No translation files to ask for, and fail fast instead of retrying.
  await writeFile(
    join(etcApt, 'apt.conf.d/99lablink-rehearsal'),
    'Acquire::Languages "none";\nAcquire::Retries "0";\nAcquire::http::Timeout "10";\n',
  );
}

export const CRD_STAND_IN_LOG = '/var/log/crd-stand-in/start-host.log';

/**
 * Builds `chrome-remote-desktop` stand-in .deb at outFile. Its start-host records
 * each call (argv, uid, user, the two PIN lines read from stdin) as one JSON line in
 * CRD_STAND_IN_LOG, writes a fake host#<md5(hostname)>.json like a registered host,
 * refuses root and a reused --code like the real one, and the go / no-go probe's code with
 * Google's refusal (OAUTH_REFUSAL, exit 1), as local/fake-start-host.mjs does. After "registering", it tries
 * the user-data's sudoers rule (`sudo -n systemctl enable --now
 * chrome-remote-desktop@$USER`) and records the outcome without failing on it, so a
 * rehearsal shows whether that rule works. The unit it starts only sleeps.
 */
export async function buildStandInCrdDeb(outFile: string): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'crd-stand-in-'));
  try {
    await chmod(root, 0o755); // mkdtemp makes it 0700, and the package's "./" entry would carry that.
    const file = async (path: string, body: string, mode: number): Promise<void> => {
      const full = join(root, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, body);
      await chmod(full, mode); // writeFile's mode is filtered by the umask.
    };
    await file('DEBIAN/control', CONTROL, 0o644);
    await file('DEBIAN/postinst', POSTINST, 0o755);
    await file('opt/google/chrome-remote-desktop/start-host', START_HOST, 0o755);
    await file('lib/systemd/system/chrome-remote-desktop@.service', SERVICE, 0o644);
    await mkdir(dirname(outFile), { recursive: true });
    // --root-owner-group: files belong to root in the package, whoever builds it.
    await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, outFile], { timeoutMs: 60_000 });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const CONTROL = `Package: chrome-remote-desktop
Version: 999.0.0-lablink-rehearsal
Architecture: all
Maintainer: LabLink rehearsal <rehearsal@lablink.invalid>
Section: misc
Priority: optional
Description: Stand-in for Chrome Remote Desktop (LabLink boot rehearsal only)
 Records how start-host is called instead of registering a host with Google.
`;

const POSTINST = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  # The real package creates this group; the user-data adds the desktop user to it.
  getent group chrome-remote-desktop >/dev/null || groupadd --system chrome-remote-desktop
  # start-host runs as the desktop user and must be able to write its record here.
  install -d -m 1777 /var/log/crd-stand-in
fi
exit 0
`;

const SERVICE = `[Unit]
Description=Chrome Remote Desktop stand-in for %i (LabLink boot rehearsal)

[Service]
User=%i
ExecStart=/bin/sh -c 'echo "started as $(id -un)" >> /var/log/crd-stand-in/service.log; exec sleep infinity'

[Install]
WantedBy=multi-user.target
`;

const START_HOST = `#!/bin/bash
# Stand-in for Chrome Remote Desktop's start-host (LabLink boot rehearsal).
# Flags like the real one: --code= --redirect-url= --name= --pin=; without --pin it asks twice on stdin.
set -u
LOG_DIR=/var/log/crd-stand-in
LOG="$LOG_DIR/start-host.log"
args=("$@")
stdin_lines=()
sudo_exit=null

json_str() {
  local s=$1
  s=\${s//\\\\/\\\\\\\\}; s=\${s//\\"/\\\\\\"}
  s=\${s//$'\\n'/\\\\n}; s=\${s//$'\\r'/\\\\r}; s=\${s//$'\\t'/\\\\t}
  printf '"%s"' "$s"
}
json_arr() {
  local sep='' x
  printf '['
  for x in "$@"; do printf '%s' "$sep"; json_str "$x"; sep=','; done
  printf ']'
}
# One JSON line per call, then exit with the given status.
finish() {
  local result=$1 status=$2 display=null
  [ -n "\${DISPLAY+x}" ] && display=$(json_str "$DISPLAY")
  mkdir -p "$LOG_DIR" 2>/dev/null
  printf '{"time":%s,"uid":%s,"user":%s,"home":%s,"display":%s,"argv":%s,"stdin":%s,"sudoExit":%s,"result":%s,"exit":%s}\\n' \\
    "$(json_str "$(date -u +%FT%TZ)")" "$(id -u)" "$(json_str "$(id -un)")" "$(json_str "\${HOME-}")" "$display" \\
    "$(json_arr "\${args[@]}")" "$(json_arr "\${stdin_lines[@]}")" "$sudo_exit" "$(json_str "$result")" "$status" >> "$LOG" \\
    || echo "start-host stand-in: cannot write $LOG" >&2
  exit "$status"
}

if [ "$(id -u)" -eq 0 ]; then
  echo "Refusing to run start-host as root: run it as the user who will use the desktop." >&2
  finish refused-root 1
fi

code='' name='' pin=''
for arg in "$@"; do
  case $arg in
    --code=*) code=\${arg#--code=} ;;
    --name=*) name=\${arg#--name=} ;;
    --pin=*) pin=\${arg#--pin=} ;;
    --redirect-url=*) ;;
    *) echo "start-host: unknown argument: $arg" >&2; finish bad-argument 1 ;;
  esac
done
[ -n "$code" ] || { echo "start-host: --code is required in this stand-in" >&2; finish no-code 1; }

if [ -z "$pin" ]; then
  printf 'Enter a PIN of at least six digits: '
  IFS= read -r pin1 || pin1=''
  stdin_lines+=("$pin1")
  printf '\\nEnter the same PIN again: '
  IFS= read -r pin2 || pin2=''
  stdin_lines+=("$pin2")
  echo
  [ "$pin1" = "$pin2" ] || { echo "PINs do not match." >&2; finish pin-mismatch 1; }
  pin=$pin1
fi
[[ $pin =~ ^[0-9]{6,}$ ]] || { echo "The PIN must be at least six digits." >&2; finish bad-pin 1; }

# Google never issued the go / no-go probe's code: the real start-host fails on it with this line.
if [[ $code == *${PROBE_CODE_MARKER}* ]]; then
  echo "${OAUTH_REFUSAL}" >&2
  finish oauth-refused 1
fi

# Authorization codes are single-use: a second start-host with the same code fails.
used="$LOG_DIR/used-codes"
if [ -f "$used" ] && grep -qxF -- "$code" "$used"; then
  echo "OAuth error: the authorization code has already been used." >&2
  finish code-used 1
fi
echo "$code" >> "$used" 2>/dev/null

host_name=\${name:-$(hostname)}
config="$HOME/.config/chrome-remote-desktop"
mkdir -p "$config" && chmod 700 "$config"
hash=$(printf '%s' "$(hostname)" | md5sum | cut -d' ' -f1)
printf '{"host_id":"%s","host_name":%s,"host_owner":"stand-in@lablink.invalid","private_key":"stand-in"}\\n' \\
  "$(cat /proc/sys/kernel/random/uuid)" "$(json_str "$host_name")" > "$config/host#$hash.json"

# The real host then starts its service through sudo; try the rule the user-data installed.
sudo -n /usr/bin/systemctl enable --now "chrome-remote-desktop@$(id -un)" </dev/null >/dev/null 2>&1
sudo_exit=$?
echo "Host registered (stand-in)."
finish registered 0
`;
