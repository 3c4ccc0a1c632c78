/**
 * Host leases and fencing (src/store/leases.ts, src/store/fencing.ts, migration 016) against the real
 * PostgreSQL, with short leases so that expiry comes quickly. Every "after expiry" is judged by the
 * database's clock, as the leases themselves are; waits poll the lease row with a deadline.
 */
import type { Pool } from 'pg';
import type { SessionStatus } from '../../crds/status';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/wait';
import { createPool } from '../../src/store/db';
import { FencedOut, withFence, writeStatusFenced } from '../../src/store/fencing';
import { upsertHosts } from '../../src/store/hosts';
import {
  acquireLease,
  listLeases,
  releaseAllLeases,
  releaseLease,
  renewLease,
  type Lease,
} from '../../src/store/leases';
import { placeSession } from '../../src/store/placement';
import { getSession, upsertSessions, writeStatus } from '../../src/store/sessions';

let db: TestDatabase;
let replicaA: Pool;
let replicaB: Pool;
const SHORT_MS = 1_500;

const status = (phase: SessionStatus['phase'], generation = 1): SessionStatus => ({
  phase,
  observedGeneration: generation,
  conditions: [],
  restartCount: 0,
});

beforeAll(async () => {
  db = await createTestDatabase('leases');
  replicaA = createPool(db.url, { max: 2, applicationName: 'lease-a' });
  replicaB = createPool(db.url, { max: 2, applicationName: 'lease-b' });
  await upsertHosts(
    db.pool,
    ['h1', 'h2', 'h3', 'h4', 'h5'].map((name, index) => ({
      name,
      labels: {},
      endpoint: `tcp://127.0.0.1:${43000 + index}`,
      certDir: '/etc/sessionctl/certs',
    })),
  );
  await upsertSessions(db.pool, [{ name: 's1', labels: {}, spec: { image: 'x' } }]);
  await placeSession(db.pool, { session: 's1', memoryBytes: 1024 ** 2, hostName: 'h1' });
});

afterAll(async () => {
  await replicaA?.end();
  await replicaB?.end();
  await db?.drop();
});

async function expiredByDatabaseClock(lease: Pick<Lease, 'host'>): Promise<boolean> {
  const result = await db.pool.query<{ expired: boolean }>(
    'SELECT expires_at <= now() AS expired FROM sessionctl.host_leases WHERE host = $1',
    [lease.host],
  );
  return result.rows[0].expired;
}

async function acquired(pool: Pool, host: string, holder: string, durationMs = SHORT_MS): Promise<Lease> {
  const result = await acquireLease(pool, host, holder, durationMs);
  if (!result.acquired) throw new Error(`${holder} did not get ${host}: held by ${result.holder}`);
  return result.lease;
}

test('a live lease is refused to others; it is taken over only after expiry, with a new epoch', async () => {
  const a = await acquired(replicaA, 'h1', 'replica-a', 60_000);
  expect(a).toMatchObject({ host: 'h1', holder: 'replica-a', epoch: 1 });
  expect(a.validForMs).toBeGreaterThan(0);
  expect(a.validForMs).toBeLessThanOrEqual(60_000);

  const refused = await acquireLease(replicaB, 'h1', 'replica-b', SHORT_MS);
  expect(refused).toMatchObject({ acquired: false, holder: 'replica-a', epoch: 1 });
  // The holder acquiring again only renews: same epoch, no takeover. Shortened here so that it expires soon.
  const again = await acquireLease(replicaA, 'h1', 'replica-a', SHORT_MS);
  expect(again).toMatchObject({ acquired: true, takeover: false, lease: { epoch: 1 } });
  const aExpiresAt = again.acquired ? again.lease.expiresAt : a.expiresAt;

  const b = await waitFor(
    async () => {
      const attempt = await acquireLease(replicaB, 'h1', 'replica-b', SHORT_MS);
      return attempt.acquired ? attempt : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 50, what: 'replica-b to take h1 over' },
  );
  expect(b).toMatchObject({ takeover: true, lease: { holder: 'replica-b', epoch: 2 } });
  const after = await db.pool.query<{ late: boolean }>('SELECT now() >= $1::timestamptz AS late', [aExpiresAt]);
  expect(after.rows[0].late).toBe(true);

  // The stale holder can neither renew nor release what is no longer its lease.
  expect(await renewLease(replicaA, a, SHORT_MS)).toBeUndefined();
  expect(await releaseLease(replicaA, a)).toBe(false);
  expect((await listLeases(db.pool)).find((lease) => lease.host === 'h1')).toMatchObject({
    holder: 'replica-b',
    epoch: 2,
  });
});

