/** Unit tests need nothing; integration and e2e tests need the real dockerd and Postgres that test/run.sh brings up. */
const transform = { '^.+\\.ts$': 'ts-jest' };
module.exports = {
  // Integration steps wait on real containers; each wait has its own, tighter deadline.
  testTimeout: 180_000,
  // The files that restart or freeze the shared dockerd run last (see the file).
  testSequencer: '<rootDir>/test/sequencer.js',
  projects: [
    { displayName: 'unit', testEnvironment: 'node', transform, testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      testTimeout: 180_000,
    },
    // Each file starts its own docker-registry (and token server) on 127.0.0.1 next to the dev dockerd.
    {
      displayName: 'registry',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/registry/**/*.test.ts'],
      testTimeout: 240_000,
    },
    // Operability: /health, Prometheus (promtool and a real server), the dashboard, deploy units, logs.
    {
      displayName: 'ops',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/ops/**/*.test.ts'],
      testTimeout: 180_000,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      testTimeout: 300_000,
    },
  ],
};
