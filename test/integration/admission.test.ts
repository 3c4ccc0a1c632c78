/**
 * Host admission on the real daemon: a host with room for five sessions runs five, keeps the rest
 * Pending with Scheduled=False and the numbers, and starts the oldest waiting one when room frees.
 * A memory budget works the same way.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { managedContainers, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged, waitForEventReasons } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let controller: ControllerProcess | undefined;

beforeEach(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('admission');
});

afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  await removeManagedContainers();
  await db?.drop();
});

async function pendingWith(name: string, reason: string) {
  return waitFor(
    async () => {
      const view = await row(db.pool, name);
      return view?.status.observedGeneration === view?.generation && condition(view, 'Scheduled')?.reason === reason
        ? view
        : undefined;
    },
    { timeoutMs: 30_000, what: `${name} to be Pending with ${reason}` },
  );
}

test('with room for 5, seven sessions give 5 Running and 2 Pending; deleting one starts the oldest Pending', async () => {
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_HOST_MAX_SESSIONS: '5' } });
  const names = Array.from({ length: 7 }, (_, index) => `cap-${index + 1}`);
  for (const name of names) await upsert(db.pool, name, httpSpec({ ports: [] }));
  // Sessions that arrive together are admitted in the order the controller reaches them; which five
  // win does not matter here, only that exactly five run and the other two wait with reasons.
  const phases = await waitFor(
    async () => {
      const views = await Promise.all(names.map((name) => row(db.pool, name)));
      const observed = views.every((view) => view && view.status.observedGeneration === view.generation);
      const running = views.filter((view) => condition(view, 'Ready')?.status === 'True');
      const waiting = views.filter((view) => condition(view, 'Scheduled')?.reason === 'MaxSessionsReached');
      return observed && running.length === 5 && waiting.length === 2 ? { running, waiting } : undefined;
    },
    { timeoutMs: 60_000, what: '5 sessions Running and 2 Pending' },
  );
  for (const view of phases.waiting) {
    expect(view!.status.phase).toBe('Pending');
    expect(condition(view, 'Scheduled')).toMatchObject({ status: 'False' });
    expect(condition(view, 'Scheduled')!.message).toMatch(/runs 5 of at most 5 sessions/);
    expect(condition(view, 'Ready')).toMatchObject({ status: 'False', reason: 'MaxSessionsReached' });
  }
  expect((await managedContainers()).length).toBe(5);
  expect(await controller.metric('sessionctl_host_admitted_sessions')).toBe(5);
  const [older, younger] = phases.waiting.map((view) => view!.name).sort((a, b) => names.indexOf(a) - names.indexOf(b));
  await waitForEventReasons(db.pool, older, ['FailedScheduling']);

  await db.pool.query('DELETE FROM sessionctl.sessions WHERE name = $1', [phases.running[0]!.name]);
  await waitConverged(db.pool, older);
  // The younger one keeps waiting.
  const stillWaiting = await pendingWith(younger, 'MaxSessionsReached');
  expect(stillWaiting.status.phase).toBe('Pending');
  await waitForEventReasons(db.pool, older, ['Scheduled']);

  // Stopping a session frees its room too.
  await upsert(db.pool, phases.running[1]!.name, httpSpec({ ports: [], state: 'Stopped' }));
  await waitConverged(db.pool, younger);
}, 120_000);

test('a memory budget admits what fits and says how much is free', async () => {
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_HOST_ALLOCATABLE_MEMORY: '100Mi' } });
  await upsert(db.pool, 'mem-1', httpSpec({ ports: [], resources: { memory: '48Mi' } }));
  await waitConverged(db.pool, 'mem-1');
  await upsert(db.pool, 'mem-2', httpSpec({ ports: [], resources: { memory: '48Mi' } }));
  await waitConverged(db.pool, 'mem-2');
  await upsert(db.pool, 'mem-3', httpSpec({ ports: [], resources: { memory: '48Mi' } }));
  const waiting = await pendingWith('mem-3', 'InsufficientMemory');
  expect(condition(waiting, 'Scheduled')!.message).toBe(
    'needs 48Mi of memory but host default has 4Mi of 100Mi allocatable free; starts when memory frees, oldest first',
  );
  // A session that can never fit says so, and does not hold back smaller ones behind it.
  await upsert(db.pool, 'mem-huge', httpSpec({ ports: [], resources: { memory: '1Gi' } }));
  const never = await pendingWith('mem-huge', 'InsufficientMemory');
  expect(condition(never, 'Scheduled')!.message).toContain('more than the host can ever give');

  await db.pool.query("DELETE FROM sessionctl.sessions WHERE name = 'mem-1'");
  await waitConverged(db.pool, 'mem-3');
  expect(await controller.metric('sessionctl_host_admitted_memory_bytes')).toBe(96 * 1024 * 1024);
}, 90_000);
