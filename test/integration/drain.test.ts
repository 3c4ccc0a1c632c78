/**
 * `sessionctl drain HOST`, the CLI's side, through the compiled CLI against the real PostgreSQL and
 * without a controller: the test plays the controller's part itself, as the leaseholder would, by
 * moving every session whose eviction was requested to another host row (or off every host, waiting
 * for room). The drain of a fleet with real controllers and daemons is tested with the fleet's
 * end-to-end tests.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { sessionctl, type CliResult } from '../helpers/cli';
import { waitFor } from '../helpers/wait';
import { upsertHosts } from '../../src/store/hosts';
import { upsertSessions } from '../../src/store/sessions';

let db: TestDatabase;
const cli = (...args: string[]) => sessionctl(args, { DATABASE_URL: db.url });

const VOLUMES = [{ name: 'data', mountPath: '/data' }];
const FULL = 'needs 256Mi: all 2 open matching hosts are full';

function hostWrite(name: string, port: number) {
  return { name, labels: {}, endpoint: `tcp://127.0.0.1:${port}`, certDir: '/etc/sessionctl/certs', maxSessions: 50 };
}

/** Creates sessions and places them on the host, as the placer would have. */
async function placeOn(host: string, sessions: Array<{ name: string; volumes?: boolean }>): Promise<void> {
  await upsertSessions(
    db.pool,
    sessions.map((session) => ({
      name: session.name,
      labels: {},
      spec: { image: 'x', ...(session.volumes ? { volumes: VOLUMES } : {}) },
    })),
  );
  await db.pool.query(
    'UPDATE sessionctl.sessions SET placed_host = $1, placed_memory_bytes = 0, placed_at = now() WHERE name = ANY($2)',
    [host, sessions.map((session) => session.name)],
  );
}

async function evictionsRequested(host: string): Promise<Array<{ name: string; reason: string }>> {
  const result = await db.pool.query<{ name: string; reason: string }>(
    `SELECT name, evict_reason AS reason FROM sessionctl.sessions
      WHERE placed_host = $1 AND evict_requested_at IS NOT NULL ORDER BY name`,
    [host],
  );
  return result.rows;
}

/** The controller's move: onto `to`, or off every host with Scheduled=False when `to` is null. */
async function move(name: string, to: string | null): Promise<void> {
  const status = to
    ? {}
    : { conditions: [{ type: 'Scheduled', status: 'False', reason: 'AllHostsFull', message: FULL }] };
  await db.pool.query(
    `UPDATE sessionctl.sessions SET placed_host = $2, evict_requested_at = NULL, evict_reason = NULL,
            status = status || $3::jsonb WHERE name = $1`,
    [name, to, JSON.stringify(status)],
  );
}

/**
 * Plays the leaseholder until the drain exits: each set of evictions requested at once is one
 * batch (one UPDATE asks for a whole batch, and the next waits until this one has moved).
 */
async function actAsController(
  host: string,
  drain: Promise<CliResult>,
  destination: (name: string) => string | null,
): Promise<string[][]> {
  let exited = false;
  void drain.finally(() => (exited = true));
  const batches: string[][] = [];
  for (;;) {
    const requested = await waitFor(
      async () => {
        const rows = await evictionsRequested(host);
        if (rows.length > 0) return rows;
        return exited ? [] : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 25, what: `evictions requested on ${host}, or the drain to exit` },
    );
    if (requested.length === 0) return batches;
    expect(requested.every((row) => row.reason === 'Drain')).toBe(true);
    batches.push(requested.map((row) => row.name));
    for (const { name } of requested) await move(name, destination(name));
  }
}

async function placement(name: string) {
  const result = await db.pool.query<{ placed_host: string | null; evict_requested_at: Date | null }>(
    'SELECT placed_host, evict_requested_at FROM sessionctl.sessions WHERE name = $1',
    [name],
  );
  return result.rows[0];
}

beforeAll(async () => {
  db = await createTestDatabase('drain');
  await upsertHosts(db.pool, [
    hostWrite('drain-a', 41201),
    hostWrite('drain-b', 41202),
    hostWrite('drain-c', 41203),
    hostWrite('drain-d', 41204),
  ]);
});

afterAll(async () => {
  await db?.drop();
});

