/**
 * Rows become containers and stay converged through edits, stops and deletions — real dockerd over
 * mutual TLS, real PostgreSQL, the real controller process.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, managedContainers, removeManagedContainers, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitAllReady, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { listEvents } from '../../src/store/events';
import { SESSIONS_CHANNEL } from '../../src/store/listener';
import { writeStatus } from '../../src/store/sessions';
import type { SessionStatus } from '../../crds/status';

let db: TestDatabase;
let controller: ControllerProcess;
const names = Array.from({ length: 20 }, (_, index) => `conv-${String(index).padStart(2, '0')}`);

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('converge');
  controller = await startController({ databaseUrl: db.url });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

async function containerIds(): Promise<Map<string, string>> {
  return new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]));
}

test('20 rows inserted with plain SQL become 20 running containers', async () => {
  await db.pool.query(
    `INSERT INTO sessionctl.sessions (name, spec) SELECT name, $2::jsonb FROM unnest($1::text[]) AS name`,
    [names, JSON.stringify(httpSpec())],
  );
  await waitAllReady(db.pool, names);
  const running = (await managedContainers()).filter((info) => info.State === 'running');
  expect(running.map((info) => info.Labels['dev.sessionctl.session']).sort()).toEqual(names);
  for (const name of names) {
    const view = await row(db.pool, name);
    expect(view!.status).toMatchObject({
      observedGeneration: view!.generation,
      phase: 'Running',
      host: 'default',
      restartCount: 0,
    });
    expect(running.find((info) => info.Labels['dev.sessionctl.session'] === name)!.Id).toBe(view!.status.containerId);
  }
  // Published on loopback, and the service answers there.
  const info = running[0];
  const port = info.Ports.find((entry) => entry.PrivatePort === 8080)!;
  expect(port.IP).toBe('127.0.0.1');
  expect(await (await fetch(`http://127.0.0.1:${port.PublicPort}/healthz`)).text()).toBe('ok\n');
  // The limits in the spec are real HostConfig limits.
  const inspected = await testDocker().getContainer(info.Id).inspect();
  expect(inspected.HostConfig).toMatchObject({
    Memory: 32 * 1024 ** 2,
    NanoCpus: 200_000_000,
    Privileged: false,
    CapDrop: ['ALL'],
  });
  expect(inspected.HostConfig.SecurityOpt).toContain('no-new-privileges:true');
});

test('editing one env value recreates exactly that container', async () => {
  const before = await containerIds();
  await upsert(db.pool, 'conv-03', httpSpec({ env: { MODE: 'edited' } }));
  const view = await waitFor(
    async () => {
      const current = await row(db.pool, 'conv-03');
      return current?.generation === 2 &&
        current.status.observedGeneration === 2 &&
        condition(current, 'Ready')?.status === 'True'
        ? current
        : undefined;
    },
    { what: 'conv-03 to be Ready at generation 2' },
  );
  const after = await containerIds();
  expect(after.get('conv-03')).not.toBe(before.get('conv-03'));
  expect(after.get('conv-03')).toBe(view.status.containerId);
  for (const name of names.filter((entry) => entry !== 'conv-03')) expect(after.get(name)).toBe(before.get(name));
  const env = (await testDocker().getContainer(after.get('conv-03')!).inspect()).Config.Env;
  expect(env).toContain('MODE=edited');
  expect((await listEvents(db.pool, 'conv-03')).map((event) => event.reason)).toContain('Recreated');
});

test('state: Stopped stops the container and keeps it; Running starts the same one again, whatever its restart policy', async () => {
  const id = (await containerIds()).get('conv-04');
  // Never: a container the controller stopped on purpose is started again, not treated as a crash to leave alone.
  await upsert(db.pool, 'conv-04', httpSpec({ state: 'Stopped', restartPolicy: 'Never' }));
  const stopped = await waitConverged(db.pool, 'conv-04', 'False');
  expect(condition(stopped, 'Ready')).toMatchObject({ reason: 'Stopped' });
  expect(stopped.status.phase).toBe('Stopped');
  const [container] = await containersOf('conv-04');
  expect(container).toMatchObject({ Id: id, State: 'exited' });

  await upsert(db.pool, 'conv-04', httpSpec({ restartPolicy: 'Never' }));
  await waitConverged(db.pool, 'conv-04', 'True');
  expect((await containersOf('conv-04')).map((info) => [info.Id, info.State])).toEqual([[id, 'running']]);
  const reasons = (await listEvents(db.pool, 'conv-04')).map((event) => event.reason);
  expect(reasons).toContain('Started');
  expect(reasons).not.toContain('Restarted');
});

test('DELETE FROM sessionctl.sessions removes the container, then the row', async () => {
  const deleted = await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'conv-05'`);
  expect(deleted.rowCount).toBe(0);
  await waitFor(async () => (await row(db.pool, 'conv-05')) === undefined, { what: 'the conv-05 row to be deleted' });
  expect(await containersOf('conv-05')).toEqual([]);
  expect((await listEvents(db.pool, 'conv-05')).map((event) => event.reason)).toContain('Removed');
  // The rest are untouched and still observed at their generation.
  await waitAllReady(
    db.pool,
    names.filter((name) => name !== 'conv-05'),
  );
});

/** Docker calls other than the event stream's liveness check, which runs every 5 s by design. */
async function dockerCallsBesidesStreamChecks(): Promise<number> {
  return (
    (await controller.metric('sessionctl_docker_requests_total')) -
    (await controller.metric('sessionctl_docker_requests_total', { operation: 'events_check' }))
  );
}

test('status writes do not wake the controller: an idle controller makes no Docker calls', async () => {
  // Idle means nothing queued and no reconcile still running (a slow one finishing would count).
  await waitFor(
    async () =>
      (await controller.metric('workqueue_depth')) === 0 &&
      (await controller.metric('controller_runtime_active_workers')) === 0,
    { what: 'an empty queue and no active worker' },
  );
  const before = await dockerCallsBesidesStreamChecks();
  const reconcilesBefore = await controller.metric('controller_runtime_reconcile_total');
  const pickedUp = await controller.metric('sessionctl_notify_pickup_seconds_count');
  // A status write, as the controller makes them, then a barrier: a notification for a session that
  // does not exist. Notifications arrive in commit order, so once the controller has picked up the
  // barrier and gone idle, a notification of the status write would have been picked up before it.
  const current = (await row(db.pool, 'conv-00'))!;
  expect(await writeStatus(db.pool, 'conv-00', current.generation, current.status as SessionStatus, 'default')).toBe(
    true,
  );
  await db.pool.query('SELECT pg_notify($1, $2)', [
    SESSIONS_CHANNEL,
    JSON.stringify({ name: 'no-such-session', generation: 1, at: Date.now() / 1000 }),
  ]);
  await waitFor(async () => (await controller.metric('sessionctl_notify_pickup_seconds_count')) > pickedUp, {
    what: 'the barrier to be picked up',
  });
  await waitFor(
    async () =>
      (await controller.metric('workqueue_depth')) === 0 &&
      (await controller.metric('controller_runtime_active_workers')) === 0,
    { what: 'the barrier reconcile to finish' },
  );
  expect(await controller.metric('sessionctl_notify_pickup_seconds_count')).toBe(pickedUp + 1);
  expect(await controller.metric('controller_runtime_reconcile_total')).toBe(reconcilesBefore + 1);
  expect(await dockerCallsBesidesStreamChecks()).toBe(before);
});
