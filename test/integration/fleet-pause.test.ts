/**
 * A replica that is paused and wakes late (issue 15, test 3): SIGSTOP the replica holding hosts while
 * it has work in hand (edited sessions being recreated), keep it stopped 30 s, SIGCONT it. Meanwhile
 * the other replica takes the hosts over (the epoch moves), finishes the work, deletes two sessions
 * and converges two more edits. The woken replica's late Docker calls must not be made (the daemons'
 * own event logs show no container change from the moment it wakes until the fleet has settled) and
 * its late writes must change nothing (every row's status as the new holder wrote it; no container
 * of a deleted session comes back; never two copies).
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import {
  closeFleetClients,
  stopBackgroundLoops,
  ContainerSampler,
  daemonEvents,
  fleetContainers,
  fleetDaemons,
  registerFleetHosts,
  removeFleetContainers,
} from '../helpers/fleet-docker';
import {
  hostsHeldBy,
  insertSessions,
  installationOf,
  leases,
  readyOnPlacedHost,
  report,
  sessionNames,
  sessionViews,
  since,
  startReplicas,
  statelessSpec,
  stopReplicas,
  waitLeasesShared,
  waitSessions,
  type Replica,
} from '../helpers/fleet';
import { waitFor } from '../helpers/wait';

const PAUSE_MS = 30_000;
let db: TestDatabase;
let installation: string;
let replicas: Replica[] = [];

beforeAll(async () => {
  await removeFleetContainers();
  db = await createTestDatabase('fleet_pause');
  await registerFleetHosts(db.pool);
  installation = await installationOf(db.pool);
  replicas = await startReplicas(db, 2, { prefix: 'pause' });
});

afterAll(async () => {
  // A failed test may leave its samplers and watchers running: they stop before the database goes.
  await stopBackgroundLoops();
  await stopReplicas(replicas);
  await removeFleetContainers();
  await db?.drop();
  await closeFleetClients();
});

async function editSessions(names: string[], value: string): Promise<void> {
  await db.pool.query(
    `UPDATE sessionctl.sessions SET spec = jsonb_set(spec, '{env,EDIT}', to_jsonb($2::text)) WHERE name = ANY($1)`,
    [names, value],
  );
}

/** Containers of `names` on the daemons made for `generation` already. */
async function recreated(names: string[], generation: number): Promise<number> {
  const { containers } = await fleetContainers();
  return containers.filter((c) => names.includes(c.session) && c.generation === generation).length;
}

