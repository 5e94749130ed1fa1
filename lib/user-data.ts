import type { SetupPlan } from '../contract/setup-plan';
import { SETUP_RESULT_FILE } from '../contract/setup-plan';
import { HOSTNAME_PATTERN } from '../contract/wire';

/** EC2 refuses user-data above 16 KB (before base64); a test keeps the rendered script below it. */
export const EC2_USER_DATA_LIMIT_BYTES = 16 * 1024;
export const AGENT_NODE_VERSION = 'v22.12.0';
export const DESKTOP_USER = 'lablink';

/** Where the boot script's output goes; the agent ships it to the allocator (the per-VM log). */
export const BOOT_LOG_PATH = '/var/log/lablink-user-data.log';
/** Written by the agent once the allocator has accepted it: the boot script waits for it before signalling. */
export const AGENT_STATE_DIR = '/var/lib/lablink-agent';
export const REGISTERED_MARKER = `${AGENT_STATE_DIR}/registered`;
export const CRD_PACKAGE_URL = 'https://dl.google.com/linux/direct/chrome-remote-desktop_current_amd64.deb';
export const NODE_DIST_URL = 'https://nodejs.org/dist';
/** What the boot script installs from the distribution (the rehearsal's cached image carries them too). */
export const VM_PACKAGES = [
  'xfce4',
  'xfce4-terminal',
  'xfce4-goodies',
  'desktop-base',
  'dbus-x11',
  'xscreensaver',
  'curl',
  'ca-certificates',
  'xz-utils',
  'iptables',
];
/** How long the boot script waits for the agent's first accepted report. */
export const REGISTRATION_WAIT_SECONDS = 900;
/** The workshop's setup: where its plan, script and working folder go, and how long the boot script waits for its result. */
export const SETUP_PLAN_PATH = '/etc/lablink/setup.json';
export const SETUP_SCRIPT_PATH = '/opt/lablink/setup.sh';
export const SETUP_WORK_DIR = '/var/lib/lablink-setup';
export const SETUP_RESULT_PATH = `${AGENT_STATE_DIR}/${SETUP_RESULT_FILE}`;
export const SETUP_WAIT_SECONDS = 110 * 60;

/** The workshop's own software (see LabLinkConfig): the script as an S3 object read with the VM's role. */
/** The setup plan's fields as the stack ships them: the script as an S3 object the VM checks by its SHA-256. */
export interface VmSetupOptions extends Pick<SetupPlan, 'check' | 'repository' | 'repositoryRef' | 'containerImage'> {
  readonly script?: { readonly url: string; readonly sha256: string };
}

export interface ClientUserDataOptions {
  /**
   * The VM's name; none for a spare of the spares group, which claims the name of a failed VM
   * from the allocator (`agent.js claim-name`) just before its agent starts.
   */
  readonly vmName?: string;
  readonly allocatorUrl: string;
  /** The agent bundle as an S3 object (HTTPS URL), read with the VM's role; and its SHA-256, which the boot checks. */
  readonly agentUrl: string;
  readonly agentSha256: string;
  /**
   * The stack and the logical id of this VM's instance, whose CreationPolicy waits for the boot
   * script's signal; none for a spare, which CloudFormation does not wait for.
   */
  readonly stackName?: string;
  readonly signalResource?: string;
  /** The workshop's setup, run by the agent before the VM joins the pool; none when unset. */
  readonly setup?: VmSetupOptions;
}

/** The agent's setup plan: plain values from the context, never tokens, so it is written as a quoted here-document. */
function setupPlan(setup: VmSetupOptions): SetupPlan {
  return {
    ...(setup.script ? { script: SETUP_SCRIPT_PATH } : {}),
    ...(setup.check ? { check: setup.check } : {}),
    ...(setup.repository ? { repository: setup.repository } : {}),
    ...(setup.repositoryRef ? { repositoryRef: setup.repositoryRef } : {}),
    ...(setup.containerImage ? { containerImage: setup.containerImage } : {}),
    workDir: SETUP_WORK_DIR,
  };
}

/** Installs what the setup needs and hands the agent its plan; the agent runs it before its first poll. */
function renderSetupInstall(setup: VmSetupOptions): string {
  const packages = [...(setup.repository ? ['git'] : []), ...(setup.containerImage ? ['podman', 'uidmap'] : [])];
  return `
step install-setup
${
  packages.length > 0
    ? `retry 3 shared apt-get $APT install -y -q --no-install-recommends ${packages.join(' ')}
`
    : ''
}${
    setup.script
      ? `SETUP_URL=${quote(setup.script.url)}
retry 10 s3_get "$SETUP_URL" ${SETUP_SCRIPT_PATH}
echo ${quote(`${setup.script.sha256}  ${SETUP_SCRIPT_PATH}`)} | sha256sum --check --quiet
chmod 0700 ${SETUP_SCRIPT_PATH}
`
      : ''
  }cat > ${SETUP_PLAN_PATH} <<'LABLINK_SETUP_PLAN'
${JSON.stringify(setupPlan(setup))}
LABLINK_SETUP_PLAN
echo "LABLINK_SETUP=${SETUP_PLAN_PATH}" >> /etc/lablink/agent.env
`;
}

