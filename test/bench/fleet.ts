/**
 * `npm run bench:fleet` (issue 15, "How fast"): the fleet on the three dev dockerds (SESSIONCTL_HOSTS=3),
 * with two controller replicas.
 *   1. N sessions (300) over 3 hosts, time to all Ready, against raw dockerode spreading the same
 *      creates over the same daemons; the ratio (goal 1.10x or better).
 *   2. Failover after SIGKILL of a replica, --rounds rounds (5): p50 and max until every affected
 *      session is reconciled again (goal max under 20 s).
 *   3. Controller cost at --rows (1,000 and 10,000) rows over 3 hosts of capacity 100 (300 run, the
 *      rest wait for room): RSS, full resync, idle CPU, one edit's convergence (goals at 10,000: under
 *      300 MB, under 2 s, under 2 % of a core, under 1 s).
 * Writes test/bench/results/fleet.json and prints it. Small: `npm run bench:fleet -- --n 30 --rounds 2 --rows 500`.
 * It uses the test environment's daemons: never run it beside the test suite of the same environment.
 *
 * Flags: --n 300 --rounds 5 --rows 1000,10000 --edits 5 --failover-edits 10 --idle-seconds 30
 *        --phases throughput,failover,cost (or raw: the baseline alone) --poll-ms 50 --force
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { closeFleetClients, fleetDaemons, registerFleetHosts, removeFleetContainers } from '../helpers/fleet-docker';
import { startReplicas, stopReplicas, waitLeasesShared, type Replica } from '../helpers/fleet';
import { packageRoot } from '../../src/store/migrate';
import { benchSpec } from './lib/docker';
import { foreignActivity } from './lib/proc';
import { roundDeep } from './lib/stats';
import { controllerCost, type CostResult } from './fleet/cost';
import { diagnosticsEnd, diagnosticsStart, type FleetDiagnostics } from './fleet/diagnostics';
import { failoverRounds, type FailoverResult } from './fleet/failover';
import {
  insertRows,
  placedPerHost,
  rawFleet,
  removeRaw,
  waitReadyCount,
  type RawFleetResult,
} from './fleet/throughput';

const { values: flags } = parseArgs({
  options: {
    n: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '5' },
    rows: { type: 'string', default: '1000,10000' },
    edits: { type: 'string', default: '5' },
    'failover-edits': { type: 'string', default: '10' },
    'idle-seconds': { type: 'string', default: '30' },
    phases: { type: 'string', default: 'throughput,failover,cost' },
    'poll-ms': { type: 'string', default: '50' },
    force: { type: 'boolean', default: false },
  },
});
const N = Number(flags.n);
const ROUNDS = Number(flags.rounds);
const ROWS = flags.rows.split(',').map(Number);
const PHASES = new Set(flags.phases.split(','));
const POLL_MS = Number(flags['poll-ms']);
const CONCURRENCY = Number(process.env.SESSIONCTL_DOCKER_CONCURRENCY ?? 8);
// The controller's own safety poll (10 s), not the 2 s the tests use to converge sooner: the idle cost is a deployment's.
const ENV = { SESSIONCTL_DOCKER_CONCURRENCY: String(CONCURRENCY), SESSIONCTL_POLL_SECONDS: '10', LOG_LEVEL: 'warn' };
const RESULTS = path.join(packageRoot(), 'test', 'bench', 'results');
const log = (message: string) => console.log(`[bench:fleet ${new Date().toISOString().slice(11, 23)}] ${message}`);

let db: TestDatabase | undefined;
const replicas: Replica[] = [];
/** Every replica ever started (the killed ones too), for their logs. */
const started = new Set<Replica>();

async function cleanup(): Promise<void> {
  for (const replica of replicas) started.add(replica);
  await stopReplicas(replicas.splice(0));
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    path.join(RESULTS, 'fleet-controllers.log'),
    [...started].map((replica) => `===== ${replica.id} (pid ${replica.child.pid})\n${replica.output()}`).join('\n'),
  );
  await removeRaw(fleetDaemons()).catch(() => 0);
  await removeFleetContainers().catch(() => undefined);
  await db?.drop().catch(() => undefined);
  db = undefined;
}

interface ThroughputResult {
  n: number;
  raw: RawFleetResult;
  controller: { seconds: number; perHost: Record<string, number>; diagnostics?: FleetDiagnostics };
  ratio: number;
}

/** The baseline: raw dockerode, the same creates spread round robin over the same daemons. */
async function rawBaseline(names: string[]): Promise<RawFleetResult> {
  const daemons = fleetDaemons();
  // Warm-up on every daemon: image, caches, TLS connections.
  await rawFleet(
    daemons,
    daemons.map((_, index) => `warm-${index}`),
    CONCURRENCY,
  );
  await removeRaw(daemons);
  log(`raw dockerode: ${names.length} creates over ${daemons.length} daemons, ${CONCURRENCY} at a time per daemon`);
  const raw = await rawFleet(daemons, names, CONCURRENCY);
  log(`raw: ${raw.seconds.toFixed(2)} s, ${JSON.stringify(raw.perDaemon)}`);
  await removeRaw(daemons);
  return raw;
}