test('drain cordons, reports sessions with volumes as DrainBlocked and leaves them, and moves the rest --batch at a time', async () => {
  const web = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];
  await placeOn('drain-a', [...web.map((name) => ({ name })), { name: 'keep-1', volumes: true }]);
  await placeOn('drain-b', [{ name: 'elsewhere' }]);

  const drain = cli('drain', 'drain-a', '--batch', '2', '--timeout', '60s');
  const batches = await actAsController('drain-a', drain, (name) => (name === 'web-3' ? null : 'drain-b'));
  const result = await drain;

  expect(batches).toEqual([['web-1', 'web-2'], ['web-3', 'web-4'], ['web-5']]);
  expect(result.stdout.split('\n')).toEqual([
    'dockerhost/drain-a cordoned',
    'DrainBlocked: session/keep-1 keeps data on drain-a (spec.volumes): --force moves it without its data, or delete it',
    'evicting session/web-1',
    'evicting session/web-2',
    'session/web-1 moved to drain-b',
    'session/web-2 moved to drain-b',
    'evicting session/web-3',
    'evicting session/web-4',
    `session/web-3 left drain-a, waiting for room (AllHostsFull: ${FULL})`,
    'session/web-4 moved to drain-b',
    'evicting session/web-5',
    'session/web-5 moved to drain-b',
    '',
  ]);
  expect(result.stderr).toContain('1 session(s) keep data on drain-a and were not moved (DrainBlocked)');
  expect(result.code).toBe(1);
  // The blocked session was never asked to move; the host is cordoned; other hosts' sessions untouched.
  expect(await placement('keep-1')).toEqual({ placed_host: 'drain-a', evict_requested_at: null });
  expect(await placement('elsewhere')).toEqual({ placed_host: 'drain-b', evict_requested_at: null });
  const cordoned = await db.pool.query('SELECT cordoned FROM sessionctl.hosts WHERE name = $1', ['drain-a']);
  expect(cordoned.rows[0].cordoned).toBe(true);
});

test('--force moves sessions with volumes too, and drain exits 0 once the host is empty', async () => {
  const drain = cli('drain', 'host/drain-a', '--force');
  const batches = await actAsController('drain-a', drain, () => 'drain-c');
  const result = await drain;
  expect(batches).toEqual([['keep-1']]);
  expect(result).toMatchObject({
    code: 0,
    stdout:
      'dockerhost/drain-a already cordoned\nevicting session/keep-1\nsession/keep-1 moved to drain-c\ndockerhost/drain-a drained\n',
  });
  expect(await placement('keep-1')).toEqual({ placed_host: 'drain-c', evict_requested_at: null });

  // get hosts keeps working; describe host shows what waits for room (web-3, which any host matches).
  const hosts = await cli('get', 'hosts');
  expect(hosts.code).toBe(0);
  expect(hosts.stdout).toMatch(/^drain-a\s+Pending,Cordoned\s+0\/50\s/m);
  const described = await cli('describe', 'host', 'drain-a');
  expect(described.code).toBe(0);
  expect(described.stdout).toContain(
    'Waiting:       1 sessions have no host (Scheduled=False), 1 of them match this host',
  );
  expect(described.stdout).toContain('Evicting:      none');
});

test('a drain that outlives --timeout exits 1 and lists what is left; only the first batch was asked to move', async () => {
  await placeOn('drain-d', [{ name: 'stuck-1' }, { name: 'stuck-2' }, { name: 'stuck-3' }]);
  const result = await cli('drain', 'drain-d', '--batch', '2', '--timeout', '1s');
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('dockerhost/drain-d cordoned\nevicting session/stuck-1\nevicting session/stuck-2\n');
  expect(result.stderr).toContain('drain of drain-d timed out after 1s; left:');
  expect(result.stderr).toContain('  session/stuck-1: eviction requested, still on the host');
  expect(result.stderr).toContain('  session/stuck-2: eviction requested, still on the host');
  expect(result.stderr).toContain('  session/stuck-3: not evicted yet');
  expect(await evictionsRequested('drain-d')).toEqual([
    { name: 'stuck-1', reason: 'Drain' },
    { name: 'stuck-2', reason: 'Drain' },
  ]);
  const described = await cli('describe', 'host', 'drain-d');
  expect(described.stdout).toContain('Evicting:      2 sessions (drain requested)');
});

test('an unknown host is an error; a batch below 1 is a usage error', async () => {
  expect(await cli('drain', 'no-such-host')).toMatchObject({
    code: 1,
    stderr: 'error: host "no-such-host" not found\n',
  });
  const zero = await cli('drain', 'drain-b', '--batch', '0');
  expect(zero.code).toBe(2);
  expect(zero.stderr).toContain('invalid --batch "0"');
  // Validation comes before anything is changed: drain-b was not cordoned.
  const cordoned = await db.pool.query('SELECT cordoned FROM sessionctl.hosts WHERE name = $1', ['drain-b']);
  expect(cordoned.rows[0].cordoned).toBe(false);
});
