/**
 * Faults of every moving part: the controller SIGKILLed mid-burst and restarted, dockerd restarted,
 * PostgreSQL restarted. Afterwards there are exactly the containers the rows ask for — no duplicates,
 * no orphans — and a controller restart recreates nothing.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { managedContainers, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { httpSpec, upsert, waitAllReady, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { isStuckContainerName } from '../../src/model/labels';

const run = promisify(execFile);
const DEV = path.resolve(__dirname, '..', '..', 'deploy', 'dev');
let db: TestDatabase;
let controller: ControllerProcess | undefined;
const names = Array.from({ length: 50 }, (_, index) => `burst-${String(index).padStart(2, '0')}`);

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('faults');
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

/** On failure, says which containers are not running, what their sessions report, and what the controller logged last. */
async function withDiagnostics<T>(wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (error) {
    const notRunning = (await managedContainers()).filter((info) => info.State !== 'running');
    const lines = [];
    for (const info of notRunning) {
      const session = info.Labels['dev.sessionctl.session'];
      const status = (await db.pool.query('SELECT status FROM sessionctl.sessions WHERE name = $1', [session])).rows[0]
        ?.status;
      lines.push(
        `${info.Names[0]} ${info.State} (${info.Status}); session status: ${JSON.stringify(status?.conditions?.map((c: { type: string; reason: string; message: string }) => `${c.type}=${c.reason}: ${c.message}`))}`,
      );
    }
    console.error(
      `containers not running:\n${lines.join('\n')}\ncontroller log tail:\n${controller?.output().split('\n').slice(-40).join('\n')}`,
    );
    throw error;
  }
}

/** Exactly one container per row, with the row's uid; nothing else managed. */
async function expectExactlyOnePerRow(): Promise<Map<string, string>> {
  const rows = await db.pool.query<{ name: string; uid: string }>('SELECT name, uid FROM sessionctl.sessions');
  const uids = new Map(rows.rows.map((entry) => [entry.name, entry.uid]));
  // Containers Docker could not remove are set aside under a .stuck- name; they serve no session.
  const containers = (await managedContainers()).filter((info) => !isStuckContainerName(info.Names[0] ?? ''));
  expect(containers).toHaveLength(uids.size);
  const bySession = new Map<string, string>();
  for (const info of containers) {
    const session = info.Labels['dev.sessionctl.session'];
    expect(bySession.has(session)).toBe(false);
    expect(info.Labels['dev.sessionctl.uid']).toBe(uids.get(session));
    bySession.set(session, info.Id);
  }
  return bySession;
}

test('SIGKILL of the controller during a burst of 50 inserts, then a restart: exactly 50 containers', async () => {
  controller = await startController({ databaseUrl: db.url });
  const spec = JSON.stringify(httpSpec());
  const inserts = Promise.all(
    names.map((name) => db.pool.query('INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2)', [name, spec])),
  );
  // Kill it while creates are in flight.
  await waitFor(async () => (await managedContainers()).length >= 5, { what: 'the first containers of the burst' });
  await controller.kill();
  await inserts;
  const createdBeforeKill = (await managedContainers()).length;
  expect(createdBeforeKill).toBeLessThan(50);

  controller = await startController({ databaseUrl: db.url });
  await waitAllReady(db.pool, names, 120_000);
  await expectExactlyOnePerRow();
});

test('a controller restart with 50 running sessions recreates none of them', async () => {
  const before = await expectExactlyOnePerRow();
  expect(await controller!.stop()).toBe(0);
  // Containers keep running while no controller runs.
  expect((await managedContainers()).every((info) => info.State === 'running')).toBe(true);
  controller = await startController({ databaseUrl: db.url });
  await waitFor(
    async () => (await controller!.metric('controller_runtime_reconcile_total', { result: 'success' })) >= 50,
    { what: '50 reconciles after the restart' },
  );
  expect(await expectExactlyOnePerRow()).toEqual(before);
  expect(await controller!.metric('sessionctl_docker_requests_total', { operation: 'create' })).toBe(0);
  expect(await controller!.metric('sessionctl_docker_requests_total', { operation: 'start' })).toBe(0);
});

test('a restart of dockerd: the controller reconnects and restarts every session', async () => {
  await run('bash', [path.join(DEV, 'dockerd.sh'), 'restart', '--fast'], { timeout: 120_000 });
  await waitFor(async () => (await controller!.metric('sessionctl_docker_host_up', { host: 'default' })) === 1, {
    what: 'the event stream to reconnect',
    timeoutMs: 60_000,
  });
  await withDiagnostics(() =>
    waitFor(
      async () =>
        (await managedContainers()).filter(
          (info) => info.State === 'running' && !isStuckContainerName(info.Names[0] ?? ''),
        ).length === 50,
      { what: 'all 50 containers running again', timeoutMs: 120_000 },
    ),
  );
  await waitAllReady(db.pool, names, 60_000);
  await expectExactlyOnePerRow();
});

test('a restart of PostgreSQL: the listener reconnects, and a row written before it is back still converges', async () => {
  const reconnectsBefore = await controller!.metric('sessionctl_listener_reconnects_total');
  await run('bash', [path.join(DEV, 'postgres.sh'), 'restart'], { timeout: 120_000 });
  // The listener is still in its reconnect backoff: this row's NOTIFY reaches nobody.
  await waitFor(() => upsert(db.pool, 'after-pg-restart', httpSpec()).then(() => true), {
    what: 'PostgreSQL to accept writes again',
    timeoutMs: 30_000,
  });
  await waitConverged(db.pool, 'after-pg-restart', 'True', 60_000);
  await waitFor(async () => (await controller!.metric('sessionctl_listener_reconnects_total')) > reconnectsBefore, {
    what: 'a counted listener reconnect',
  });
  expect(await controller!.metric('sessionctl_listener_up')).toBe(1);
  await expectExactlyOnePerRow();
});
