/**
 * Health checks, the restart budget and crash backoff, on the real daemon: Docker runs the checks
 * (HEALTHCHECK) and its events drive the controller; restarts back off and are counted.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { SESSIONS_CHANNEL } from '../../src/store/listener';
import { listEvents } from '../../src/store/events';
import { requestRestart } from '../../src/store/sessions';

let db: TestDatabase;
let controller: ControllerProcess;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('restarts');
  // More workers than the largest batch below: a crash loop's due reconcile must not queue behind the
  // batch's own reconciles (on a loaded machine the batch would be created before the loop's turn came),
  // so that what the tests see is the plan's decision, not the work queue's order.
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_WORKERS: '64' } });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

test('a session whose health check starts failing is restarted after exactly failureThreshold failures', async () => {
  // The entrypoint clears the failure switch and logs each start; the check logs each failure.
  await upsert(
    db.pool,
    'sick',
    httpSpec({
      command: ['sh', '-c', 'rm -f /tmp/fail; echo start >> /tmp/log; exec httpd -f -p 8080 -h /www'],
      healthCheck: {
        exec: ['sh', '-c', 'if [ -f /tmp/fail ]; then echo fail >> /tmp/log; exit 1; fi'],
        periodSeconds: 2,
        timeoutSeconds: 1,
        failureThreshold: 3,
      },
    }),
  );
  const healthy = await waitConverged(db.pool, 'sick');
  expect(condition(healthy, 'Healthy')).toMatchObject({ status: 'True', reason: 'Healthy' });

  await execIn(healthy.status.containerId!, ['touch', '/tmp/fail']);
  const restarted = await waitFor(
    async () => {
      const view = await row(db.pool, 'sick');
      return view?.status.restartCount === 1 && condition(view, 'Ready')?.status === 'True' ? view : undefined;
    },
    { timeoutMs: 30_000, what: 'the unhealthy session to be restarted and Ready again' },
  );
  expect(restarted.status).toMatchObject({ containerId: healthy.status.containerId, lastExitReason: 'Unhealthy' });
  const log = (await execIn(restarted.status.containerId!, ['cat', '/tmp/log'])).output.trim().split('\n');
  expect(log).toEqual(['start', 'fail', 'fail', 'fail', 'start']);

  const reasons = (await listEvents(db.pool, 'sick'))
    .sort((a, b) => a.firstSeen.getTime() - b.firstSeen.getTime())
    .map((event) => event.reason);
  expect(reasons.indexOf('Unhealthy')).toBeGreaterThan(-1);
  expect(reasons.indexOf('Restarted')).toBeGreaterThan(reasons.indexOf('Unhealthy'));
  expect(await controller.metric('sessionctl_container_restarts_total', { reason: 'Unhealthy' })).toBe(1);
  expect(await controller.metric('sessionctl_health_status_total', { status: 'unhealthy' })).toBeGreaterThanOrEqual(1);
}, 60_000);

test('a crash loop backs off with growing, recorded intervals, and maxRestarts: 3 ends in Failed', async () => {
  await upsert(db.pool, 'crashy', httpSpec({ command: ['sh', '-c', 'exit 1'], ports: [], maxRestarts: 3 }));
  const failed = await waitFor(
    async () => {
      const view = await row(db.pool, 'crashy');
      return view?.status.phase === 'Failed' && view.status.observedGeneration === view.generation ? view : undefined;
    },
    { timeoutMs: 45_000, what: 'the crash-looping session to be Failed' },
  );
  expect(failed.status).toMatchObject({ restartCount: 3, lastExitCode: 1, lastExitReason: 'Error' });
  expect(condition(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'RestartLimitExceeded' });
  expect(condition(failed, 'Ready')!.message).toContain('sessionctl restart crashy');

  const events = await listEvents(db.pool, 'crashy');
  const restarts = events
    .filter((event) => event.reason === 'Restarted')
    .sort((a, b) => a.firstSeen.getTime() - b.firstSeen.getTime());
  expect(restarts.map((event) => event.message.slice(0, 'restart N'.length))).toEqual([
    'restart 1',
    'restart 2',
    'restart 3',
  ]);
  const created = events.find((event) => event.reason === 'Created')!.firstSeen.getTime();
  const times = [created, ...restarts.map((event) => event.firstSeen.getTime())];
  const intervals = times.slice(1).map((time, index) => time - times[index]);
  // First restart at once; then about 1 s and 2 s (±20% jitter): each wait longer than the one before.
  expect(intervals[0]).toBeLessThan(800);
  expect(intervals[1]).toBeGreaterThanOrEqual(750);
  expect(intervals[2]).toBeGreaterThan(intervals[1]);
  expect(events.some((event) => event.reason === 'BackOff')).toBe(true);
  expect(events.some((event) => event.reason === 'RestartLimitExceeded')).toBe(true);

  // Failed stays Failed: wake the session (a notification, as a writer's change would send) and wait
  // until the controller has picked it up and gone idle; that reconcile must not restart anything.
  const pickedUp = await controller.metric('sessionctl_notify_pickup_seconds_count');
  await db.pool.query('SELECT pg_notify($1, $2)', [
    SESSIONS_CHANNEL,
    JSON.stringify({ name: 'crashy', generation: failed.generation, at: Date.now() / 1000 }),
  ]);
  await waitFor(async () => (await controller.metric('sessionctl_notify_pickup_seconds_count')) > pickedUp, {
    what: 'the controller to pick up the wake-up',
  });
  await waitFor(
    async () =>
      (await controller.metric('workqueue_depth')) === 0 &&
      (await controller.metric('controller_runtime_active_workers')) === 0,
    { what: 'the reconcile of crashy to finish' },
  );
  expect((await row(db.pool, 'crashy'))?.status).toMatchObject({
    phase: 'Failed',
    restartCount: 3,
    containerId: failed.status.containerId,
  });
  expect((await listEvents(db.pool, 'crashy')).filter((event) => event.reason === 'Restarted')).toHaveLength(3);

  // `sessionctl restart` renews the budget: a new container at a new generation, counting from zero again.
  expect(await requestRestart(db.pool, 'crashy')).toBe(true);
  const renewed = await waitFor(
    async () => {
      const view = await row(db.pool, 'crashy');
      return view &&
        view.generation > failed.generation &&
        view.status.observedGeneration === view.generation &&
        view.status.containerId !== failed.status.containerId
        ? view
        : undefined;
    },
    { timeoutMs: 20_000, what: 'the restart request to recreate the container' },
  );
  expect(renewed.status.restartCount).toBeLessThan(3);
  expect(await controller.metric('sessionctl_restart_limit_exceeded_total')).toBeGreaterThanOrEqual(1);
}, 90_000);

test('an out-of-memory kill is recorded as OOMKilled', async () => {
  // dd allocates its 64 MiB block in one go, four times the limit.
  await upsert(
    db.pool,
    'greedy',
    httpSpec({
      command: ['sh', '-c', 'exec dd if=/dev/zero of=/dev/null bs=64M count=1'],
      ports: [],
      resources: { memory: '16Mi' },
      restartPolicy: 'Never',
    }),
  );
  const view = await waitFor(
    async () => {
      const current = await row(db.pool, 'greedy');
      // Docker may send the container's die event before its oom event; status follows the oom event.
      return current?.status.lastExitReason === 'OOMKilled' ? current : undefined;
    },
    { timeoutMs: 30_000, what: 'the greedy session to be recorded as OOMKilled' },
  );
  expect(view.status).toMatchObject({ lastExitReason: 'OOMKilled', lastExitCode: 137, phase: 'Failed' });
  expect(condition(view, 'ContainerRunning')).toMatchObject({ status: 'False', reason: 'OOMKilled' });
}, 45_000);

test('an out-of-memory kill of a restarting session is recorded as OOMKilled, even when Docker reports it after the die', async () => {
  // Each run lives a second before its OOM kill, so that an oom event Docker sends after the die still
  // finds the restarted container running, which is when the controller corrects the recorded exit.
  await upsert(
    db.pool,
    'greedy-loop',
    httpSpec({
      command: ['sh', '-c', 'sleep 1; exec dd if=/dev/zero of=/dev/null bs=64M count=1'],
      ports: [],
      resources: { memory: '16Mi' },
      restartPolicy: 'OnFailure',
      maxRestarts: 1,
    }),
  );
  const view = await waitFor(
    async () => {
      const current = await row(db.pool, 'greedy-loop');
      return current?.status.restartCount === 1 &&
        current.status.phase === 'Failed' &&
        current.status.lastExitReason === 'OOMKilled'
        ? current
        : undefined;
    },
    { timeoutMs: 45_000, what: 'the restarting greedy session to spend its budget on OOM kills' },
  );
  expect(view.status.lastExitCode).toBe(137);
  // The restart itself is counted as OOMKilled: at once when the oom event came first, by correction when it came late.
  await waitFor(
    async () => (await controller.metric('sessionctl_container_restarts_total', { reason: 'OOMKilled' })) >= 1,
    { timeoutMs: 10_000, what: 'the restart to be counted as OOMKilled' },
  );
}, 60_000);

test("a crash loop's due restart waits while the host creates other sessions, then happens", async () => {
  await upsert(db.pool, 'looper', httpSpec({ command: ['sh', '-c', 'exit 1'], ports: [] }));
  // Right after its first (immediate) restart, the next one is due in about 1 s: inside the batch below.
  await waitFor(async () => ((await row(db.pool, 'looper'))?.status.restartCount ?? 0) >= 1, {
    timeoutMs: 20_000,
    intervalMs: 20,
    what: 'the loop to have restarted once',
  });
  const batch = Array.from({ length: 40 }, (_, index) => `batch-${index}`);
  await db.pool.query('INSERT INTO sessionctl.sessions (name, spec) SELECT unnest($1::text[]), $2::jsonb', [
    batch,
    JSON.stringify(httpSpec({ ports: [] })),
  ]);
  const deferred = await waitFor(
    async () => {
      const view = await row(db.pool, 'looper');
      return condition(view!, 'ContainerRunning')?.message.includes(
        'the restart waits while the host creates other sessions',
      )
        ? { at: Date.now(), restartCount: view!.status.restartCount! }
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 20, what: "the loop's restart to wait for the batch" },
  );
  await waitFor(
    async () =>
      (
        await db.pool.query(
          `SELECT count(*)::int AS n FROM sessionctl.sessions WHERE name = ANY($1) AND status->>'phase' = 'Running'`,
          [batch],
        )
      ).rows[0].n === batch.length,
    { timeoutMs: 60_000, what: 'the batch to be Running' },
  );
  const created: number[] = [];
  for (const name of batch)
    created.push(
      ...(await listEvents(db.pool, name))
        .filter((event) => event.reason === 'Created')
        .map((event) => event.firstSeen.getTime()),
    );
  const lastCreated = Math.max(...created);
  const restartsAt = async () =>
    (await listEvents(db.pool, 'looper'))
      .filter((event) => event.reason === 'Restarted')
      .map((event) => event.firstSeen.getTime());
  expect(deferred.at).toBeLessThan(lastCreated);
  expect((await restartsAt()).filter((at) => at > deferred.at && at < lastCreated)).toEqual([]);
  expect(
    await controller.metric('sessionctl_crash_restarts_deferred_total', { reason: 'HostCreating' }),
  ).toBeGreaterThanOrEqual(1);
  // The host wakes it once quiet: the loop goes on, and its deferral made no second BackOff event.
  await waitFor(async () => ((await row(db.pool, 'looper'))?.status.restartCount ?? 0) > deferred.restartCount, {
    timeoutMs: 20_000,
    what: 'the deferred restart to happen after the batch',
  });
  await waitFor(async () => (await restartsAt()).some((at) => at >= lastCreated), {
    timeoutMs: 5_000,
    what: "the deferred restart's event",
  });
  const backOffs = (await listEvents(db.pool, 'looper')).filter((event) => event.reason === 'BackOff');
  expect(backOffs.every((event) => !event.message.includes('waits while the host'))).toBe(true);
  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = ANY($1)`, [[...batch, 'looper']]);
}, 90_000);

test('crash-loop restarts on one host are paced, one turn at a time', async () => {
  const loops = Array.from({ length: 5 }, (_, index) => `paced-${index}`);
  await db.pool.query('INSERT INTO sessionctl.sessions (name, spec) SELECT unnest($1::text[]), $2::jsonb', [
    loops,
    JSON.stringify(httpSpec({ command: ['sh', '-c', 'exit 1'], ports: [] })),
  ]);
  await waitFor(
    async () =>
      (
        await db.pool.query(
          `SELECT count(*)::int AS n FROM sessionctl.sessions WHERE name = ANY($1) AND (status->>'restartCount')::int >= 3`,
          [loops],
        )
      ).rows[0].n === loops.length,
    { timeoutMs: 60_000, what: 'every loop to have restarted three times' },
  );
  const times: number[] = [];
  for (const name of loops) {
    // The first restart after a crash is immediate and not paced; the later ones take turns.
    const later = (await listEvents(db.pool, name)).filter(
      (event) => event.reason === 'Restarted' && !event.message.startsWith('restart 1:'),
    );
    times.push(...later.map((event) => event.firstSeen.getTime()));
  }
  times.sort((a, b) => a - b);
  expect(times.length).toBeGreaterThanOrEqual(2 * loops.length);
  // Turns are 500 ms apart. Each event is written once its start returns, which varies under load,
  // so the check is on the whole span rather than on each gap (unpaced, 10 restarts span about 2.5 s).
  expect(times.at(-1)! - times[0]).toBeGreaterThanOrEqual((times.length - 1) * 450);
  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = ANY($1)`, [loops]);
}, 90_000);
