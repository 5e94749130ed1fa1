// One real PostgreSQL for the whole run (each test file makes its own database in it).
// Chromium is installed, when missing, by the browser tests themselves (local/chromium.ts).
import { require as tsxRequire } from 'tsx/cjs/api';

export default async function globalSetup() {
  const { startLocalPostgres } = tsxRequire('../../local/postgres.ts', import.meta.url);
  const postgres = await startLocalPostgres();
  globalThis.__LABLINK_POSTGRES__ = postgres;
  process.env.LABLINK_TEST_POSTGRES_URL = postgres.url;
}
