/**
 * A Docker host that goes away and comes back (issue 15, test 4), with two real controller processes:
 * the third dockerd is stopped (dockerd.sh stop --fast: its containers die, its data root stays).
 * Its sessions show Ready=False HostUnreachable within 20 s; the stateless ones run elsewhere within
 * the lost-after time (12 s here) plus 30 s; the ones with a volume wait for it (HostLost). Started
 * again on the same data root, its stale containers of the sessions that moved are removed before
 * anything starts there, and the waiting sessions are Ready on it again. Never two running copies.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import {
  closeFleetClients,
  stopBackgroundLoops,
  backgroundLoop,
  ContainerSampler,
  daemonEvents,
  fleetContainers,
  fleetDaemons,
  registerFleetHosts,
  removeFleetContainers,
  startDaemon,
  stopDaemon,
  type FleetDaemon,
} from '../helpers/fleet-docker';
import {
  insertSessions,
  installationOf,
  readyOnPlacedHost,
  report,
  sessionNames,
  sessionViews,
  since,
  startReplicas,
  statelessSpec,
  stopReplicas,
  volumeSpec,
  waitSessions,
  type Replica,
  type SessionView,
} from '../helpers/fleet';
import { waitFor } from '../helpers/wait';

const LOST_AFTER_SECONDS = 12;
let db: TestDatabase;
let installation: string;
let replicas: Replica[] = [];
let victim: FleetDaemon;

beforeAll(async () => {
  victim = fleetDaemons()[2];
  await startDaemon(victim);
  await removeFleetContainers();
  db = await createTestDatabase('fleet_host_loss');
  await registerFleetHosts(db.pool);
  installation = await installationOf(db.pool);
  replicas = await startReplicas(db, 2, {
    prefix: 'loss',
    env: { SESSIONCTL_HOST_LOST_AFTER_SECONDS: String(LOST_AFTER_SECONDS) },
  });
});

afterAll(async () => {
  // A failed test may leave its samplers and watchers running: they stop before the database goes.
  await stopBackgroundLoops();
  // Whatever happened, the daemon runs again for the files after this one.
  await startDaemon(victim).catch(() => undefined);
  await stopReplicas(replicas);
  await removeFleetContainers();
  await db?.drop();
  await closeFleetClients();
});

/**
 * Reads the rows every 100 ms and keeps, per session, when it was first seen with each Ready
 * reason: HostUnreachable may last only until the host is declared lost.
 */
function watchReasons(names: string[], origin: number) {
  const firstSeen = new Map<string, Record<string, number>>();
  const loop = backgroundLoop(async () => {
    for (const view of await sessionViews(db.pool, names)) {
      const reason = view.conditions.Ready?.reason ?? '';
      const seen = firstSeen.get(view.name) ?? {};
      seen[reason] ??= since(origin);
      firstSeen.set(view.name, seen);
    }
  }, 100);
  return { firstSeen, stop: () => loop.stop() };
}

const onHost = (views: SessionView[], host: string) => views.filter((view) => view.placedHost === host);

