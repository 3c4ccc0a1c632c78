/**
 * Placement in the store (src/store/placement.ts, migration 015) against the real PostgreSQL:
 * several connection pools place at once, as several controller replicas would, and no host is
 * ever overcommitted; spread and bin-pack; selector, pinned host, cordon; idempotence.
 */
import type { Pool } from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { createPool } from '../../src/store/db';
import { setCordoned, upsertHosts, listHosts, type HostWrite } from '../../src/store/hosts';
import {
  listUnplacedSessions,
  placeSession,
  placeSessions,
  unplaceSession,
  type PlacementResult,
} from '../../src/store/placement';
import { deleteSessions, upsertSessions } from '../../src/store/sessions';

let db: TestDatabase;
const pools: Pool[] = [];
const GiB = 1024 ** 3;

beforeAll(async () => {
  db = await createTestDatabase('placement');
  // Four "replicas", each with its own pool of connections.
  for (let i = 0; i < 4; i++) pools.push(createPool(db.url, { max: 4, applicationName: `placer-${i}` }));
});

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await db?.drop();
});

/** A clean slate per test: no sessions, the given hosts. */
async function fleet(hosts: Array<Partial<HostWrite> & { name: string }>, sessions: string[]): Promise<void> {
  await db.pool.query('DELETE FROM sessionctl.sessions');
  await db.pool.query('DELETE FROM sessionctl.hosts');
  await upsertHosts(
    db.pool,
    hosts.map((host, index) => ({
      labels: {},
      endpoint: `tcp://127.0.0.1:${42000 + index}`,
      certDir: '/etc/sessionctl/certs',
      ...host,
    })),
  );
  await upsertSessions(
    db.pool,
    sessions.map((name) => ({ name, labels: {}, spec: { image: 'sessionctl/base:dev' } })),
  );
}

async function placedPerHost(): Promise<Record<string, number>> {
  const result = await db.pool.query<{ host: string; count: string }>(
    'SELECT placed_host AS host, count(*) AS count FROM sessionctl.sessions WHERE placed_host IS NOT NULL GROUP BY 1',
  );
  return Object.fromEntries(result.rows.map((row) => [row.host, Number(row.count)]));
}