test('SIGSTOP 30 s then SIGCONT: the paused replica makes no late Docker call and its late writes change nothing', async () => {
  const names = sessionNames('pause', 9);
  await insertSessions(db.pool, names, statelessSpec());
  await waitSessions(db.pool, names, readyOnPlacedHost, '9 sessions Ready');
  const before = await waitLeasesShared(db.pool, replicas);
  const [victim, other] = [...replicas].sort(
    (a, b) => hostsHeldBy(before, b.id).length - hostsHeldBy(before, a.id).length,
  );
  const victimHosts = hostsHeldBy(before, victim.id);
  const onVictim = (await sessionViews(db.pool, names))
    .filter((v) => victimHosts.includes(v.placedHost!))
    .map((v) => v.name);
  expect(onVictim.length).toBeGreaterThanOrEqual(4);
  const sampler = new ContainerSampler({ installation }).start();

  // Work in hand: the victim is recreating its edited sessions when it is stopped.
  await editSessions(onVictim, 'one');
  const inHand = await waitFor(async () => (await recreated(onVictim, 2)) || undefined, {
    timeoutMs: 30_000,
    intervalMs: 20,
    what: 'the victim to start recreating its edited sessions',
  });
  const stoppedAt = Date.now();
  victim.signal('SIGSTOP');

  // The other replica takes the hosts over with a new epoch, finishes the work, and more.
  await waitFor(
    async () => {
      const current = await leases(db.pool);
      return victimHosts.every(
        (host) => current.get(host)!.holder === other.id && current.get(host)!.epoch > before.get(host)!.epoch,
      );
    },
    { timeoutMs: 25_000, intervalMs: 100, what: `${other.id} to take ${victimHosts.join(', ')} over` },
  );
  const takeoverMs = since(stoppedAt);
  const deleted = onVictim.slice(0, 2);
  const edited = onVictim.slice(2, 4);
  const kept = names.filter((name) => !deleted.includes(name));
  await db.pool.query('DELETE FROM sessionctl.sessions WHERE name = ANY($1)', [deleted]);
  await editSessions(edited, 'two');
  await waitSessions(db.pool, kept, readyOnPlacedHost, 'the new holder to converge every session', 60_000);
  await waitFor(
    async () =>
      (await db.pool.query('SELECT 1 FROM sessionctl.sessions WHERE name = ANY($1)', [deleted])).rowCount === 0,
    { timeoutMs: 30_000, what: 'the deleted sessions to be finalized by the new holder' },
  );
  const snapshot = await sessionViews(db.pool, kept);
  const convergedMs = since(stoppedAt);

  // The pause itself is the scenario (30 s, longer if the new holder needed more), not a bound.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + PAUSE_MS - Date.now())));
  const wokeAt = Date.now();
  const pausedMs = since(stoppedAt);
  victim.signal('SIGCONT');

  // The woken replica finds out it lost its leases (its own lease metric or /health), then the fleet
  // rebalances (the woken one legitimately gets a host back under a new epoch) and settles.
  await waitFor(
    async () => {
      const lost = await victim.metric('sessionctl_lease_transitions_total', { transition: 'lost' }).catch(() => 0);
      if (lost >= victimHosts.length) return true;
      const health = await victim.health().catch(() => undefined);
      const current = await leases(db.pool);
      // Or its /health lists only hosts it holds now, at their current epoch.
      return (
        health?.replica === victim.id &&
        health.dockerHosts?.every(
          (host) => current.get(host.name)?.holder === victim.id && current.get(host.name)?.epoch === host.leaseEpoch,
        )
      );
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `${victim.id} to notice it lost ${victimHosts.join(', ')}` },
  );
  const noticedMs = since(wokeAt);
  const after = await waitLeasesShared(db.pool, replicas, 30_000);
  await waitSessions(db.pool, kept, readyOnPlacedHost, 'every session still Ready after the wake-up', 30_000);
  const settledAt = Date.now();

  const events = (await Promise.all(fleetDaemons().map((daemon) => daemonEvents(daemon, wokeAt, settledAt)))).flat();
  // Exec and health probes are reads; anything else (create, start, kill, die, destroy...) is a change.
  const changes = events.filter((event) => !/^(exec_|health_status|attach|top)/.test(event.action));
  const { samples, violations } = await sampler.stop();
  const rows = await sessionViews(db.pool, kept);
  const { containers } = await fleetContainers();
  const ours = containers.filter((c) => c.installation === installation);
  report('SIGSTOP 30 s', {
    victimHosts,
    inHand,
    takeoverMs,
    convergedMs,
    pausedMs,
    noticedMs,
    rebalancedTo: Object.fromEntries(
      [...after.values()].map((lease) => [lease.host, `${lease.holder}@${lease.epoch}`]),
    ),
    eventsAfterWake: events.length,
    samples,
  });

  expect(changes).toEqual([]);
  expect(violations).toEqual([]);
  // Every row as the new holder left it: same generation observed, same host, same Ready.
  const summary = (views: typeof rows) =>
    views.map((v) => ({
      name: v.name,
      gen: v.observedGeneration,
      host: v.statusHost,
      ready: v.conditions.Ready?.status,
    }));
  expect(summary(rows)).toEqual(summary(snapshot));
  expect(rows.filter((v) => edited.includes(v.name)).every((v) => v.observedGeneration === 3)).toBe(true);
  // The hosts' rows as well: a late host-state write of the woken replica would show here.
  const states = await db.pool.query<{ state: string }>('SELECT state FROM sessionctl.hosts');
  expect(states.rows.map((row) => row.state)).toEqual(['Ready', 'Ready', 'Ready']);
  // Nothing of a deleted session came back; one copy of each other session.
  expect(ours.filter((c) => deleted.includes(c.session))).toEqual([]);
  expect(ours.map((c) => c.session).sort()).toEqual([...kept].sort());
});
