/**
 * `npm run bench:fleet`, part 3: what the controller costs as the rows grow. R session rows over the
 * three hosts with capacity 100 sessions each: 300 are placed and run, the rest wait for room
 * (Scheduled=False, no container). With two replicas, measured per replica: RSS once converged and
 * after an idle window, the time of a full resync (the replicas restarted: start to /readyz, which
 * is "the first full resync has been reconciled"), idle CPU over the window, and the time for one
 * edit of a running session to converge (Ready at its new generation), several times.
 */
import { performance } from 'node:perf_hooks';
import { createTestDatabase } from '../../helpers/database';
import { registerFleetHosts, removeFleetContainers } from '../../helpers/fleet-docker';
import { startReplicas, stopReplicas, type Replica } from '../../helpers/fleet';
import { waitFor } from '../../helpers/wait';
import { cpuSecondsBetween, procSample } from '../lib/proc';
import { scrape } from '../lib/prom';
import { sleep, summarize, type Summary } from '../lib/stats';
import { benchSpec } from '../lib/docker';
import { insertRows, placedPerHost, readyCount, waitReadyCount } from './throughput';

const CAPACITY = 100;

export interface CostResult {
  rows: number;
  running: number;
  convergeSeconds: number;
  placed: Record<string, number>;
  unschedulable: number;
  rssMb: { converged: number[]; idle: number[] };
  /** null: the replica was not ready within 45 s. */
  fullResyncSeconds: Array<number | null>;
  /** Per restarted replica, seconds from the spawn to each step its log names (resyncSteps). */
  fullResyncSteps: Array<Record<string, number>>;
  idleCpuPercent: number[];
  idleSeconds: number;
  /** Seconds waited before the idle window, until every replica used under 5 % of a core over 5 s (at most 60 s). */
  settleSeconds: number;
  editSeconds: Summary;
  /** Anything the replicas export about resyncs (names containing "resync"), for the record. */
  resyncMetrics: string[];
}

/** Seconds from `from` until the replica answers /readyz 200, or null if not within timeoutMs. */
async function secondsToReady(replica: Replica, from: number, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await fetch(`${replica.metricsUrl}/readyz`).catch(() => undefined);
    if (response?.status === 200) return (performance.now() - from) / 1000;
    await sleep(50);
  }
  return null;
}

/** Log messages of a replica's start, in order: what its time to ready is made of. */
const START_STEPS: Record<string, string> = {
  firstLog: '',
  metricsServer: 'metrics server listening',
  controllerStarted: 'controller started',
  ready: 'first full resync reconciled; ready',
};

/** Seconds from `spawnedAt` (ms since the epoch) to the first log line of each step, from JSON logs. */
function resyncSteps(output: string, spawnedAt: number): Record<string, number> {
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { time: string | number; msg?: string; hosts?: string[] });
  const steps: Record<string, number> = {};
  for (const [step, message] of Object.entries(START_STEPS)) {
    const line = lines.find((candidate) => message === '' || candidate.msg === message);
    if (line) steps[step] = (new Date(line.time).getTime() - spawnedAt) / 1000;
  }
  steps.hostsAtStart = lines.find((line) => line.msg === 'controller started')?.hosts?.length ?? -1;
  return steps;
}

const SETTLED_PERCENT = 5;

/** Waits until every replica used under SETTLED_PERCENT of a core over 5 s, at most 60 s; returns the seconds waited. */
async function settle(replicas: Replica[]): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 60_000) {
    const before = replicas.map((replica) => procSample(replica.child.pid!));
    await sleep(5_000);
    const busiest = Math.max(
      ...replicas.map((replica, index) => (100 * cpuSecondsBetween(before[index], procSample(replica.child.pid!))) / 5),
    );
    if (busiest < SETTLED_PERCENT) break;
  }
  return (performance.now() - t0) / 1000;
}

const rssMb = (replica: Replica) => procSample(replica.child.pid!).rssKb / 1024;

