/**
 * Placement by a fleet of real controller processes over the three real dockerds (issue 15, test 1):
 * spread lands 90 sessions within one of 30 on each host; two replicas placing 200 sessions at once
 * against 50 sessions per host place exactly 150 and report the other 50 `Scheduled=False`, with no
 * host ever counted over its capacity at any moment the database could be read.
 *
 * The sessions are `state: Stopped` on the daemons' shared bridge: placement is what is tested, and
 * a created container that never starts keeps 240 sessions cheap on a 2-core machine.
 */
import type { Pool } from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import {
  backgroundLoop,
  closeFleetClients,
  registerFleetHosts,
  removeFleetContainers,
  stopBackgroundLoops,
} from '../helpers/fleet-docker';
import {
  insertSessions,
  report,
  sessionNames,
  since,
  startReplicas,
  statelessSpec,
  stopReplicas,
  waitSessions,
  type Replica,
} from '../helpers/fleet';
import { waitFor } from '../helpers/wait';

const CHEAP = statelessSpec({ state: 'Stopped' });
const ENV = { SESSIONCTL_NETWORK_MODE: 'Shared' };
let databases: TestDatabase[] = [];
let replicas: Replica[] = [];

beforeAll(async () => {
  await removeFleetContainers();
});

afterEach(async () => {
  const start = Date.now();
  await stopReplicas(replicas);
  replicas = [];
  report('replicas stopped', { ms: since(start) });
});

afterAll(async () => {
  // A failed test may leave its samplers and watchers running: they stop before the database goes.
  await stopBackgroundLoops();
  const start = Date.now();
  await removeFleetContainers();
  report('containers removed', { ms: since(start) });
  for (const db of databases) await db.drop();
  await closeFleetClients();
});

async function placedPerHost(pool: Pool): Promise<Record<string, number>> {
  const result = await pool.query<{ host: string; n: number }>(
    `SELECT placed_host AS host, count(*)::int AS n FROM sessionctl.sessions
      WHERE placed_host IS NOT NULL GROUP BY placed_host ORDER BY placed_host`,
  );
  return Object.fromEntries(result.rows.map((row) => [row.host, row.n]));
}

/**
 * Reads the placements over and over while the replicas place, and keeps the largest count each
 * host ever had and the largest total: an overcommit that a later delete or move hid still shows.
 */
function watchPlacements(pool: Pool) {
  const peak: Record<string, number> = {};
  let peakTotal = 0;
  const loop = backgroundLoop(async () => {
    const counts = await placedPerHost(pool);
    for (const [host, n] of Object.entries(counts)) peak[host] = Math.max(peak[host] ?? 0, n);
    peakTotal = Math.max(
      peakTotal,
      Object.values(counts).reduce((sum, n) => sum + n, 0),
    );
  }, 50);
  return {
    async stop() {
      await loop.stop();
      return { peak, peakTotal };
    },
  };
}

test('spread: 90 sessions over 3 hosts land within one of 30 on each', async () => {
  const db = await createTestDatabase('fleet_spread');
  databases.push(db);
  const hosts = await registerFleetHosts(db.pool);
  replicas = await startReplicas(db, 2, { prefix: 'spread', env: ENV });
  const names = sessionNames('spread', 90);
  const start = Date.now();
  await insertSessions(db.pool, names, CHEAP);
  const views = await waitSessions(
    db.pool,
    names,
    (view) => view.placedHost !== null && view.conditions.Scheduled?.status === 'True',
    '90 sessions placed and Scheduled=True',
  );
  const placedMs = since(start);
  const counts = await placedPerHost(db.pool);
  report('spread 90', { placedMs, counts });
  expect(Object.keys(counts).sort()).toEqual(hosts.map((host) => host.name).sort());
  for (const host of hosts) {
    expect(counts[host.name]).toBeGreaterThanOrEqual(29);
    expect(counts[host.name]).toBeLessThanOrEqual(31);
  }
  expect(views.filter((view) => view.placedHost !== null)).toHaveLength(90);
});

test('two replicas placing 200 sessions at once against 50 per host place exactly 150; 50 wait Scheduled=False', async () => {
  const db = await createTestDatabase('fleet_capacity');
  databases.push(db);
  const hosts = await registerFleetHosts(db.pool, { maxSessions: 50 });
  replicas = await startReplicas(db, 2, { prefix: 'cap', env: ENV });
  const names = sessionNames('cap', 200);
  const watcher = watchPlacements(db.pool);
  const start = Date.now();
  await insertSessions(db.pool, names, CHEAP);
  // Both replicas are woken by the same insert; the waiting 50 are the ones that found no room.
  const views = await waitSessions(
    db.pool,
    names,
    (view) =>
      view.placedHost !== null
        ? view.conditions.Scheduled?.status === 'True'
        : view.conditions.Scheduled?.status === 'False' && view.conditions.Scheduled.reason === 'AllHostsFull',
    '150 sessions Scheduled=True and the rest Scheduled=False AllHostsFull',
  );
  const settledMs = since(start);
  const placed = views.filter((view) => view.placedHost !== null);
  const waiting = views.filter((view) => view.placedHost === null);
  const { peak, peakTotal } = await watcher.stop();
  const latency = await Promise.all(
    replicas.map((replica) => replica.metric('sessionctl_scheduling_latency_seconds_count').catch(() => NaN)),
  );
  report('capacity 200 vs 3x50', {
    settledMs,
    placed: placed.length,
    peak,
    peakTotal,
    schedulingCountByReplica: latency,
  });

  expect(placed).toHaveLength(150);
  expect(waiting).toHaveLength(50);
  expect(await placedPerHost(db.pool)).toEqual(Object.fromEntries(hosts.map((host) => [host.name, 50])));
  expect(peakTotal).toBeLessThanOrEqual(150);
  for (const host of hosts) expect(peak[host.name]).toBeLessThanOrEqual(50);
  // The reason comes with the numbers: every host listed as full.
  const message = waiting[0].conditions.Scheduled.message ?? '';
  for (const host of hosts) expect(message).toContain(host.name);
  expect(message).toContain('50/50');

  // Room appears (one host grows to 60): ten of the waiting are placed, woken by the change.
  const grown = Date.now();
  await db.pool.query('UPDATE sessionctl.hosts SET max_sessions = 60 WHERE name = $1', [hosts[0].name]);
  await waitFor(async () => (await placedPerHost(db.pool))[hosts[0].name] === 60, {
    timeoutMs: 20_000,
    what: `ten waiting sessions placed on ${hosts[0].name} once it has room`,
  });
  report('room appears', { placedMs: since(grown) });
  expect(Object.values(await placedPerHost(db.pool)).reduce((sum, n) => sum + n, 0)).toBe(160);
});