test('fencing: a status write with an old epoch changes nothing; the current holder writes', async () => {
  const b = await acquired(replicaB, 'h1', 'replica-b', 60_000);
  const stale = { host: 'h1', holder: 'replica-a', epoch: 1 };
  const before = await getSession(db.pool, 's1');

  expect(await writeStatusFenced(replicaA, stale, { name: 's1', generation: 1, status: status('Running') })).toBe(
    false,
  );
  expect(
    await writeStatusFenced(
      replicaA,
      { ...b, holder: 'replica-a' },
      { name: 's1', generation: 1, status: status('Running') },
    ),
  ).toBe(false);
  const untouched = await getSession(db.pool, 's1');
  expect(untouched).toMatchObject({ status: before!.status, resourceVersion: before!.resourceVersion });

  await expect(withFence(replicaA, stale, (tx) => writeStatus(tx, 's1', 1, status('Failed'), 'h1'))).rejects.toThrow(
    FencedOut,
  );
  expect((await getSession(db.pool, 's1'))!.resourceVersion).toBe(before!.resourceVersion);

  expect(await writeStatusFenced(replicaB, b, { name: 's1', generation: 1, status: status('Running') })).toBe(true);
  expect(await getSession(db.pool, 's1')).toMatchObject({ host: 'h1', status: { phase: 'Running' } });
  // Only on the session's placed host: a lease on another host does not let a replica write it.
  const other = await acquired(replicaB, 'h2', 'replica-b', 60_000);
  expect(await writeStatusFenced(replicaB, other, { name: 's1', generation: 1, status: status('Failed') })).toBe(false);
});

test('renew extends a live lease; release hands the host off at once, with a new epoch', async () => {
  const b = await acquired(replicaB, 'h3', 'replica-b', 60_000);
  const renewed = await renewLease(replicaB, b, 120_000);
  expect(renewed).toMatchObject({ epoch: b.epoch });
  expect(renewed!.validForMs).toBeGreaterThan(60_000);

  expect(await acquireLease(replicaA, 'h3', 'replica-a', 60_000)).toMatchObject({ acquired: false });
  expect(await releaseLease(replicaB, renewed!)).toBe(true);
  // No waiting for expiry: the very next attempt succeeds.
  const a = await acquireLease(replicaA, 'h3', 'replica-a', 60_000);
  expect(a).toMatchObject({ acquired: true, takeover: true, lease: { holder: 'replica-a', epoch: b.epoch + 1 } });
  // Released means fenced out, even before anyone else takes the host.
  expect(await renewLease(replicaB, b)).toBeUndefined();

  // A clean shutdown releases every lease of the replica in one statement.
  await acquired(replicaA, 'h4', 'replica-a', 60_000);
  expect(await releaseAllLeases(replicaA, 'replica-a')).toEqual(['h3', 'h4']);
  expect(await acquireLease(replicaB, 'h4', 'replica-b', 60_000)).toMatchObject({ acquired: true });
});

test('a takeover waits for a fenced write in flight: the write commits before the takeover, never after', async () => {
  // Short enough to expire while the fenced transaction is open, long enough to get into it first.
  const a = await acquired(replicaA, 'h5', 'replica-a', 5_000);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const fenced = withFence(replicaA, a, async (tx) => {
    entered();
    await gate;
    return writeStatus(tx, 's1', 1, status('Stopped'), 'h1');
  });
  await inside;
  await waitFor(() => expiredByDatabaseClock(a), { timeoutMs: 15_000, what: "replica-a's lease to expire" });
  const takeover = acquireLease(replicaB, 'h5', 'replica-b', 60_000);
  await waitFor(
    async () => {
      const waiting = await db.pool.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'lease-b' AND wait_event_type = 'Lock'",
      );
      return waiting.rowCount === 1;
    },
    { timeoutMs: 15_000, what: "replica-b's takeover to wait on the lease row" },
  );
  open();
  expect(await fenced).toBe(true);
  expect(await takeover).toMatchObject({ acquired: true, lease: { epoch: a.epoch + 1 } });
  expect((await getSession(db.pool, 's1'))!.status.phase).toBe('Stopped');
  await expect(withFence(replicaA, a, async () => 'late')).rejects.toThrow(FencedOut);
});
