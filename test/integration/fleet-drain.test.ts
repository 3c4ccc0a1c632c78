/**
 * Cordon, then drain (issue 15, test 5), with two real controller processes on the three real
 * dockerds: a cordoned host gets no new placements; draining it moves every stateless session to the
 * other hosts, none is lost, and no session ever has two containers anywhere (every daemon listed
 * over and over during the drain: the old container must be gone before the new one is created).
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { sessionctl, type CliResult } from '../helpers/cli';
import {
  closeFleetClients,
  stopBackgroundLoops,
  ContainerSampler,
  fleetContainers,
  fleetDaemons,
  registerFleetHosts,
  removeFleetContainers,
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
  waitSessions,
  type Replica,
} from '../helpers/fleet';

let db: TestDatabase;
let installation: string;
let replicas: Replica[] = [];
let victim: FleetDaemon;
const cli = (...args: string[]) => sessionctl(args, { DATABASE_URL: db.url });

beforeAll(async () => {
  victim = fleetDaemons()[1];
  await removeFleetContainers();
  db = await createTestDatabase('fleet_drain');
  await registerFleetHosts(db.pool);
  installation = await installationOf(db.pool);
  replicas = await startReplicas(db, 2, { prefix: 'drain' });
});

afterAll(async () => {
  // A failed test may leave its samplers and watchers running: they stop before the database goes.
  await stopBackgroundLoops();
  await stopReplicas(replicas);
  await removeFleetContainers();
  await db?.drop();
  await closeFleetClients();
});

/**
 * `sessionctl drain HOST` (the fleet-ops lane's command) when the CLI has it; otherwise what it does
 * to the rows, as the fleet contract says: the admin sets evict_requested_at and evict_reason on the
 * host's sessions. TODO(fleet-ops): once `sessionctl drain` is on main, drop the fallback.
 */
async function drain(host: string): Promise<{ via: string; done: Promise<CliResult | undefined> }> {
  // An unknown command with --help prints the program's help (exit 0): look for the command's own usage.
  const help = await cli('drain', '--help');
  if (help.stdout.startsWith('Usage: sessionctl drain')) return { via: 'sessionctl drain', done: cli('drain', host) };
  await db.pool.query(
    `UPDATE sessionctl.sessions SET evict_requested_at = now(), evict_reason = $2
      WHERE placed_host = $1 AND coalesce(jsonb_array_length(spec->'volumes'), 0) = 0`,
    [host, `drain ${host} (fleet-drain test)`],
  );
  return { via: 'evict_requested_at (no drain command yet)', done: Promise.resolve(undefined) };
}

test('cordon stops new placements; drain moves every stateless session off, none lost, never two copies', async () => {
  const first = sessionNames('drain', 9);
  await insertSessions(db.pool, first, statelessSpec());
  await waitSessions(db.pool, first, readyOnPlacedHost, '9 sessions Ready');
  const toMove = (await sessionViews(db.pool, first))
    .filter((view) => view.placedHost === victim.name)
    .map((v) => v.name);
  expect(toMove.length).toBeGreaterThanOrEqual(2);

  expect(await cli('cordon', victim.name)).toMatchObject({ code: 0 });
  const later = sessionNames('later', 3);
  await insertSessions(db.pool, later, statelessSpec());
  const placedLater = await waitSessions(
    db.pool,
    later,
    readyOnPlacedHost,
    'the sessions created after the cordon Ready',
  );
  expect(placedLater.filter((view) => view.placedHost === victim.name)).toEqual([]);

  const all = [...first, ...later];
  const sampler = new ContainerSampler({ installation }).start();
  const drainAt = Date.now();
  const { via, done } = await drain(victim.name);
  const moved = await waitSessions(
    db.pool,
    all,
    (view) => readyOnPlacedHost(view) && view.placedHost !== victim.name && !view.evictRequested,
    `every session Ready off ${victim.name}`,
    90_000,
  );
  const drainedMs = since(drainAt);
  const command = await done;
  const { samples, violations } = await sampler.stop();
  const { containers } = await fleetContainers();
  const ours = containers.filter((c) => c.installation === installation);
  report('drain', {
    host: victim.name,
    via,
    moved: toMove.length,
    drainedMs,
    samples,
    command: command?.stdout.trim(),
  });

  expect(violations).toEqual([]);
  expect(moved.map((view) => view.name).sort()).toEqual([...all].sort());
  if (command) expect(command).toMatchObject({ code: 0 });
  // None lost: one running container per session, on its placed host; none left on the drained host.
  expect(ours.filter((c) => c.host === victim.name)).toEqual([]);
  expect(ours.map((c) => c.session).sort()).toEqual([...all].sort());
  const rows = new Map(moved.map((view) => [view.name, view.placedHost]));
  for (const container of ours) {
    expect(container.state).toBe('running');
    expect(container.host).toBe(rows.get(container.session));
  }
});
