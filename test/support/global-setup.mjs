// One real PostgreSQL for the whole run; each test file makes its own database in it.
import { require as tsxRequire } from 'tsx/cjs/api';

export default async function globalSetup() {
  const { startLocalPostgres } = tsxRequire('../../local/postgres.ts', import.meta.url);
  const postgres = await startLocalPostgres();
  globalThis.__LABLINK_POSTGRES__ = postgres;
  process.env.LABLINK_TEST_POSTGRES_URL = postgres.url;
}