async function throughput(): Promise<ThroughputResult> {
  const names = Array.from({ length: N }, (_, index) => `bench-${String(index).padStart(4, '0')}`);
  const raw = await rawBaseline(names);
  db = await createTestDatabase('bench_fleet');
  await registerFleetHosts(db.pool);
  replicas.push(...(await startReplicas(db, 2, { prefix: 'bench', env: ENV })));
  await waitLeasesShared(db.pool, replicas);
  const started = await diagnosticsStart(replicas);
  const t0 = performance.now();
  await insertRows(db.pool, names, benchSpec());
  const seconds = await waitReadyCount(db.pool, N, { from: t0, pollMs: POLL_MS, timeoutMs: 900_000 });
  const diagnostics = await diagnosticsEnd(replicas, started);
  const perHost = await placedPerHost(db.pool);
  log(`controller (2 replicas): ${seconds.toFixed(2)} s, ${JSON.stringify(perHost)}`);
  log(`  diagnostics: ${JSON.stringify(roundDeep(diagnostics))}`);
  return { n: N, raw, controller: { seconds, perHost, diagnostics }, ratio: seconds / raw.seconds };
}

function readPrevious(): Partial<{
  raw: RawFleetResult;
  throughput: ThroughputResult;
  failover: FailoverResult;
  cost: CostResult[];
}> {
  try {
    return JSON.parse(readFileSync(path.join(RESULTS, 'fleet.json'), 'utf8'));
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const others = foreignActivity().filter((other) => other.sameDaemon);
  if (others.length && !flags.force) {
    console.error(
      `bench:fleet: a controller or jest run uses these daemons; wait for it (or --force):\n  ${others.map((o) => o.line).join('\n  ')}`,
    );
    process.exitCode = 2;
    return;
  }
  const loadAtStart = os.loadavg();
  log(
    `daemons ${fleetDaemons()
      .map((d) => d.name)
      .join(', ')}; phases ${[...PHASES].join(',')}`,
  );
  await removeFleetContainers();
  await removeRaw(fleetDaemons());
  const result: {
    raw?: RawFleetResult;
    throughput?: ThroughputResult;
    failover?: FailoverResult;
    cost: CostResult[];
  } = { cost: [] };
  // `--phases raw`: the baseline alone (no controller), to check the daemons and the figure.
  if (PHASES.has('raw')) result.raw = await rawBaseline(Array.from({ length: N }, (_, i) => `raw-${i}`));
  if (PHASES.has('throughput') || PHASES.has('failover')) result.throughput = await throughput();
  if (PHASES.has('failover'))
    result.failover = await failoverRounds({
      db: db!,
      replicas,
      rounds: ROUNDS,
      edits: Number(flags['failover-edits']),
      env: ENV,
      log,
      started,
    });
  await cleanup();
  if (PHASES.has('cost'))
    for (const rows of ROWS)
      result.cost.push(
        await controllerCost({
          rows,
          edits: Number(flags.edits),
          idleSeconds: Number(flags['idle-seconds']),
          env: ENV,
          log,
        }),
      );
  // Phases not run this time keep their figures from the previous results file.
  const previous = readPrevious();
  result.raw ??= previous.raw;
  result.throughput ??= previous.throughput;
  result.failover ??= previous.failover;
  if (!PHASES.has('cost') && previous.cost) result.cost = previous.cost;
  const atMost = result.cost.at(-1);
  const report = roundDeep({
    date: new Date().toISOString(),
    // The machine is shared: its load (1, 5, 15 min) says how much else ran beside the benchmark.
    machine: {
      cpus: os.cpus().length,
      memoryGb: os.totalmem() / 1024 ** 3,
      loadAtStart,
      loadAtEnd: os.loadavg(),
    },
    parameters: {
      n: N,
      rounds: ROUNDS,
      rows: ROWS,
      dockerConcurrencyPerHost: CONCURRENCY,
      replicas: 2,
      hosts: 3,
      controllerEnv: ENV,
    },
    ...result,
    goals: {
      ratioAtMost110: result.throughput ? result.throughput.ratio <= 1.1 : undefined,
      failoverMaxUnder20s: result.failover ? result.failover.reconciled.max < 20 : undefined,
      largestRows: atMost?.rows,
      rssUnder300Mb: atMost ? Math.max(...atMost.rssMb.idle) < 300 : undefined,
      fullResyncUnder2s: atMost
        ? atMost.fullResyncSeconds.every((seconds) => seconds !== null && seconds < 2)
        : undefined,
      idleCpuUnder2Percent: atMost ? Math.max(...atMost.idleCpuPercent) < 2 : undefined,
      editUnder1s: atMost ? atMost.editSeconds.max < 1 : undefined,
    },
  });
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'fleet.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });

main()
  .catch(async (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup();
    await closeFleetClients();
  });