test('a stopped dockerd: HostUnreachable, stateless sessions move, volume sessions wait; back: stale containers removed first', async () => {
  const stateless = sessionNames('moves', 6);
  const stays = sessionNames('stays', 2);
  // Stateless first (two per host), then the volume sessions pinned to the victim.
  await insertSessions(db.pool, stateless, statelessSpec());
  await waitSessions(db.pool, stateless, readyOnPlacedHost, 'the stateless sessions Ready');
  await insertSessions(db.pool, stays, { ...volumeSpec(), host: victim.name });
  await waitSessions(db.pool, stays, readyOnPlacedHost, 'the volume sessions Ready on the victim');
  const moving = onHost(await sessionViews(db.pool, stateless), victim.name).map((view) => view.name);
  expect(moving.length).toBeGreaterThanOrEqual(1);
  const affected = [...moving, ...stays];

  const sampler = new ContainerSampler({ installation, runningOnly: true }).start();
  const stopAt = Date.now();
  const reasons = watchReasons(affected, stopAt);
  await stopDaemon(victim);
  const stoppedMs = since(stopAt);

  await waitSessions(
    db.pool,
    affected,
    (view) => reasons.firstSeen.get(view.name)?.HostUnreachable !== undefined,
    'every session of the stopped host seen Ready=False HostUnreachable',
    30_000,
  );
  await waitFor(
    async () =>
      (await db.pool.query('SELECT state FROM sessionctl.hosts WHERE name = $1', [victim.name])).rows[0].state !==
      'Ready',
    {
      timeoutMs: 20_000,
      what: `${victim.name} no longer Ready`,
    },
  );
  const hostDownMs = since(stopAt);
  const moved = await waitSessions(
    db.pool,
    moving,
    (view) => readyOnPlacedHost(view) && view.placedHost !== victim.name,
    'the stateless sessions Ready on another host',
    (LOST_AFTER_SECONDS + 45) * 1000,
  );
  const movedMs = since(stopAt);
  const waiting = await waitSessions(
    db.pool,
    stays,
    (view) =>
      view.placedHost === victim.name &&
      view.conditions.Ready?.status === 'False' &&
      view.conditions.Ready.reason === 'HostLost',
    'the volume sessions waiting for their host (HostLost)',
    20_000,
  );
  await reasons.stop();

  const startAt = Date.now();
  await startDaemon(victim);
  await waitSessions(db.pool, stays, readyOnPlacedHost, 'the volume sessions Ready on their host again', 60_000);
  await waitFor(
    async () => {
      const { containers } = await fleetContainers([victim]);
      return containers.every((c) => !moving.includes(c.session)) || undefined;
    },
    { timeoutMs: 30_000, what: `the stale containers of the moved sessions removed from ${victim.name}` },
  );
  const backMs = since(startAt);
  const events = await daemonEvents(victim, startAt - 1_000, Date.now());
  const { samples, violations } = await sampler.stop();
  const firstUnreachable = Math.max(...affected.map((name) => reasons.firstSeen.get(name)!.HostUnreachable));
  report('dockerd stopped', {
    host: victim.name,
    moving,
    stoppedMs,
    firstUnreachableMs: firstUnreachable,
    hostDownMs,
    movedMs,
    backMs,
    reasons: Object.fromEntries(reasons.firstSeen),
    eventsOnReturn: events.map((event) => `${event.action} ${event.session}`),
    samples,
  });

  // From when the daemon stopped answering: a dockerd shutting down (up to 18 s here) still answers its event API.
  expect(firstUnreachable - stoppedMs).toBeLessThanOrEqual(20_000);
  expect(movedMs).toBeLessThanOrEqual((LOST_AFTER_SECONDS + 30) * 1000);
  expect(moved.every((view) => view.placedHost !== victim.name)).toBe(true);
  expect(waiting.every((view) => view.placedHost === victim.name)).toBe(true);
  expect(violations).toEqual([]);
  // On its return: every stale container destroyed before anything started there.
  const destroyedStale = events.filter((event) => event.action === 'destroy' && moving.includes(event.session));
  const firstStart = events.find((event) => event.action === 'start');
  expect(destroyedStale.map((event) => event.session).sort()).toEqual([...moving].sort());
  expect(firstStart).toBeDefined();
  expect(Math.max(...destroyedStale.map((event) => event.at))).toBeLessThanOrEqual(firstStart!.at);
  // Nothing adopted across hosts: each session's one running container is on its placed host.
  const rows = new Map((await sessionViews(db.pool)).map((view) => [view.name, view.placedHost]));
  const { containers } = await fleetContainers();
  const running = containers.filter((c) => c.installation === installation && c.state === 'running');
  expect(running.map((c) => c.session).sort()).toEqual([...stateless, ...stays].sort());
  for (const container of running) expect(container.host).toBe(rows.get(container.session));
});
