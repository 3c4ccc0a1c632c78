/**
 * The operator endpoints of a running controller: `/health` reports every dependency with real
 * numbers, `/readyz` stays false until the first full resync has been reconciled, and a dead
 * Docker host shows as unreachable instead of hanging the page.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { freePort, startController, type ControllerProcess } from '../helpers/controller';
import { removeManagedContainers } from '../helpers/docker';
import { httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
const databases: TestDatabase[] = [];
const controllers: ControllerProcess[] = [];

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('health');
});

afterAll(async () => {
  for (const controller of controllers) await controller.stop();
  await removeManagedContainers();
  await db?.drop();
  for (const database of databases) await database.drop();
});

interface Health {
  status: string;
  ready: boolean;
  version: string;
  database: { reachable: boolean; latencyMs: number; sessionsByPhase: Record<string, number> };
  dockerHosts: Array<{
    name: string;
    reachable: boolean;
    engineVersion?: string;
    latencyMs?: number;
    containersManaged: number;
    eventsConnected: boolean;
    error?: string;
  }>;
  listener: { connected: boolean; lastNotificationAt: string | null };
  queue: { depth: number; inFlight: number; oldestItemAgeSeconds: number | null };
}

test('/readyz turns 200 only once the rows of the first resync are reconciled, and /health reports every dependency', async () => {
  // Rows that exist before the controller starts: readiness must wait for them to be reconciled.
  for (const name of ['health-a', 'health-b']) await upsert(db.pool, name, httpSpec());
  const controller = await startController({ databaseUrl: db.url, waitReady: false });
  controllers.push(controller);
  // Every answer before the first 200 is a 503 (never an error page or a connection reset).
  const answers: number[] = [];
  await waitFor(
    async () => {
      const response = await fetch(`${controller.metricsUrl}/readyz`);
      answers.push(response.status);
      return response.status === 200;
    },
    { timeoutMs: 60_000, intervalMs: 20, what: '/readyz' },
  );
  expect(answers.slice(0, -1).filter((status) => status !== 503)).toEqual([]);
  // At the first 200, both rows had been reconciled: status is written for their generation.
  for (const name of ['health-a', 'health-b']) {
    const view = await row(db.pool, name);
    expect(view?.status.observedGeneration).toBe(view?.generation);
  }
  expect(await controller.metric('sessionctl_ready')).toBe(1);
  const metrics = await (await fetch(`${controller.metricsUrl}/metrics`)).text();
  expect(metrics).toMatch(/^sessionctl_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);

  await waitConverged(db.pool, 'health-a');
  await waitConverged(db.pool, 'health-b');
  // A write after start makes the listener's last notification visible.
  await upsert(db.pool, 'health-c', httpSpec());
  await waitConverged(db.pool, 'health-c');
  const health = await waitFor(
    async () => {
      const response = await fetch(`${controller.metricsUrl}/health`);
      const body = (await response.json()) as Health;
      return response.status === 200 && body.database.sessionsByPhase.Running === 3 ? body : undefined;
    },
    { timeoutMs: 30_000, what: '/health to count three Running sessions' },
  );
  expect(health.status).toBe('ok');
  expect(health.ready).toBe(true);
  expect(health.version).toMatch(/^\d+\.\d+\.\d+/);
  expect(health.database.reachable).toBe(true);
  expect(health.database.latencyMs).toBeGreaterThan(0);
  expect(health.dockerHosts).toHaveLength(1);
  const [host] = health.dockerHosts;
  expect(host.reachable).toBe(true);
  expect(host.engineVersion).toMatch(/^\d+\.\d+/);
  expect(host.latencyMs).toBeGreaterThan(0);
  expect(host.containersManaged).toBe(3);
  expect(host.eventsConnected).toBe(true);
  expect(health.listener.connected).toBe(true);
  expect(Date.parse(health.listener.lastNotificationAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
  expect(health.queue).toEqual({ depth: 0, inFlight: expect.any(Number), oldestItemAgeSeconds: null });
});

test('with its Docker host unreachable the controller stays unready and /health says which dependency failed', async () => {
  // A TLS port where nothing listens: the first container list never succeeds. Its own database, so
  // that this daemon is the controller's only host (in a fleet, a replica runs the hosts it holds).
  const deadPort = await freePort();
  const deadDb = await createTestDatabase('healthdead');
  databases.push(deadDb);
  const controller = await startController({
    databaseUrl: deadDb.url,
    waitReady: false,
    env: { DOCKER_HOST: `tcp://127.0.0.1:${deadPort}` },
  });
  controllers.push(controller);
  const health = await waitFor(
    async () => {
      const response = await fetch(`${controller.metricsUrl}/health`);
      return response.status === 503 ? ((await response.json()) as Health) : undefined;
    },
    { timeoutMs: 30_000, what: '/health of the controller whose Docker host is down' },
  );
  expect(health.status).toBe('degraded');
  expect(health.ready).toBe(false);
  expect(health.database.reachable).toBe(true);
  expect(health.dockerHosts[0].reachable).toBe(false);
  expect(health.dockerHosts[0].error).toMatch(/ECONNREFUSED/);
  // Still unready after the controller has tried the list again and failed again: readiness waits
  // for a successful list, not for a timer.
  const failedLists = async () =>
    (await controller.metric('sessionctl_docker_requests_total', { operation: 'list' })) -
    (await controller.metric('sessionctl_docker_requests_total', { operation: 'list', code: 'ok' }));
  const failedBefore = await failedLists();
  await waitFor(async () => (await failedLists()) >= failedBefore + 2, {
    timeoutMs: 60_000,
    what: 'two more failed container lists',
  });
  const readyz = await fetch(`${controller.metricsUrl}/readyz`);
  expect(readyz.status).toBe(503);
  expect(await controller.metric('sessionctl_ready')).toBe(0);
  expect((await fetch(`${controller.metricsUrl}/healthz`)).status).toBe(200);
});