/** Waits for the agent's setup result; a failed one fails the boot naming the setup's step. */
function renderSetupWait(): string {
  return `
step setup
for _ in $(seq ${SETUP_WAIT_SECONDS / 5}); do [ -e ${SETUP_RESULT_PATH} ] && break; sleep 5; done
if ! grep -q '"ok":true' ${SETUP_RESULT_PATH} 2>/dev/null; then
  failed_step=$(field step ${SETUP_RESULT_PATH} 2>/dev/null || true)
  STEP=\${failed_step:-setup}
  echo "ERROR: $(field reason ${SETUP_RESULT_PATH} 2>/dev/null || echo "no setup result after ${SETUP_WAIT_SECONDS} s")"
  false
fi
`;
}

const SET_HOSTNAME = `
step set-hostname
hostnamectl set-hostname "$VM_NAME"
`;

/**
 * A spare's name: the allocator gives it the name of a failed VM once the signed identity
 * document shows the instance is a spare of this fleet; it answers 409 until a replacement waits,
 * and until then the spare stays warm and asks each minute (so a spare whose name was taken, or no
 * longer needed, serves the next replacement instead of idling). The name goes into agent.env, so
 * anything but a hostname fails the boot. Asked just before the agent starts: from the claim on,
 * the allocator expects the VM's heartbeats.
 */
const CLAIM_NAME = `
step claim-name
until VM_NAME=$(env LABLINK_ALLOCATOR_URL="$ALLOCATOR_URL" LABLINK_IDENTITY=ec2 node /opt/lablink/agent.js claim-name); do
  echo "no name yet; a warm spare, asking again in 60 s"
  sleep 60
done
name_pattern=${quote(HOSTNAME_PATTERN.source)}
[[ $VM_NAME =~ $name_pattern ]]
hostnamectl set-hostname "$VM_NAME"
`;

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The boot script of a client VM (Ubuntu 24.04): an XFCE desktop, Chrome Remote Desktop,
 * Node.js, a non-root desktop user, and the LabLink agent as a root systemd service that
 * runs start-host as that user (start-host refuses root). Every step is named in the log
 * (`LABLINK_STEP <name>`); downloads are retried; the end, or the first failed step, is
 * signalled to CloudFormation, so `cdk deploy` fails naming the VM and the step.
 * Values may be CloudFormation tokens.
 */
/**
 * Drops the script's own comment lines (outside here-documents, whose text is a file's): they
 * explain the boot script to its readers here, and on every VM they would only cost template size
 * (an 80-VM nested stack repeats the script 80 times) and user-data bytes.
 */
function withoutComments(script: string): string {
  let hereDocumentEnd: string | undefined;
  const kept = script.split('\n').filter((line, index) => {
    if (hereDocumentEnd !== undefined) {
      if (line === hereDocumentEnd) hereDocumentEnd = undefined;
      return true;
    }
    hereDocumentEnd = /<<-?\s*'?(\w+)'?\s*$/.exec(line)?.[1];
    return index === 0 || !/^\s*#/.test(line);
  });
  return kept.join('\n');
}