async function unschedulable(db: { pool: import('pg').Pool }): Promise<number> {
  const result = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM sessionctl.sessions
      WHERE placed_host IS NULL AND status @> '{"conditions":[{"type":"Scheduled","status":"False"}]}'`,
  );
  return result.rows[0].n;
}

async function timeEdit(db: { pool: import('pg').Pool }, name: string, value: string): Promise<number> {
  const t0 = performance.now();
  await db.pool.query(
    `UPDATE sessionctl.sessions SET spec = jsonb_set(spec, '{env,EDIT}', to_jsonb($2::text)) WHERE name = $1`,
    [name, value],
  );
  return waitReadyCount(db.pool, 1, { from: t0, pollMs: 10, timeoutMs: 60_000, names: [name] });
}

export async function controllerCost(options: {
  rows: number;
  edits: number;
  idleSeconds: number;
  env: Record<string, string>;
  log: (message: string) => void;
}): Promise<CostResult> {
  const { rows, log } = options;
  const db = await createTestDatabase(`bench_fleet_cost_${rows}`);
  let replicas: Replica[] = [];
  try {
    await registerFleetHosts(db.pool, { maxSessions: CAPACITY });
    const names = Array.from({ length: rows }, (_, index) => `cost-${String(index).padStart(5, '0')}`);
    const running = Math.min(rows, 3 * CAPACITY);
    // The replicas start first, then the rows arrive: replicas started over rows that cannot all be
    // placed never finished starting in the run of 2026-12-01 (their placers kept running, about 40 %
    // of a core each, and the work queue never started), see the lane's report.
    replicas = await startReplicas(db, 2, { prefix: `cost${rows}`, env: options.env });
    const t0 = performance.now();
    await insertRows(db.pool, names, benchSpec());
    const convergeSeconds = await waitReadyCount(db.pool, running, { from: t0, pollMs: 250, timeoutMs: 900_000 });
    // Every waiting row should say Scheduled=False; the count is recorded, not waited for long (in the
    // run of 2026-12-01 rows beyond the placer's first 500 unplaced ones never got a status).
    await waitFor(async () => (await unschedulable(db)) >= rows - running, {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: `${rows - running} sessions Scheduled=False`,
    }).catch(() => undefined);
    log(`cost R=${rows}: ${running} Ready in ${convergeSeconds.toFixed(1)} s, ${rows - running} waiting`);
    const converged = replicas.map(rssMb);

    // Idle: nothing changes for idleSeconds, once the replicas have settled (the garbage of the burst
    // collected: a heap of 10,000 rows' placement passes shrinks over the next seconds).
    const settleSeconds = await settle(replicas);
    const before = replicas.map((replica) => procSample(replica.child.pid!));
    await sleep(options.idleSeconds * 1000);
    const after = replicas.map((replica) => procSample(replica.child.pid!));
    const idleCpuPercent = before.map(
      (sample, index) => (100 * cpuSecondsBetween(sample, after[index])) / options.idleSeconds,
    );
    const idle = replicas.map(rssMb);

    const runningNames = (
      await db.pool.query<{ name: string }>(
        'SELECT name FROM sessionctl.sessions WHERE placed_host IS NOT NULL ORDER BY name LIMIT $1',
        [options.edits],
      )
    ).rows.map((row) => row.name);
    const edits: number[] = [];
    for (const [index, name] of runningNames.entries()) edits.push(await timeEdit(db, name, `e${index}`));

    // A full resync: both replicas restarted over the converged fleet, start to /readyz (at most 45 s).
    await stopReplicas(replicas);
    const r0 = performance.now();
    const spawnedAt = Date.now();
    replicas = await startReplicas(db, 2, {
      prefix: `cost${rows}r`,
      env: { ...options.env, LOG_LEVEL: 'info' },
      waitReady: false,
    });
    const fullResyncSeconds = await Promise.all(replicas.map((replica) => secondsToReady(replica, r0, 45_000)));
    const fullResyncSteps = replicas.map((replica) => resyncSteps(replica.output(), spawnedAt));
    log(`cost R=${rows}: restarted replicas ready after ${fullResyncSeconds.join(', ')} s (null: not within 45 s)`);

    const resyncMetrics = (await Promise.all(replicas.map((replica) => scrape(replica.metricsUrl))))
      .flat()
      .filter((sample) => sample.name.includes('resync'))
      .map((sample) => `${sample.name}${JSON.stringify(sample.labels)} ${sample.value}`);
    return {
      rows,
      running: await readyCount(db.pool),
      convergeSeconds,
      placed: await placedPerHost(db.pool),
      unschedulable: await unschedulable(db),
      rssMb: { converged, idle },
      fullResyncSeconds,
      fullResyncSteps,
      idleCpuPercent,
      idleSeconds: options.idleSeconds,
      settleSeconds,
      editSeconds: summarize(edits),
      resyncMetrics,
    };
  } finally {
    await stopReplicas(replicas);
    await removeFleetContainers();
    await db.drop();
  }
}
