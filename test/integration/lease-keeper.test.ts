/**
 * The lease keeper (controllers/session/fleet/lease-keeper.ts) of two and three replicas in one
 * process, against the real PostgreSQL: hosts shared out evenly, a clean stop handing its hosts over
 * within a round, a lease taken over while its holder is stalled closing that holder's Docker gate.
 * Hosts are rows only here (no daemon is called): the keeper decides who runs what.
 */
import pino from 'pino';
import { LeaseKeeper } from '../../controllers/session/fleet/lease-keeper';
import { createMetrics } from '../../src/metrics/registry';
import { upsertHosts } from '../../src/store/hosts';
import { listLeases, type Lease } from '../../src/store/leases';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

let db: TestDatabase;
const logger = pino({ level: 'silent' });

interface Replica {
  keeper: LeaseKeeper;
  held: Map<string, { lease: Lease; mayCall: () => boolean }>;
}

function replica(holder: string): Replica {
  const held = new Map<string, { lease: Lease; mayCall: () => boolean }>();
  const keeper = new LeaseKeeper({
    pool: db.pool,
    holder,
    logger,
    metrics: createMetrics(),
    onAcquired: async (lease, windowMs) => void held.set(lease.host, { lease, mayCall: () => windowMs() > 0 }),
    onLost: async (host) => void held.delete(host),
  });
  return { keeper, held };
}

async function holders(): Promise<Record<string, string>> {
  return Object.fromEntries((await listLeases(db.pool)).map((lease) => [lease.host, lease.holder]));
}

beforeAll(async () => {
  db = await createTestDatabase('leasekeeper');
  await upsertHosts(
    db.pool,
    ['h1', 'h2', 'h3'].map((name, index) => ({
      name,
      labels: {},
      endpoint: `tcp://127.0.0.1:${44000 + index}`,
      certDir: '/etc/sessionctl/certs',
    })),
  );
});

afterAll(async () => {
  await db?.drop();
});

test('one replica takes every host; a second one that joins gets its share, and a clean stop hands everything back', async () => {
  const a = replica('replica-a');
  await a.keeper.tick();
  expect([...a.held.keys()].sort()).toEqual(['h1', 'h2', 'h3']);
  expect([...a.held.values()].every((held) => held.mayCall())).toBe(true);

  const b = replica('replica-b');
  await b.keeper.tick();
  // b counts two replicas: its share is two, but every host is held: it takes none yet.
  expect(b.held.size).toBe(0);
  // a gives one host back only once every replica has been up for a renewal period (hysteresis): age the rows.
  await db.pool.query(`UPDATE sessionctl.controller_replicas SET started_at = now() - interval '10 seconds'`);
  // a releases at most one host per renewal period: round it until it has.
  for (let round = 0; round < 3 && a.held.size === 3; round += 1) {
    (a.keeper as unknown as { lastRelease: number }).lastRelease = -Infinity;
    await a.keeper.tick();
  }
  expect(a.held.size).toBe(2);
  await b.keeper.tick();
  expect(b.held.size).toBe(1);
  const shared = await holders();
  expect(Object.values(shared).filter((holder) => holder === 'replica-a')).toHaveLength(2);
  expect(Object.values(shared).filter((holder) => holder === 'replica-b')).toHaveLength(1);

  // A clean stop: every gate of a closes at once, and b takes its hosts at its next round.
  const gates = [...a.held.values()].map((held) => held.mayCall);
  await a.keeper.stop();
  expect(gates.every((mayCall) => !mayCall())).toBe(true);
  await b.keeper.tick();
  expect([...b.held.keys()].sort()).toEqual(['h1', 'h2', 'h3']);
  expect(Object.values(await holders())).toEqual(['replica-b', 'replica-b', 'replica-b']);
  await b.keeper.stop();
});

test('a lease taken over from a stalled holder: its renewal fails, its gate closes, and the epoch moved', async () => {
  const a = replica('replica-stalled');
  await a.keeper.tick();
  const before = a.held.get('h1')!;
  expect(before.mayCall()).toBe(true);
  // The holder stalls past its lease (made to expire by the database's clock), and c takes the host over.
  await db.pool.query(`UPDATE sessionctl.host_leases SET expires_at = now() - interval '1 second' WHERE host = 'h1'`);
  const c = replica('replica-c');
  await c.keeper.tick();
  expect(c.held.has('h1')).toBe(true);
  expect(c.held.get('h1')!.lease.epoch).toBe(before.lease.epoch + 1);
  // The stalled holder wakes: its renewal is refused, it stops working on the host.
  (a.keeper as unknown as { held: Map<string, { renewedAt: number }> }).held.get('h1')!.renewedAt = -Infinity;
  await a.keeper.tick();
  expect(a.held.has('h1')).toBe(false);
  expect(before.mayCall()).toBe(false);
  await a.keeper.stop();
  await c.keeper.stop();
});
