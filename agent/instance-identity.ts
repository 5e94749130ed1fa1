/** The EC2 instance identity document and its signature, as the allocator checks them. */
export interface InstanceIdentity {
  document: string;
  signature: string;
}

export const DEFAULT_IMDS_URL = 'http://169.254.169.254';
const TOKEN_TTL_SECONDS = 21600;
const IMDS_TIMEOUT_MS = 5_000;

async function imdsText(response: Response, what: string): Promise<string> {
  if (!response.ok) throw new Error(`instance metadata: ${what} answered ${response.status}`);
  return (await response.text()).trim();
}

/** Reads the signed identity document through IMDSv2 (a session token first, then the data). */
export async function fetchInstanceIdentity(imdsUrl: string): Promise<InstanceIdentity> {
  const token = await imdsText(
    await fetch(`${imdsUrl}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS) },
      signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
    }),
    'token',
  );
  const get = async (path: string) =>
    imdsText(
      await fetch(`${imdsUrl}${path}`, { headers: { 'x-aws-ec2-metadata-token': token }, signal: AbortSignal.timeout(IMDS_TIMEOUT_MS) }),
      path,
    );
  const [document, signature] = await Promise.all([
    get('/latest/dynamic/instance-identity/document'),
    get('/latest/dynamic/instance-identity/signature'),
  ]);
  return { document, signature: signature.replace(/\s+/g, '') };
}
