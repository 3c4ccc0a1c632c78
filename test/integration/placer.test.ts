/**
 * The placer (controllers/session/fleet/placer.ts) against the real PostgreSQL: what waits is placed
 * by spec (memory, hostSelector, pinned host), what fits nowhere gets Scheduled=False once with the
 * numbers, room that appears is used at the next wake, and a row running on a host from before
 * placement existed stays there. Two placers at once never overcommit.
 */
import pino from 'pino';
import { Placer } from '../../controllers/session/fleet/placer';
import { findCondition } from '../../crds/status';
import { createMetrics } from '../../src/metrics/registry';
import { setCordoned, upsertHosts } from '../../src/store/hosts';
import { getSession, upsertSessions } from '../../src/store/sessions';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

let db: TestDatabase;
const placed = new Map<string, string>();

function placer(): Placer {
  return new Placer({
    pool: db.pool,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    policy: 'spread',
    defaults: { memoryBytes: 1024 ** 3 },
    onPlaced: (host, sessions) => sessions.forEach((session) => placed.set(session, host)),
  });
}

const spec = (extra: object = {}) => ({ image: 'sessionctl/base:dev', ...extra });

beforeAll(async () => {
  db = await createTestDatabase('placer');
  await upsertHosts(db.pool, [
    { name: 'a', labels: { zone: 'one' }, endpoint: 'tcp://127.0.0.1:45001', certDir: '/c', maxSessions: 2 },
    { name: 'b', labels: { zone: 'two' }, endpoint: 'tcp://127.0.0.1:45002', certDir: '/c', maxSessions: 2 },
  ]);
});

afterAll(async () => {
  await db?.drop();
});

test('spreads, honours selectors and pinned hosts, and tells what fits nowhere once', async () => {
  await upsertSessions(db.pool, [
    { name: 's1', labels: {}, spec: spec() },
    { name: 's2', labels: {}, spec: spec() },
    { name: 'zoned', labels: {}, spec: spec({ hostSelector: { zone: 'two' } }) },
    { name: 'pinned', labels: {}, spec: spec({ host: 'a' }) },
    { name: 'nowhere', labels: {}, spec: spec({ hostSelector: { zone: 'three' } }) },
  ]);
  await placer().wake();
  expect(placed.get('zoned')).toBe('b');
  expect(placed.get('pinned')).toBe('a');
  expect([placed.get('s1'), placed.get('s2')].sort()).toEqual(['a', 'b']);
  const nowhere = await getSession(db.pool, 'nowhere');
  expect(nowhere!.placedHost).toBeNull();
  expect(findCondition(nowhere!.status, 'Scheduled')).toMatchObject({ status: 'False', reason: 'NoMatchingHost' });
  expect(nowhere!.status.phase).toBe('Pending');
  const written = nowhere!.resourceVersion;
  await placer().wake();
  // The same message is not written again.
  expect((await getSession(db.pool, 'nowhere'))!.resourceVersion).toBe(written);
});

test('full hosts: Scheduled=False with the numbers, placed at the next wake once room appears', async () => {
  await upsertSessions(db.pool, [{ name: 'late', labels: {}, spec: spec() }]);
  await placer().wake();
  const waiting = await getSession(db.pool, 'late');
  expect(findCondition(waiting!.status, 'Scheduled')).toMatchObject({ status: 'False', reason: 'AllHostsFull' });
  expect(findCondition(waiting!.status, 'Scheduled')!.message).toMatch(/a 2\/2 sessions/);
  await db.pool.query(`UPDATE sessionctl.hosts SET max_sessions = 3 WHERE name = 'a'`);
  await placer().wake();
  expect((await getSession(db.pool, 'late'))!.placedHost).toBe('a');
});

test('cordoned hosts take nothing new; a row already running on a host (before placement existed) stays there', async () => {
  await setCordoned(db.pool, ['a', 'b'], true);
  await upsertSessions(db.pool, [
    { name: 'blocked', labels: {}, spec: spec() },
    { name: 'legacy', labels: {}, spec: spec() },
  ]);
  await db.pool.query(
    `UPDATE sessionctl.sessions SET host = 'b', status = '{"containerId": "abc", "phase": "Running"}' WHERE name = 'legacy'`,
  );
  await placer().wake();
  expect((await getSession(db.pool, 'legacy'))!.placedHost).toBe('b');
  const blocked = await getSession(db.pool, 'blocked');
  expect(findCondition(blocked!.status, 'Scheduled')).toMatchObject({ reason: 'AllHostsCordoned' });
  await setCordoned(db.pool, ['a', 'b'], false);
});

test('two placers at once against the same capacity place exactly what fits', async () => {
  await db.pool.query(`UPDATE sessionctl.hosts SET max_sessions = 20`);
  const names = Array.from({ length: 60 }, (_, index) => `burst-${index}`);
  await upsertSessions(
    db.pool,
    names.map((name) => ({ name, labels: {}, spec: spec() })),
  );
  await Promise.all([placer().wake(), placer().wake()]);
  const result = await db.pool.query<{ placed_host: string | null; count: string }>(
    `SELECT placed_host, count(*) FROM sessionctl.sessions GROUP BY placed_host`,
  );
  const counts = Object.fromEntries(result.rows.map((row) => [row.placed_host ?? 'none', Number(row.count)]));
  expect(counts.a).toBe(20);
  expect(counts.b).toBe(20);
  // 68 rows in all (8 from the tests before): 40 placed, the rest wait.
  expect(counts.none).toBe(68 - 40);
});
