import { AgentConfig } from './agent-config';
import { InstanceIdentity, fetchInstanceIdentity } from './instance-identity';

/** Talks to the allocator; every request proves who we are (fleet token, or the signed EC2 identity). */
export class AllocatorClient {
  /** Shared by the poll and the health reports, so the metadata service is asked once. */
  private identity: Promise<InstanceIdentity> | undefined;

  constructor(private readonly config: AgentConfig) {}

  async post(path: string, body: object, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    let proof = {};
    if (this.config.identity === 'ec2') {
      this.identity ??= fetchInstanceIdentity(this.config.imdsUrl).catch((error: unknown) => {
        this.identity = undefined;
        throw error;
      });
      proof = { identity: await this.identity };
    } else {
      headers.authorization = `Bearer ${this.config.fleetToken}`;
    }
    const response = await fetch(`${this.config.allocatorUrl}${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...body, ...proof }),
      signal,
    });
    // Refused: read the identity afresh next time (say, after a stop and start).
    if (response.status === 403) this.identity = undefined;
    return response;
  }
}
