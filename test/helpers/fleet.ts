/**
 * A fleet under test: N real controller processes (the compiled CLI, test/helpers/controller.ts),
 * each its own replica (SESSIONCTL_REPLICA_ID), sharing one test database and the three dockerds of
 * test/helpers/fleet-docker.ts. Signals go to the processes themselves (SIGKILL, SIGSTOP/SIGCONT,
 * SIGTERM); everything a test waits for is read where an operator would see it: lease rows, host
 * rows, session rows' status and conditions, /metrics and /health.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import type { SessionSpecInput } from '../../crds/session';
import { startController, type ControllerProcess } from './controller';
import type { TestDatabase } from './database';
import { fleetDaemons } from './fleet-docker';
import { httpSpec } from './sessions';
import { waitFor } from './wait';

export interface Replica extends ControllerProcess {
  id: string;
  signal(signal: NodeJS.Signals): void;
  health(): Promise<ReplicaHealth>;
}

/** The parts of /health the fleet tests read: the replica's id and, per host it holds, state and lease epoch. */
export interface ReplicaHealth {
  status: string;
  replica?: string;
  dockerHosts?: Array<{ name: string; state?: string; leaseEpoch?: number; reachable?: boolean }>;
  [key: string]: unknown;
}

/**
 * Starts `count` replicas at once, each with its own id (`<prefix>-<letter>-<hex>`) and metrics
 * port; DOCKER_HOST is the first daemon, spelled as in the manifest (so it is not registered again).
 */
export async function startReplicas(
  db: TestDatabase,
  count: number,
  options: { prefix?: string; env?: Record<string, string>; waitReady?: boolean } = {},
): Promise<Replica[]> {
  const letters = 'abcdefghij';
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      startReplica(db, `${options.prefix ?? 'ft'}-${letters[index]}-${randomBytes(2).toString('hex')}`, options),
    ),
  );
}

export async function startReplica(
  db: TestDatabase,
  id: string,
  options: { env?: Record<string, string>; waitReady?: boolean } = {},
): Promise<Replica> {
  const controller = await startController({
    databaseUrl: db.url,
    waitReady: options.waitReady,
    env: {
      DOCKER_HOST: fleetDaemons()[0].endpoint,
      SESSIONCTL_REPLICA_ID: id,
      SESSIONCTL_POLL_SECONDS: '2',
      ...options.env,
    },
  });
  return Object.assign(controller, {
    id,
    signal(signal: NodeJS.Signals) {
      if (controller.child.exitCode === null && controller.child.signalCode === null) controller.child.kill(signal);
    },
    async health(): Promise<ReplicaHealth> {
      return (await fetch(`${controller.metricsUrl}/health`)).json() as Promise<ReplicaHealth>;
    },
  });
}

/** SIGCONT first (a stopped process ignores SIGTERM until it runs), then a clean stop, SIGKILL if it hangs. */
export async function stopReplicas(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(async (replica) => {
      replica.signal('SIGCONT');
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        replica.stop(),
        new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), 20_000))),
      ]);
      clearTimeout(timer);
      if (stopped === 'timeout') await replica.kill();
    }),
  );
}

export interface LeaseView {
  host: string;
  holder: string | null;
  epoch: number;
  live: boolean;
}

/** The lease rows, judged live by the database's clock as the controllers judge them. */
export async function leases(pool: Pool): Promise<Map<string, LeaseView>> {
  const result = await pool.query<{ host: string; holder: string | null; epoch: string; live: boolean }>(
    'SELECT host, holder, epoch, (holder IS NOT NULL AND expires_at > now()) AS live FROM sessionctl.host_leases',
  );
  return new Map(result.rows.map((row) => [row.host, { ...row, epoch: Number(row.epoch) }]));
}

/** Host name to holder, once every host has a live lease held by one of `replicas`, each holding one at least. */
export async function waitLeasesShared(
  pool: Pool,
  replicas: Replica[],
  timeoutMs = 30_000,
): Promise<Map<string, LeaseView>> {
  const hosts = fleetDaemons().map((daemon) => daemon.name);
  const ids = new Set(replicas.map((replica) => replica.id));
  return waitFor(
    async () => {
      const current = await leases(pool);
      const held = hosts.map((host) => current.get(host));
      if (!held.every((lease) => lease?.live && ids.has(lease.holder!))) return undefined;
      const holders = new Set(held.map((lease) => lease!.holder));
      return holders.size === Math.min(ids.size, hosts.length) ? current : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `every host leased, shared by ${[...ids].join(', ')}` },
  );
}

