/**
 * (a) Create+start throughput: N containers straight through dockerode with a p-queue of the same
 * concurrency as the controller's Docker limiter (each on its own network first when the controller
 * runs PerSession), against N rows inserted in one statement and
 * reconciled by the controller until every row is Ready at its generation.
 */
import { performance } from 'node:perf_hooks';
import type Dockerode from 'dockerode';
import PQueue from 'p-queue';
import type { ControllerProcess } from '../../helpers/controller';
import type { TestDatabase } from '../../helpers/database';
import type { NetworkMode } from '../../../src/docker/networks';
import { rawCreateOptions, rawCreateStart } from '../lib/docker';
import { logLines } from '../lib/controller';
import { CpuTimeline, cpuByGroup, cpuSecondsBetween, cpuSnapshot, procSample } from '../lib/proc';
import { deltaByLabel, histogramDelta, histogramMean, histogramMeansBy, histogramQuantile, scrape } from '../lib/prom';
import { sleep, summarize, type Summary } from '../lib/stats';

export interface RawThroughput {
  totalSeconds: number;
  /** Per container, seconds from the start of the batch until its start call returned (running). */
  perContainer: Summary;
  /** The container's own network (PerSession); all zero with Shared. */
  networkMs: Summary;
  createMs: Summary;
  startMs: Summary;
  /** Sum of network+create+start time over wall time: Docker calls in flight on average. */
  averageInFlight: number;
  /** Containers running by each second after the batch start. */
  readyBySecond: number[];
  running: number;
  /** Cores used by each group of processes during the batch. */
  cpuCores: Record<string, number>;
  samples: number[];
}

export async function rawThroughput(
  docker: Dockerode,
  names: string[],
  concurrency: number,
  networkMode: NetworkMode,
  own: Record<string, number> = {},
): Promise<RawThroughput> {
  const queue = new PQueue({ concurrency });
  const cpuBefore = cpuSnapshot();
  const t0 = performance.now();
  const results = await Promise.all(
    names.map((name) =>
      queue.add(async () => {
        const { networkMs, createMs, startMs } = await rawCreateStart(docker, name, 'no', networkMode);
        return { readySeconds: (performance.now() - t0) / 1000, networkMs, createMs, startMs };
      }),
    ),
  );
  const totalSeconds = (performance.now() - t0) / 1000;
  const cpuCores = cpuByGroup(cpuBefore, cpuSnapshot(), { bench: process.pid, ...own });
  const prefixes = new Set(names.map((name) => `/${rawCreateOptions(name, 'no', networkMode).name}`));
  const running = (await docker.listContainers({ filters: { status: ['running'] } })).filter((info) =>
    info.Names.some((name) => prefixes.has(name)),
  ).length;
  return {
    totalSeconds,
    perContainer: summarize(results.map((result) => result.readySeconds)),
    networkMs: summarize(results.map((result) => result.networkMs)),
    createMs: summarize(results.map((result) => result.createMs)),
    startMs: summarize(results.map((result) => result.startMs)),
    averageInFlight:
      results.reduce((sum, result) => sum + result.networkMs + result.createMs + result.startMs, 0) /
      1000 /
      totalSeconds,
    readyBySecond: Array.from(
      { length: Math.ceil(totalSeconds) },
      (_, second) => results.filter((result) => result.readySeconds <= second + 1).length,
    ),
    running,
    cpuCores,
    samples: results.map((result) => result.readySeconds),
  };
}

export interface ControllerThroughput {
  /** Commit acknowledged to the bench's poll seeing all N rows Ready (poll every pollMs). */
  totalSeconds: number;
  /** Commit to the latest Ready lastTransitionTime written by the controller. */
  totalByTransitionSeconds: number;
  /** Per session, seconds from commit to its Ready lastTransitionTime. */
  perSession: Summary;
  insertMs: number;
  pollMs: number;
  polls: number;
  samples: number[];
  diagnostics: Record<string, unknown>;
}

/** One cheap query per poll (jsonb containment, ~0.3 ms for 100 rows): the poll's own load on PostgreSQL stays small. */
const READY_SQL = `SELECT count(*)::int AS ready FROM sessionctl.sessions
  WHERE name = ANY($1) AND (status->>'observedGeneration')::bigint = generation
    AND status @> '{"conditions":[{"type":"Ready","status":"True"}]}'`;

