// One real PostgreSQL for the whole run (each test file makes its own database in it).
// Chromium is installed, when missing, by the browser tests themselves (local/chromium.ts).
import { require as tsxRequire } from 'tsx/cjs/api';
import { orphansOfThisCheckout } from './orphans.mjs';

export default async function globalSetup() {
  // Left by an earlier run, not this one: the teardown blames only new ones.
  globalThis.__LABLINK_ORPHANS_BEFORE__ = new Set(orphansOfThisCheckout().map((orphan) => orphan.pid));
  const { startLocalPostgres } = tsxRequire('../../local/postgres.ts', import.meta.url);
  const postgres = await startLocalPostgres();
  globalThis.__LABLINK_POSTGRES__ = postgres;
  process.env.LABLINK_TEST_POSTGRES_URL = postgres.url;
}