export function renderClientUserData(options: ClientUserDataOptions): string {
  return withoutComments(`#!/bin/bash
# LabLink client VM: desktop, Chrome Remote Desktop, Node.js and the LabLink agent.
set -eEuo pipefail
# Root-only files from here on: the identity document, its signature, the role's credentials.
umask 077
LOG=${BOOT_LOG_PATH}
exec > >(tee -a "$LOG") 2>&1
VM_NAME=${quote(options.vmName ?? '')}
ALLOCATOR_URL=${quote(options.allocatorUrl)}
STACK_NAME=${quote(options.stackName ?? '')}
SIGNAL_RESOURCE=${quote(options.signalResource ?? '')}
AGENT_URL=${quote(options.agentUrl)}
AGENT_SHA256=${quote(options.agentSha256)}
NODE_VERSION=${AGENT_NODE_VERSION}
DESKTOP_USER=${DESKTOP_USER}
CRD_URL=\${LABLINK_CRD_PACKAGE_URL:-${CRD_PACKAGE_URL}}
NODE_DIST=\${LABLINK_NODE_DIST_URL:-${NODE_DIST_URL}}
IMDS=http://169.254.169.254/latest
STEP=start

step() { STEP=$1; echo "LABLINK_STEP $1"; }
# shared CMD…: a command whose files everyone reads (packages, the desktop session).
shared() { (umask 022; "$@"); }
# retry N command…: N attempts, waiting 5 s, 10 s, 20 s… (at most 60 s) between them.
retry() {
  local attempts=$1 delay=5 n=1; shift
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then echo "gave up after $n attempts: $*" >&2; return 1; fi
    echo "attempt $n failed, again in $delay s: $*" >&2; sleep "$delay"
    n=$((n + 1)); delay=$((delay * 2 > 60 ? 60 : delay * 2))
  done
}
imds() {
  local token
  token=$(curl -fsS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$IMDS/api/token") &&
    curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS/$1"
}
# field NAME FILE: a string field of a JSON document (the metadata service's are flat).
field() { sed -n 's/.*"'"$1"'" *: *"\\([^"]*\\)".*/\\1/p' "$2"; }
identity() { retry 5 imds dynamic/instance-identity/document > /run/lablink-identity.json; }
# s3_get URL FILE: a GET signed (SigV4) with the instance role's credentials, which reach
# curl in a root-only config file: never on a command line, never in this log.
s3_get() {
  local creds=/run/lablink-role.json config=/run/lablink-s3.curl role status=0
  role=$(imds meta-data/iam/security-credentials/) && imds "meta-data/iam/security-credentials/$role" > "$creds" || return 1
  printf 'user = "%s:%s"\nheader = "x-amz-security-token: %s"\n' "$(field AccessKeyId "$creds")" "$(field SecretAccessKey "$creds")" "$(field Token "$creds")" > "$config"
  curl -fsS -m 120 --aws-sigv4 "aws:amz:$(field region /run/lablink-identity.json):s3" -K "$config" -o "$2" "$1" || status=$?
  rm -f "$creds" "$config"
  return "$status"
}
# signal SUCCESS|FAILURE ID: CloudFormation's SignalResource sent as cfn-signal sends it without
# credentials (a GET with the query parameters, authenticated by the signed identity document),
# so it needs no IAM permission; the authorization reaches curl in a root-only file.
signal() {
  local doc=/run/lablink-identity.json header=/run/lablink-cfn-auth.header sig status=0
  [ -n "$SIGNAL_RESOURCE" ] || return 0
  identity
  sig=$(retry 5 imds dynamic/instance-identity/signature | tr -d '\\n')
  printf 'Authorization: CFN_V1 %s:%s\\n' "$(base64 -w0 "$doc")" "$sig" > "$header"
  retry 5 curl -fsS -m 20 -G "\${LABLINK_CFN_URL:-https://cloudformation.$(field region "$doc").amazonaws.com/}" \\
    -H "@$header" -H 'Accept: application/json' -A 'CloudFormation Tools' \\
    --data-urlencode Action=SignalResource --data-urlencode "LogicalResourceId=$SIGNAL_RESOURCE" \\
    --data-urlencode "StackName=$STACK_NAME" --data-urlencode "UniqueId=$2" --data-urlencode "Status=$1" \\
    --data-urlencode ContentType=JSON --data-urlencode Version=2010-05-15 -o /dev/null || status=$?
  rm -f "$header"
  return "$status"
}
failed() {
  local status=$1
  trap - ERR
  echo "LABLINK_STEP failed"
  echo "ERROR: step $STEP failed (exit $status); see $LOG"
  # The signal's id is what the stack event shows: it names the VM and the step (64 characters at most).
  signal FAILURE "$(printf '%s' "$VM_NAME:$STEP" | cut -c1-64)" || echo "ERROR: could not signal CloudFormation"
  exit "$status"
}
trap 'failed $?' ERR
${options.vmName !== undefined ? SET_HOSTNAME : ''}
step install-desktop
export DEBIAN_FRONTEND=noninteractive
# First boot races unattended-upgrades for the package locks: wait for them instead of failing.
APT="-o DPkg::Lock::Timeout=600"
retry 10 shared apt-get $APT update -q
retry 3 shared apt-get $APT install -y -q --no-install-recommends ${VM_PACKAGES.join(' ')}

step block-metadata
# Only root (the agent) may reach the instance metadata service: the participant works as
# $DESKTOP_USER and must not take the instance role's credentials or its identity document.
# Early in every boot, before any network: so no default dependencies (they would order it after
# basic.target, which cloud-init's network stage comes before: an ordering cycle on every later boot).
cat > /etc/systemd/system/lablink-metadata-guard.service <<UNIT
[Unit]
Description=LabLink: only root reaches the instance metadata service
DefaultDependencies=no
After=systemd-modules-load.service local-fs.target
Before=network-pre.target shutdown.target lablink-agent.service
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'iptables -C OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT 2>/dev/null || iptables -I OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT'

[Install]
WantedBy=sysinit.target
UNIT
systemctl daemon-reload
systemctl enable --now lablink-metadata-guard.service

step install-crd
retry 5 curl -fsSL -m 300 -o /tmp/crd.deb "$CRD_URL"
retry 3 shared apt-get $APT install -y -q /tmp/crd.deb
rm -f /tmp/crd.deb
shared sh -c "echo 'exec /etc/X11/Xsession /usr/bin/xfce4-session' > /etc/chrome-remote-desktop-session"

step install-node
arch=$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')
retry 5 curl -fsSL -m 300 -o /tmp/node.tar.xz "$NODE_DIST/$NODE_VERSION/node-$NODE_VERSION-linux-$arch.tar.xz"
shared tar -xJf /tmp/node.tar.xz -C /opt
rm -f /tmp/node.tar.xz
ln -sf "/opt/node-$NODE_VERSION-linux-$arch/bin/node" /usr/local/bin/node

step create-desktop-user
id "$DESKTOP_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$DESKTOP_USER"
usermod -aG chrome-remote-desktop "$DESKTOP_USER"
# start-host (run as the desktop user, with DISPLAY empty) starts its service through sudo.
echo "$DESKTOP_USER ALL=(root) NOPASSWD: /usr/bin/systemctl enable --now chrome-remote-desktop@$DESKTOP_USER" > /etc/sudoers.d/lablink-crd
chmod 0440 /etc/sudoers.d/lablink-crd
# Second walls behind the reset: no cron, at or lingering for the desktop user.
shared sh -c 'for f in /etc/cron.deny /etc/at.deny; do grep -qx "$0" $f 2>/dev/null || echo "$0" >> $f; done
mkdir -p /etc/polkit-1/rules.d
echo "polkit.addRule(function(a, s) { if (a.id == \\"org.freedesktop.login1.set-self-linger\\" && s.user == \\"$0\\") return polkit.Result.NO; });" > /etc/polkit-1/rules.d/10-lablink-no-linger.rules' "$DESKTOP_USER"

step install-agent
# No secret here: the agent proves which instance it is with the signed identity document (IMDSv2).
install -d -m 0755 /etc/lablink
install -d -m 0755 /opt/lablink
identity
retry 10 s3_get "$AGENT_URL" /opt/lablink/agent.js
echo "$AGENT_SHA256  /opt/lablink/agent.js" | sha256sum --check --quiet
{
  echo "LABLINK_ALLOCATOR_URL=$ALLOCATOR_URL"
  echo "LABLINK_IDENTITY=ec2"
  echo "LABLINK_STATE_DIR=${AGENT_STATE_DIR}"
  echo "LABLINK_DESKTOP_USER=$DESKTOP_USER"
  echo "LABLINK_BOOT_LOG=$LOG"
  echo "LABLINK_LOG_FORMAT=json"
  # "Connected" for the idle release: the CRD host's own "Client connected" lines in the journal.
  echo "LABLINK_IN_USE_PROBE=crd-journal"
} > /etc/lablink/agent.env
install -d -m 0700 ${AGENT_STATE_DIR}
${options.setup ? renderSetupInstall(options.setup) : ''}${options.vmName === undefined ? CLAIM_NAME : ''}
echo "LABLINK_VM_NAME=$VM_NAME" >> /etc/lablink/agent.env

step start-agent
cat > /etc/systemd/system/lablink-agent.service <<UNIT
[Unit]
Description=LabLink agent (waits for a participant, then configures Chrome Remote Desktop)
After=network-online.target lablink-metadata-guard.service
Wants=network-online.target
Requires=lablink-metadata-guard.service

[Service]
# Root, so the participant (working as $DESKTOP_USER) cannot touch the agent; start-host runs as $DESKTOP_USER.
EnvironmentFile=/etc/lablink/agent.env
ExecStart=/usr/local/bin/node /opt/lablink/agent.js
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now lablink-agent.service

step register
for _ in $(seq ${REGISTRATION_WAIT_SECONDS}); do [ -e ${REGISTERED_MARKER} ] && break; sleep 1; done
if [ ! -e ${REGISTERED_MARKER} ]; then
  journalctl -u lablink-agent.service -n 30 --no-pager || true
  false
fi
${options.setup ? renderSetupWait() : ''}
step ready
signal SUCCESS "$(retry 5 imds meta-data/instance-id)"
`);
}
