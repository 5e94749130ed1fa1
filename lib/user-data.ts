import { gzipSync } from 'node:zlib';
import { buildAgentBundle } from '../agent/bundle';

/** EC2 refuses user-data above 16 KB (before base64); a test keeps the rendered script below it. */
export const EC2_USER_DATA_LIMIT_BYTES = 16 * 1024;
export const AGENT_NODE_VERSION = 'v22.12.0';
export const DESKTOP_USER = 'lablink';

export interface ClientUserDataOptions {
  vmName: string;
  allocatorUrl: string;
}

let agentPayload: string | undefined;

/** The minified agent, gzipped and base64-encoded so it fits in the user-data with room to spare. */
export function agentPayloadBase64(): string {
  agentPayload ??= gzipSync(buildAgentBundle({ minify: true }), { level: 9 }).toString('base64');
  return agentPayload;
}

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The boot script of a client VM (Ubuntu 24.04): an XFCE desktop, Chrome Remote Desktop,
 * Node.js, a non-root desktop user, and the LabLink agent as a root systemd service that
 * runs start-host as that user (start-host refuses root). Values may be CloudFormation tokens.
 */
export function renderClientUserData(options: ClientUserDataOptions): string {
  const payload = agentPayloadBase64().replace(/(.{76})/g, '$1\n');
  return `#!/bin/bash
# LabLink client VM: desktop, Chrome Remote Desktop, Node.js and the LabLink agent.
set -euo pipefail
exec > >(tee -a /var/log/lablink-user-data.log) 2>&1
VM_NAME=${quote(options.vmName)}
ALLOCATOR_URL=${quote(options.allocatorUrl)}
NODE_VERSION=${AGENT_NODE_VERSION}
DESKTOP_USER=${DESKTOP_USER}

hostnamectl set-hostname "$VM_NAME"
export DEBIAN_FRONTEND=noninteractive
# First boot races unattended-upgrades for the package locks: wait for them instead of failing.
APT="-o DPkg::Lock::Timeout=600"
for attempt in $(seq 60); do apt-get $APT update -q && break; sleep 10; done
apt-get $APT install -y -q --no-install-recommends xfce4 xfce4-terminal xfce4-goodies desktop-base dbus-x11 xscreensaver curl ca-certificates xz-utils
curl -fsSL -o /tmp/crd.deb https://dl.google.com/linux/direct/chrome-remote-desktop_current_amd64.deb
apt-get $APT install -y -q /tmp/crd.deb
rm -f /tmp/crd.deb
echo 'exec /etc/X11/Xsession /usr/bin/xfce4-session' > /etc/chrome-remote-desktop-session

arch=$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')
curl -fsSL "https://nodejs.org/dist/$NODE_VERSION/node-$NODE_VERSION-linux-$arch.tar.xz" | tar -xJ -C /opt
ln -sf "/opt/node-$NODE_VERSION-linux-$arch/bin/node" /usr/local/bin/node

id "$DESKTOP_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$DESKTOP_USER"
usermod -aG chrome-remote-desktop "$DESKTOP_USER"
# start-host (run as the desktop user, with DISPLAY empty) starts its service through sudo.
echo "$DESKTOP_USER ALL=(root) NOPASSWD: /usr/bin/systemctl enable --now chrome-remote-desktop@$DESKTOP_USER" > /etc/sudoers.d/lablink-crd
chmod 0440 /etc/sudoers.d/lablink-crd

# No secret here: the agent proves which instance it is with the signed identity document (IMDSv2).
install -d -m 0755 /etc/lablink
{
  echo "LABLINK_ALLOCATOR_URL=$ALLOCATOR_URL"
  echo "LABLINK_VM_NAME=$VM_NAME"
  echo "LABLINK_IDENTITY=ec2"
  echo "LABLINK_STATE_DIR=/var/lib/lablink-agent"
  echo "LABLINK_DESKTOP_USER=$DESKTOP_USER"
  echo "LABLINK_LOG_FORMAT=json"
} > /etc/lablink/agent.env

install -d -m 0755 /opt/lablink
base64 -d <<'AGENT' | gunzip > /opt/lablink/agent.js
${payload}
AGENT
install -d -m 0700 /var/lib/lablink-agent

cat > /etc/systemd/system/lablink-agent.service <<UNIT
[Unit]
Description=LabLink agent (waits for a participant, then configures Chrome Remote Desktop)
After=network-online.target
Wants=network-online.target

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
`;
}
