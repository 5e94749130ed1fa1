import { CheckLine, judgeExpiry, judgeVms } from '../core/go-no-go';
import type { VmSummary } from '../store/vms';
import { LabLinkClient } from './admin-client';
import { isFree, runProbe } from './probe';

export interface UrlCheckOptions {
  /** The deployment's base URL (the form's address). */
  url: string;
  adminSecret?: string;
  accessCode?: string;
  /** How many VMs the deployment should have; unknown by URL alone. */
  expectedVms?: number;
  /** How long the probe waits for start-host and for the reset; 5 minutes unless given. */
  probeTimeoutMs?: number;
  pollMs?: number;
}

/** What every answer of the web app must carry (web/security-headers.ts). */
const SECURITY_HEADERS = ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'referrer-policy'];
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const pass = (name: string, message: string): CheckLine => ({ status: 'PASS', name, message });
const fail = (name: string, message: string, action: string): CheckLine => ({ status: 'FAIL', name, message, action });

function judgeTransport(base: URL): CheckLine {
  if (base.protocol === 'https:') return pass('https', 'the form is served over HTTPS');
  if (LOCAL_HOSTS.has(base.hostname)) return pass('https', `plain HTTP on ${base.hostname}: fine on this machine only`);
  return fail(
    'https',
    `the form is served over plain HTTP at ${base.host}: participants' one-time codes would cross the network readable`,
    "Use the stack's FormUrl output (https://…).",
  );
}

/** The form answers, with the security headers. */
async function checkForm(client: LabLinkClient): Promise<CheckLine> {
  let response: Response;
  try {
    response = await client.fetch('/');
  } catch (error) {
    return fail(
      'form',
      `the form does not answer at ${client.base}: ${(error as Error).cause ?? (error as Error).message}`,
      "Check the URL (the stack's FormUrl output) and that the deployment is up.",
    );
  }
  if (response.status !== 200)
    return fail(
      'form',
      `the form answered ${response.status} at ${client.base}`,
      'See the form function’s logs (CloudWatch) or the local output.',
    );
  const missing = SECURITY_HEADERS.filter((header) => !response.headers.has(header));
  if (missing.length > 0)
    return fail(
      'form',
      `the form answers without ${missing.join(', ')}`,
      'Something in front of LabLink strips its headers: serve the form directly.',
    );
  return pass('form', 'the form answers, with its security headers');
}

async function checkAdmin(client: LabLinkClient): Promise<{ line: CheckLine; vms?: VmSummary[] }> {
  if (!client.hasAdminSecret)
    return {
      line: fail(
        'admin',
        'no admin secret to check with',
        'Set LABLINK_ADMIN_SECRET (in AWS: the secret named by the AdminSecretName output).',
      ),
    };
  const response = await client.admin('/api/vms');
  if (response.status === 401)
    return {
      line: fail(
        'admin',
        'the admin secret was refused',
        "Use the deployment's secret: local mode prints it; in AWS it is the AdminSecretName output's secret.",
      ),
    };
  if (!response.ok) return { line: fail('admin', `the VM list answered ${response.status}`, 'See the form function’s logs.') };
  return { line: pass('admin', 'the admin secret works'), vms: ((await response.json()) as { vms: VmSummary[] }).vms };
}

async function checkExpiry(client: LabLinkClient): Promise<CheckLine> {
  const response = await client.admin('/api/go-no-go');
  if (!response.ok)
    return fail(
      'expiry',
      `the deployment does not say when it expires (${response.status})`,
      'Deploy the current LabLink, then check again.',
    );
  return judgeExpiry(((await response.json()) as { expiresAt: string | null }).expiresAt);
}

/**
 * Every check a running LabLink allows by its URL and admin secret, in order; the probe only when
 * a VM is free. `adminWorks`: the admin routes answered, so the result can be stored there.
 */
export async function runUrlChecks(options: UrlCheckOptions): Promise<{ lines: CheckLine[]; adminWorks: boolean }> {
  const client = new LabLinkClient(options.url, options.adminSecret);
  const lines = [judgeTransport(client.base), await checkForm(client)];
  if (lines[1].status === 'FAIL') return { lines, adminWorks: false };
  const admin = await checkAdmin(client);
  lines.push(admin.line);
  // Without the admin routes nothing else can be read, nor the probe's VM given back.
  if (!admin.vms) return { lines, adminWorks: false };
  lines.push(await checkExpiry(client), ...judgeVms(admin.vms, options.expectedVms));
  if (admin.vms.some(isFree)) {
    try {
      lines.push(
        ...(await runProbe(client, {
          accessCode: options.accessCode,
          timeoutMs: options.probeTimeoutMs ?? 5 * 60_000,
          pollMs: options.pollMs ?? 2_000,
        })),
      );
    } catch (error) {
      lines.push(
        fail('probe', `the probe stopped: ${(error as Error).message}`, 'Check again: the next check releases a VM the probe still holds.'),
      );
    }
  } else {
    lines.push(fail('probe', 'not sent: no VM is free', 'Fix the VMs above, then check again.'));
  }
  return { lines, adminWorks: true };
}

/** Posts the result to the deployment, for its dashboard; a failure to do so is a warning, not a problem. */
export async function postResult(
  options: Pick<UrlCheckOptions, 'url' | 'adminSecret'>,
  lines: CheckLine[],
): Promise<CheckLine | undefined> {
  try {
    await new LabLinkClient(options.url, options.adminSecret).adminJson('/api/go-no-go', {
      method: 'POST',
      body: JSON.stringify({ lines }),
    });
    return undefined;
  } catch (error) {
    return {
      status: 'WARN',
      name: 'dashboard',
      message: `the result could not be stored for the dashboard: ${(error as Error).message}`,
      action: 'Nothing to fix for the workshop; check again later.',
    };
  }
}