const names = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(3, '0')}`);

/**
 * Each session placed in its own transaction, twice (by two different pools), all pools at once. Each
 * pool runs as many workers as it has connections, as a replica's worker pool would: nothing waits
 * for a connection, every worker is in a placement transaction or about to start one.
 */
async function placeConcurrently(sessions: string[], memoryBytes: number): Promise<PlacementResult[]> {
  const queues = pools.map(() => [] as string[]);
  sessions.forEach((session, index) => {
    queues[index % pools.length].push(session);
    queues[(index + 1) % pools.length].push(session);
  });
  const results: PlacementResult[] = [];
  await Promise.all(
    pools.flatMap((pool, index) =>
      Array.from({ length: 4 }, async () => {
        for (let session = queues[index].shift(); session; session = queues[index].shift())
          results.push(await placeSession(pool, { session, memoryBytes }));
      }),
    ),
  );
  return results;
}

test('4 pools placing 200 sessions (each twice) against 3 hosts of 50 place exactly 150; 50 are AllHostsFull', async () => {
  const sessions = names(200, 'burst');
  await fleet(
    ['h1', 'h2', 'h3'].map((name) => ({ name, maxSessions: 50 })),
    sessions,
  );
  const results = await placeConcurrently(sessions, GiB);

  expect(await placedPerHost()).toEqual({ h1: 50, h2: 50, h3: 50 });
  const placed = new Set(results.flatMap((result) => (result.outcome === 'placed' ? [result.session] : [])));
  expect(placed.size).toBe(150);
  // Chosen once: no session was placed by both of its placers.
  expect(results.filter((result) => result.outcome === 'placed')).toHaveLength(150);
  const waiting = sessions.filter((session) => !placed.has(session));
  expect(waiting).toHaveLength(50);
  expect((await listUnplacedSessions(db.pool)).map((row) => row.name).sort()).toEqual(waiting);
  for (const session of waiting) {
    const outcomes = results.filter((result) => result.session === session);
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ outcome: 'unscheduled', reason: 'AllHostsFull', hosts: 3, matching: 3, full: 3 });
      expect((outcome as { message: string }).message).toContain('h1 50/50 sessions');
    }
  }
  const hosts = await listHosts(db.pool);
  expect(hosts.map((host) => [host.name, host.sessions, host.allocatedMemoryBytes])).toEqual([
    ['h1', 50, 50 * GiB],
    ['h2', 50, 50 * GiB],
    ['h3', 50, 50 * GiB],
  ]);
});

test('90 sessions over 3 unlimited hosts, placed by 4 pools at once, spread within one of 30 each', async () => {
  const sessions = names(90, 'spread');
  await fleet([{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }], sessions);
  await placeConcurrently(sessions, GiB);
  const perHost = await placedPerHost();
  expect(Object.values(perHost).reduce((sum, count) => sum + count, 0)).toBe(90);
  for (const host of ['h1', 'h2', 'h3']) expect(Math.abs(perHost[host] - 30)).toBeLessThanOrEqual(1);
});

test('memory capacity: 4Gi sessions on hosts of 10Gi allocatable fit two each; freeing one makes room', async () => {
  const sessions = names(5, 'mem');
  await fleet(
    [
      { name: 'h1', allocatableMemoryBytes: 10 * GiB },
      { name: 'h2', allocatableMemoryBytes: 10 * GiB },
    ],
    sessions,
  );
  const results = await placeSessions(
    pools[0],
    sessions.map((session) => ({ session, memoryBytes: 4 * GiB })),
  );
  expect(results.map((result) => result.outcome)).toEqual(['placed', 'placed', 'placed', 'placed', 'unscheduled']);
  expect(results[4]).toMatchObject({ reason: 'AllHostsFull', message: expect.stringContaining('8Gi/10Gi') });
  const first = results[0] as { host: string };
  const uid = (await db.pool.query('SELECT uid FROM sessionctl.sessions WHERE name = $1', [sessions[0]])).rows[0].uid;
  expect(await unplaceSession(db.pool, sessions[0], uid, 'not-its-host')).toBe(false);
  expect(await unplaceSession(db.pool, sessions[0], uid, first.host)).toBe(true);
  expect(await placeSession(pools[1], { session: sessions[4], memoryBytes: 4 * GiB })).toEqual({
    session: sessions[4],
    outcome: 'placed',
    host: first.host,
  });
});

test('bin-pack fills one host before the next', async () => {
  const sessions = names(6, 'pack');
  await fleet(
    ['h1', 'h2', 'h3'].map((name) => ({ name, maxSessions: 4 })),
    sessions,
  );
  const results = await placeSessions(
    pools[0],
    sessions.map((session) => ({ session, memoryBytes: GiB })),
    { policy: 'binpack' },
  );
  expect(results.every((result) => result.outcome === 'placed')).toBe(true);
  expect(await placedPerHost()).toEqual({ h1: 4, h2: 2 });
});

test('hostSelector, a pinned host and cordon restrict the choice; each reason carries its numbers', async () => {
  await fleet(
    [
      { name: 'gpu-1', labels: { gpu: 'yes' } },
      { name: 'cpu-1', labels: { gpu: 'no' } },
      { name: 'cpu-2', labels: { gpu: 'no' } },
    ],
    ['sel', 'pin', 'cordoned', 'nomatch'],
  );
  expect(await placeSession(pools[0], { session: 'sel', memoryBytes: GiB, hostSelector: { gpu: 'yes' } })).toEqual({
    session: 'sel',
    outcome: 'placed',
    host: 'gpu-1',
  });
  expect(await placeSession(pools[0], { session: 'pin', memoryBytes: GiB, hostName: 'cpu-2' })).toMatchObject({
    host: 'cpu-2',
  });
  await setCordoned(db.pool, ['gpu-1'], true);
  expect(
    await placeSession(pools[1], { session: 'cordoned', memoryBytes: GiB, hostSelector: { gpu: 'yes' } }),
  ).toMatchObject({ outcome: 'unscheduled', reason: 'AllHostsCordoned', matching: 1, cordoned: 1 });
  expect(
    await placeSession(pools[1], { session: 'nomatch', memoryBytes: GiB, hostSelector: { gpu: 'maybe' } }),
  ).toMatchObject({ outcome: 'unscheduled', reason: 'NoMatchingHost', hosts: 3, matching: 0 });
  await db.pool.query("UPDATE sessionctl.hosts SET state = 'Lost' WHERE name LIKE 'cpu-%'");
  expect(await placeSession(pools[1], { session: 'nomatch', memoryBytes: GiB })).toMatchObject({
    outcome: 'unscheduled',
    reason: 'AllHostsUnavailable',
    cordoned: 1,
    unavailable: 2,
  });
});

test('idempotent: a placed session keeps its host; deleted rows and other uids are gone', async () => {
  await fleet([{ name: 'h1' }, { name: 'h2' }], ['keep', 'bye']);
  const first = await placeSession(pools[0], { session: 'keep', memoryBytes: GiB });
  expect(first).toMatchObject({ outcome: 'placed' });
  expect(await placeSession(pools[1], { session: 'keep', memoryBytes: GiB })).toEqual({
    ...first,
    outcome: 'already-placed',
  });
  expect(
    await placeSession(pools[1], { session: 'bye', memoryBytes: GiB, uid: '00000000-0000-0000-0000-000000000000' }),
  ).toEqual({ session: 'bye', outcome: 'gone' });
  await deleteSessions(db.pool, ['bye']);
  expect(await placeSession(pools[1], { session: 'bye', memoryBytes: GiB })).toEqual({
    session: 'bye',
    outcome: 'gone',
  });
  expect(await placeSession(pools[1], { session: 'never-existed', memoryBytes: GiB })).toMatchObject({
    outcome: 'gone',
  });
});