export function hostsHeldBy(current: Map<string, LeaseView>, holder: string): string[] {
  return [...current.values()].filter((lease) => lease.live && lease.holder === holder).map((lease) => lease.host);
}

export interface SessionView {
  name: string;
  uid: string;
  generation: number;
  observedGeneration: number | undefined;
  placedHost: string | null;
  statusHost: string | undefined;
  evictRequested: boolean;
  phase: string | undefined;
  conditions: Record<string, { status: string; reason?: string; message?: string }>;
}

/** Rows by name (all rows when `names` is omitted). */
export async function sessionViews(pool: Pool, names?: string[]): Promise<SessionView[]> {
  const result = await pool.query(
    `SELECT name, uid, generation, placed_host, evict_requested_at IS NOT NULL AS evict, status
       FROM sessionctl.sessions WHERE $1::text[] IS NULL OR name = ANY($1) ORDER BY name`,
    [names ?? null],
  );
  return result.rows.map((row) => ({
    name: row.name,
    uid: row.uid,
    generation: Number(row.generation),
    observedGeneration: row.status?.observedGeneration,
    placedHost: row.placed_host,
    statusHost: row.status?.host,
    evictRequested: row.evict,
    phase: row.status?.phase,
    conditions: Object.fromEntries(
      (
        (row.status?.conditions ?? []) as Array<{ type: string; status: string; reason?: string; message?: string }>
      ).map((c) => [c.type, { status: c.status, reason: c.reason, message: c.message }]),
    ),
  }));
}

/** Ready=True at the current generation, on the host it is placed on. */
export const readyOnPlacedHost = (view: SessionView): boolean =>
  view.conditions.Ready?.status === 'True' &&
  view.observedGeneration === view.generation &&
  view.placedHost !== null &&
  view.statusHost === view.placedHost;

/** Waits until `check` holds for every row in `names`; returns the rows. The message lists a few that do not. */
export async function waitSessions(
  pool: Pool,
  names: string[],
  check: (view: SessionView) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<SessionView[]> {
  let last: SessionView[] = [];
  try {
    return await waitFor(
      async () => {
        last = await sessionViews(pool, names);
        return last.length === names.length && last.every(check) ? last : undefined;
      },
      { timeoutMs, intervalMs: 200, what },
    );
  } catch (error) {
    const off = last.filter((view) => !check(view)).slice(0, 5);
    throw new Error(`${(error as Error).message}\n  e.g. ${JSON.stringify(off, null, 1).slice(0, 2_000)}`);
  }
}

/** Inserts sessions in one statement, as another service would (the spec is plain JSON, checked by the controller). */
export async function insertSessions(pool: Pool, names: string[], spec: SessionSpecInput | object): Promise<void> {
  await pool.query(
    'INSERT INTO sessionctl.sessions (name, spec) SELECT name, $2::jsonb FROM unnest($1::text[]) AS name',
    [names, JSON.stringify(spec)],
  );
}

export const sessionNames = (prefix: string, count: number): string[] =>
  Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(3, '0')}`);

/** A running session that keeps no data on its host: it may move. */
export const statelessSpec = (extra: Partial<SessionSpecInput> = {}): SessionSpecInput =>
  httpSpec({ resources: { memory: '32Mi', cpus: '0.1' }, ...extra });

/** A session whose data stays on its host (a named volume): never moved by a lost host or a plain drain. */
export const volumeSpec = (extra: Partial<SessionSpecInput> = {}): SessionSpecInput =>
  statelessSpec({ volumes: [{ name: 'data', mountPath: '/data' }], ...extra });

/** The installation id of a test database: the label on every container its controllers make. */
export async function installationOf(pool: Pool): Promise<string> {
  return (await pool.query<{ id: string }>('SELECT id::text AS id FROM sessionctl.installation')).rows[0].id;
}

/** Milliseconds since `start`, for the timings the tests print and bound. */
export const since = (start: number): number => Date.now() - start;

/** One line to the test output with the figures a reader of the run wants (timings, counts). */
export function report(label: string, values: Record<string, unknown>): void {
  process.stdout.write(`[fleet] ${label}: ${JSON.stringify(values)}\n`);
}
