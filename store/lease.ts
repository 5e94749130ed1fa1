import { randomUUID } from 'node:crypto';
import { Sql } from './sql';

/** Takes or renews the lease :name for :holder; returns a row only when :holder has it now. */
const TAKE_LEASE = `
INSERT INTO allocator_leases (name, holder, expires_at) VALUES (:name, :holder, now() + make_interval(secs => CAST(:seconds AS float8)))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE allocator_leases.holder = EXCLUDED.holder OR allocator_leases.expires_at < now()
RETURNING holder`;

const RELEASE_LEASE = `DELETE FROM allocator_leases WHERE name = :name AND holder = :holder`;

/**
 * A named lease in the database: while several allocator tasks run (a deployment starts the
 * new one before the old one stops), only the holder runs a fleet-wide controller. Renewed
 * each round; a holder that dies loses it after three missed rounds.
 */
export class Lease {
  private readonly holder = randomUUID();

  constructor(
    private readonly sql: Sql,
    private readonly name: string,
    private readonly roundMs: number,
  ) {}

  /** Takes or renews the lease; false while another task holds it. */
  async take(): Promise<boolean> {
    const rows = await this.sql.query(TAKE_LEASE, { name: this.name, holder: this.holder, seconds: (3 * this.roundMs) / 1000 });
    return rows.length > 0;
  }

  /** Hands the lease over at once when a task stops; a database already gone changes nothing. */
  async release(): Promise<void> {
    await this.sql.query(RELEASE_LEASE, { name: this.name, holder: this.holder }).catch(() => undefined);
  }
}
