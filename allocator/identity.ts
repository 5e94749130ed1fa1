import { MIN_SECRET_LENGTH, secretsEqual } from '../core/secrets';

export type IdentityResult = { ok: true; hostname: string; instanceId?: string } | { ok: false; status: 401 | 403; message: string };

export interface IdentityRequest {
  authorization: string | undefined;
  /** The hostname the VM claims in its request body. */
  hostname: string;
  /** The body's `identity` field: the EC2 instance identity document and its signature. */
  identity?: unknown;
}

export type SpareIdentityResult = { ok: true; instanceId: string } | { ok: false; status: 401 | 403; message: string };

/** Decides which VM a request comes from. */
export interface VmIdentityVerifier {
  identify(request: IdentityRequest): Promise<IdentityResult>;
  /** Which spare instance asks for a name (the body's `identity`); only EC2 identity has spares. */
  identifySpare?(identity: unknown): Promise<SpareIdentityResult>;
}

/** LabLink-compatible identity: any holder of the fleet's shared bearer token. */
export class FleetTokenVerifier implements VmIdentityVerifier {
  constructor(private readonly fleetToken: string) {
    if (fleetToken.length < MIN_SECRET_LENGTH) throw new Error(`The fleet token must be at least ${MIN_SECRET_LENGTH} characters long.`);
  }

  async identify(request: IdentityRequest): Promise<IdentityResult> {
    const match = /^Bearer (\S+)$/.exec(request.authorization ?? '');
    if (!match) return { ok: false, status: 401, message: 'Send the fleet token as "Authorization: Bearer <token>".' };
    if (!secretsEqual(match[1], this.fleetToken)) return { ok: false, status: 403, message: 'The fleet token is wrong.' };
    return { ok: true, hostname: request.hostname };
  }
}