export async function controllerThroughput(
  db: TestDatabase,
  controller: ControllerProcess,
  names: string[],
  spec: object,
  options: { pollMs: number; timeoutMs: number },
): Promise<ControllerThroughput> {
  const pid = controller.child.pid!;
  const before = await scrape(controller.metricsUrl);
  const procBefore = procSample(pid);
  const cpuBefore = cpuSnapshot();
  const eventsBefore = (await db.pool.query('SELECT count(*)::int AS n FROM sessionctl.events')).rows[0].n as number;

  const timeline = new CpuTimeline();
  timeline.start(pid);
  const sent = Date.now();
  await db.pool.query(
    `INSERT INTO sessionctl.sessions (name, spec) SELECT name, $2::jsonb FROM unnest($1::text[]) AS name`,
    [names, JSON.stringify(spec)],
  );
  const committed = Date.now();
  let polls = 0;
  let ready = 0;
  const deadline = committed + options.timeoutMs;
  for (;;) {
    polls++;
    ready = (await db.pool.query(READY_SQL, [names])).rows[0].ready as number;
    if (ready === names.length) break;
    if (Date.now() > deadline)
      throw new Error(`only ${ready}/${names.length} sessions Ready after ${options.timeoutMs} ms`);
    await sleep(options.pollMs);
  }
  const observed = Date.now();
  timeline.stop();
  const procAfter = procSample(pid);
  const cpuCores = cpuByGroup(cpuBefore, cpuSnapshot(), { bench: process.pid, controller: pid });
  const after = await scrape(controller.metricsUrl);

  const rows = await db.pool.query<{ at: string }>(
    `SELECT c->>'lastTransitionTime' AS at FROM sessionctl.sessions s, jsonb_array_elements(s.status->'conditions') c
      WHERE s.name = ANY($1) AND c->>'type' = 'Ready'`,
    [names],
  );
  const perSession = rows.rows.map((row) => (Date.parse(row.at) - committed) / 1000);
  const eventsAfter = (await db.pool.query('SELECT count(*)::int AS n FROM sessionctl.events')).rows[0].n as number;

  const reconcileTime = histogramDelta(before, after, 'controller_runtime_reconcile_time_seconds');
  // Per session from the controller's own log: when its create and start calls returned.
  const wanted = new Set(names);
  const created = new Map<string, number>();
  const started = new Map<string, number>();
  for (const line of logLines(controller)) {
    if (!line.session || !wanted.has(line.session)) continue;
    if (line.msg === 'container created') created.set(line.session, line.time);
    if (line.msg === 'container started') started.set(line.session, line.time);
  }
  const createdToStarted = names
    .filter((name) => created.has(name) && started.has(name))
    .map((name) => started.get(name)! - created.get(name)!);
  const commitToCreated = names.filter((name) => created.has(name)).map((name) => created.get(name)! - committed);
  const queueWait = histogramDelta(before, after, 'workqueue_queue_duration_seconds');
  const reconciles = deltaByLabel(before, after, 'controller_runtime_reconcile_total', 'result');
  const reconcileCount = Object.values(reconciles).reduce((sum, value) => sum + value, 0);
  const wallSeconds = (observed - committed) / 1000;
  const dockerLatency = histogramMeansBy(before, after, 'sessionctl_docker_request_duration_seconds', 'operation');
  // The session's network calls too, as the raw side counts its network create.
  const createStartSeconds = ['network_create', 'network_inspect', 'create', 'start'].reduce(
    (sum, op) => sum + ((dockerLatency[op]?.count ?? 0) * (dockerLatency[op]?.meanMs ?? 0)) / 1000,
    0,
  );
  return {
    totalSeconds: wallSeconds,
    totalByTransitionSeconds: Math.max(...perSession),
    perSession: summarize(perSession),
    insertMs: committed - sent,
    pollMs: options.pollMs,
    polls,
    samples: perSession,
    diagnostics: {
      cpuCores,
      /** Cores used in each 0.5 s from the commit: is the controller's or PostgreSQL's CPU front-loaded? */
      cpuTimeline: timeline,
      /** Sessions Ready by each second after the commit, to compare the ramp with the raw side's. */
      readyBySecond: Array.from(
        { length: Math.ceil(Math.max(...perSession)) },
        (_, second) => perSession.filter((value) => value <= second + 1).length,
      ),
      reconcilesByResult: reconciles,
      reconcilesPerSession: reconcileCount / names.length,
      reconcileTimeMs: {
        mean: histogramMean(reconcileTime) * 1000,
        p50: histogramQuantile(0.5, reconcileTime) * 1000,
        p99: histogramQuantile(0.99, reconcileTime) * 1000,
      },
      /** Sum of reconcile time over wall time: how many workers were busy on average. */
      averageBusyWorkers: reconcileTime.sum / wallSeconds,
      queueWaitMs: {
        mean: histogramMean(queueWait) * 1000,
        p50: histogramQuantile(0.5, queueWait) * 1000,
        p99: histogramQuantile(0.99, queueWait) * 1000,
      },
      dockerRequests: deltaByLabel(before, after, 'sessionctl_docker_requests_total', 'operation'),
      dockerLatencyByOperation: dockerLatency,
      /** Same measure as the raw side's averageInFlight: network+create+start time over wall time. */
      averageDockerInFlight: createStartSeconds / wallSeconds,
      /** Reconcile time not spent inside Docker network/create/start calls, per session: limiter wait + DB round trips. */
      nonDockerReconcileMsPerSession: ((reconcileTime.sum - createStartSeconds) / names.length) * 1000,
      /** From the controller log: create returned -> start returned, per session (raw side: startMs). */
      createdToStartedMs: summarize(createdToStarted),
      commitToCreatedMs: summarize(commitToCreated),
      eventsWritten: eventsAfter - eventsBefore,
      controllerCpuSeconds: cpuSecondsBetween(procBefore, procAfter),
      controllerCpuPercentOfOneCore: (cpuSecondsBetween(procBefore, procAfter) / wallSeconds) * 100,
      controllerRssMbAfter: procAfter.rssKb / 1024,
    },
  };
}

/** DELETE the rows (a graceful deletion: the controller removes each container, then the row) and wait until they are gone. */
export async function controllerDelete(db: TestDatabase, names: string[], timeoutMs = 180_000): Promise<number> {
  const t0 = Date.now();
  await db.pool.query('DELETE FROM sessionctl.sessions WHERE name = ANY($1)', [names]);
  for (;;) {
    const left = (
      await db.pool.query('SELECT count(*)::int AS n FROM sessionctl.sessions WHERE name = ANY($1)', [names])
    ).rows[0].n as number;
    if (left === 0) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`${left} of ${names.length} deleted sessions still present after ${timeoutMs} ms`);
    await sleep(50);
  }
}
