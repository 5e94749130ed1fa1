// One real PostgreSQL for the whole run (each test file makes its own database in it),
// and a real Chromium for the browser tests, installed when missing.
import { require as tsxRequire } from 'tsx/cjs/api';

export default async function globalSetup() {
  tsxRequire('../../local/chromium.ts', import.meta.url).ensureChromium();
  const { startLocalPostgres } = tsxRequire('../../local/postgres.ts', import.meta.url);
  const postgres = await startLocalPostgres();
  globalThis.__LABLINK_POSTGRES__ = postgres;
  process.env.LABLINK_TEST_POSTGRES_URL = postgres.url;
}
