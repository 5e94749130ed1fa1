import { randomUUID } from 'node:crypto';
import { Sql } from './sql';
import * as statements from './statements';

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
    const rows = await this.sql.query(statements.TAKE_LEASE, { name: this.name, holder: this.holder, seconds: (3 * this.roundMs) / 1000 });
    return rows.length > 0;
  }

  /** Hands the lease over at once when a task stops; a database already gone changes nothing. */
  async release(): Promise<void> {
    await this.sql.query(statements.RELEASE_LEASE, { name: this.name, holder: this.holder }).catch(() => undefined);
  }
}
