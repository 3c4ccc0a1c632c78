/**
 * The fleet's gauges from the database (src/store/fleet-snapshot.ts, recordFleetSnapshot in
 * src/metrics/fleet.ts) against the real PostgreSQL: hosts by state and cordon, what is placed per
 * host, sessions waiting for a host by reason, live replicas; a deleted host loses its series.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { createMetrics } from '../../src/metrics/registry';
import { recordFleetSnapshot } from '../../src/metrics/fleet';
import { readFleetSnapshot } from '../../src/store/fleet-snapshot';
import { deleteHosts, setCordoned, upsertHosts } from '../../src/store/hosts';
import { upsertSessions } from '../../src/store/sessions';

let db: TestDatabase;
const GiB = 1024 ** 3;

beforeAll(async () => {
  db = await createTestDatabase('fleet_snapshot');
});

afterAll(async () => {
  await db?.drop();
});

async function place(host: string, names: string[], memoryBytes: number): Promise<void> {
  await upsertSessions(
    db.pool,
    names.map((name) => ({ name, labels: {}, spec: { image: 'x' } })),
  );
  await db.pool.query(
    'UPDATE sessionctl.sessions SET placed_host = $1, placed_memory_bytes = $3, placed_at = now() WHERE name = ANY($2)',
    [host, names, memoryBytes],
  );
}

async function waiting(names: string[], reason: string): Promise<void> {
  await upsertSessions(
    db.pool,
    names.map((name) => ({ name, labels: {}, spec: { image: 'x' } })),
  );
  const status = { conditions: [{ type: 'Scheduled', status: 'False', reason, message: 'no room' }] };
  await db.pool.query('UPDATE sessionctl.sessions SET status = $2::jsonb WHERE name = ANY($1)', [
    names,
    JSON.stringify(status),
  ]);
}

test('the snapshot counts the fleet, and the gauges show it under the contract names', async () => {
  const endpoint = (port: number) => `tcp://127.0.0.1:${port}`;
  await upsertHosts(db.pool, [
    { name: 'fs-a', labels: {}, endpoint: endpoint(41301), certDir: '/c', maxSessions: 10 },
    { name: 'fs-b', labels: {}, endpoint: endpoint(41302), certDir: '/c' },
    { name: 'fs-c', labels: {}, endpoint: endpoint(41303), certDir: '/c', maxSessions: 5 },
  ]);
  await db.pool.query("UPDATE sessionctl.hosts SET state = 'Ready' WHERE name IN ('fs-a', 'fs-b')");
  await db.pool.query("UPDATE sessionctl.hosts SET state = 'Lost' WHERE name = 'fs-c'");
  await setCordoned(db.pool, ['fs-b'], true);
  await place('fs-a', ['a-1', 'a-2', 'a-3'], 2 * GiB);
  await place('fs-c', ['c-1'], GiB);
  await waiting(['w-1', 'w-2'], 'AllHostsFull');
  await waiting(['w-3'], 'NoMatchingHost');
  // A placed session with a stale Scheduled=False, and one being deleted, do not wait.
  await place('fs-a', ['a-4'], 0);
  await waiting(['a-4'], 'AllHostsFull');
  await waiting(['gone'], 'AllHostsFull');
  await db.pool.query("UPDATE sessionctl.sessions SET deletion_requested_at = now() WHERE name = 'gone'");
  await db.pool.query(
    `INSERT INTO sessionctl.controller_replicas (holder, expires_at)
     VALUES ('r-live', now() + interval '15 seconds'), ('r-dead', now() - interval '1 second')`,
  );

  const snapshot = await readFleetSnapshot(db.pool);
  expect(snapshot).toEqual({
    hostsByState: { Ready: 2, Lost: 1 },
    cordoned: 1,
    hosts: [
      { name: 'fs-a', sessions: 4, allocatedMemoryBytes: 6 * GiB, maxSessions: 10 },
      { name: 'fs-b', sessions: 0, allocatedMemoryBytes: 0, maxSessions: null },
      { name: 'fs-c', sessions: 1, allocatedMemoryBytes: GiB, maxSessions: 5 },
    ],
    unschedulable: { AllHostsFull: 2, NoMatchingHost: 1 },
    replicas: 1,
  });

  const metrics = createMetrics();
  recordFleetSnapshot(metrics.fleet, snapshot);
  let text = await metrics.registry.metrics();
  for (const line of [
    'sessionctl_hosts{state="Ready"} 2',
    'sessionctl_hosts{state="Lost"} 1',
    'sessionctl_hosts{state="Pending"} 0',
    'sessionctl_hosts_cordoned 1',
    'sessionctl_controller_replicas 1',
    'sessionctl_host_sessions{host="fs-a"} 4',
    `sessionctl_host_allocated_memory_bytes{host="fs-a"} ${6 * GiB}`,
    'sessionctl_host_capacity_sessions{host="fs-a"} 10',
    'sessionctl_host_sessions{host="fs-b"} 0',
    'sessionctl_unschedulable_sessions{reason="AllHostsFull"} 2',
    'sessionctl_unschedulable_sessions{reason="NoMatchingHost"} 1',
    'sessionctl_unschedulable_sessions{reason="AllHostsCordoned"} 0',
  ])
    expect(text).toContain(`${line}\n`);
  expect(text).not.toContain('sessionctl_host_capacity_sessions{host="fs-b"}');

  // A deleted host's sessions are unplaced, and its series go with it.
  await deleteHosts(db.pool, ['fs-c']);
  recordFleetSnapshot(metrics.fleet, await readFleetSnapshot(db.pool));
  text = await metrics.registry.metrics();
  expect(text).not.toContain('sessionctl_host_sessions{host="fs-c"}');
  expect(text).toContain('sessionctl_hosts{state="Lost"} 0\n');
});
