/**
 * `npm run rehearse`: the boot rehearsal. Boots a Debian rootfs under systemd in a container,
 * runs the real rendered user-data in it, and checks that the VM would join a workshop: see
 * scenario.ts for what is checked. Root only (debootstrap, network namespaces, nspawn).
 *
 * The outer process prepares what needs the host (the cached rootfs, the stand-in packages,
 * a network namespace), then runs itself again inside that namespace, where the allocator,
 * its database and the stand-ins for AWS listen on the addresses the VM will use.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { AGENT_NODE_VERSION } from '../lib/user-data';
import { buildStandInCrdDeb } from './apt-repo';
import { cleanupStaleRehearsals } from './container';
import { createNetns, removeStaleNetns } from './netns';
import { buildNodeTarball } from './node-tarball';
import { VM_INTERFACE, ensureRootfs } from './rootfs';
import { RehearsalInputs, runScenarios } from './scenario';

const INPUTS_VARIABLE = 'LABLINK_REHEARSAL_INPUTS';
const REPO_ROOT = path.join(__dirname, '..');

function cacheDir(): string {
  return process.env.LABLINK_REHEARSAL_CACHE || path.join(REPO_ROOT, '.lablink/rehearsal-cache');
}

async function outer(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('The boot rehearsal needs root (debootstrap, network namespaces, systemd-nspawn).');
    return 2;
  }
  cleanupStaleRehearsals();
  await removeStaleNetns();
  const cache = cacheDir();
  const log = (line: string) => console.log(`rehearsal: ${line}`);
  const rootfs = await ensureRootfs(path.join(cache, 'rootfs'), { log });
  const crdDeb = path.join(cache, 'artifacts', 'chrome-remote-desktop_current_amd64.deb');
  await buildStandInCrdDeb(crdDeb);
  // Named as the user-data asks for it; it holds this machine's node binary.
  const nodeTarball = await buildNodeTarball(path.join(cache, 'artifacts'), { version: AGENT_NODE_VERSION });
  const netns = await createNetns({ interfaces: [VM_INTERFACE] });
  try {
    const inputs: RehearsalInputs = { rootfs, crdDeb, nodeTarball: nodeTarball.file, netnsName: netns.name, netnsPath: netns.path };
    // nsenter --net, not `ip netns exec`: that one also remounts /sys, which hides the cgroup tree nspawn needs.
    const child = spawn('nsenter', [`--net=${netns.path}`, '--', process.execPath, ...process.execArgv, __filename], {
      stdio: 'inherit',
      env: { ...process.env, [INPUTS_VARIABLE]: JSON.stringify(inputs) },
    });
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    netns.remove();
  }
}

async function main(): Promise<number> {
  const inputs = process.env[INPUTS_VARIABLE];
  return inputs ? runScenarios(JSON.parse(inputs) as RehearsalInputs) : outer();
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
