import { execFile } from 'node:child_process';

/**
 * Whether a participant is connected to this VM's Chrome Remote Desktop host, read from what
 * the host itself tells syslog. The Linux host (remoting/host/host_event_logger_posix.cc)
 * logs under the identifier `chromoting`: "Host started for user: …" when it starts,
 * "Client connected: <id>" once a client has authenticated, "Client disconnected: <id>" when
 * it leaves. A host that died logs no disconnect, so a start forgets every earlier client.
 */
export const CRD_SYSLOG_IDENTIFIER = 'chromoting';

/** Enough for many connections since the host last started; older lines cannot change the answer. */
const JOURNAL_LINES = 2000;
const JOURNAL_TIMEOUT_MS = 15_000;

export function crdClientConnected(logLines: readonly string[]): boolean {
  const clients = new Set<string>();
  for (const line of logLines) {
    const [, event, client] = /^(Host started for user|Client connected|Client disconnected): (.*)$/.exec(line.trim()) ?? [];
    if (event === 'Host started for user') clients.clear();
    else if (event === 'Client connected') clients.add(client);
    else if (event === 'Client disconnected') clients.delete(client);
  }
  return clients.size > 0;
}

/** Reads this boot's host lines from the journal (the agent runs as root, so it may read them all). */
export function crdClientConnectedInJournal(journalctl: string): Promise<boolean> {
  const args = ['--boot', `--identifier=${CRD_SYSLOG_IDENTIFIER}`, '--output=cat', '--no-pager', '--quiet', `--lines=${JOURNAL_LINES}`];
  return new Promise((resolve, reject) => {
    // Plain lines even if the agent's environment asks for colours (journalctl colours only a terminal by default).
    execFile(
      journalctl,
      args,
      { timeout: JOURNAL_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, SYSTEMD_COLORS: '0' } },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${journalctl} failed: ${`${stderr}`.trim().split('\n').pop() || error.message}`.slice(0, 200)));
        resolve(crdClientConnected(stdout.split('\n')));
      },
    );
  });
}
