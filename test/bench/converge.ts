/**
 * `npm run bench`: sessionctl against raw dockerode and docker-compose, side by side in one run on
 * the same daemon and image, in the controller's network mode (SESSIONCTL_NETWORK_MODE, default
 * PerSession: raw and compose give each container its own network too). (a) create+start throughput
 * for each session count (50 and 200 by default) and a one-session edit, (b) LISTEN pickup latency,
 * (c) SIGKILL recovery against Docker's restart=always, (d) idle cost; controller CPU and RSS under
 * load and idle.
 * Writes test/bench/results/latest.{json,md,svg} (+ latest-controller.log) and prints the table.
 *
 * It must not run against the same Docker daemon as the test suite: test controllers remove managed
 * containers that have no row in their own database (and vice versa), and test files remove every
 * managed container. It refuses to start, and abandons a run, while a controller or jest uses the
 * same DOCKER_HOST, unless --force. With its own daemon and database it can run beside the tests:
 *   SESSIONCTL_STATE_DIR=/tmp/sctl-bench SESSIONCTL_DOCKER_PORT=2377 SESSIONCTL_PG_PORT=54339 npm run bench
 * (then `SESSIONCTL_STATE_DIR=/tmp/sctl-bench SESSIONCTL_DOCKER_PORT=2377 SESSIONCTL_PG_PORT=54339 npm run env:down`).
 *
 * Flags: --sizes 50,200 (or --n 100 for one size) --rounds 3 --edits 5 --no-compose --m 50 --k 10
 *        --idle-seconds 60 --spacing-ms 50 --poll-ms 50 --force
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { testDocker } from '../helpers/docker';
import { packageRoot } from '../../src/store/migrate';
import { execFileSync } from 'node:child_process';
import { startBenchController } from './lib/controller';
import { SESSION_PREFIX, benchNetworkMode, benchSpec, foreignContainers, removeBenchContainers } from './lib/docker';
import { foreignActivity, waitHostQuiet, type ForeignProcess } from './lib/proc';
import { writeResults } from './lib/report';
import { idleCost } from './phases/idle';
import { pickupLatency } from './phases/pickup';
import { recovery } from './phases/recovery';
import { throughputRounds } from './phases/rounds';
import { controllerDelete, rawThroughput } from './phases/throughput';
import { buildReport, type BenchParams } from './summary';

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '50,200' },
    n: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    edits: { type: 'string', default: '5' },
    'no-compose': { type: 'boolean', default: false },
    m: { type: 'string', default: '50' },
    k: { type: 'string', default: '10' },
    'idle-seconds': { type: 'string', default: '60' },
    'spacing-ms': { type: 'string', default: '50' },
    'poll-ms': { type: 'string', default: '50' },
    force: { type: 'boolean', default: false },
  },
});
const sizes = (flags.n ?? flags.sizes)
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
if (sizes.some((size) => !Number.isInteger(size) || size < 1))
  throw new Error(`--sizes: expected positive integers such as 50,200, got ${flags.sizes}`);
const params: BenchParams = {
  sizes,
  n: sizes.at(-1)!,
  rounds: Number(flags.rounds),
  edits: Number(flags.edits),
  compose: !flags['no-compose'],
  m: Number(flags.m),
  k: Number(flags.k),
  idleSeconds: Number(flags['idle-seconds']),
  spacingMs: Number(flags['spacing-ms']),
  pollMs: Number(flags['poll-ms']),
  dockerConcurrency: Number(process.env.SESSIONCTL_DOCKER_CONCURRENCY ?? 8),
  networkMode: benchNetworkMode().mode,
  resyncSeconds: Number(process.env.SESSIONCTL_RESYNC_SECONDS ?? 300),
  pollSeconds: Number(process.env.SESSIONCTL_POLL_SECONDS ?? 10),
};
const CONCURRENCY = params.dockerConcurrency;
const RESULTS = path.join(packageRoot(), 'test', 'bench', 'results');
const pad = (index: number) => String(index).padStart(3, '0');
const log = (message: string) => console.log(`[bench ${new Date().toISOString().slice(11, 23)}] ${message}`);

const docker = testDocker();
let db: TestDatabase | undefined;
let controller: ControllerProcess | undefined;
const contamination: string[] = [];

/**
 * Checks every second that no other controller or jest run has appeared. One on our Docker daemon
 * abandons the run at once (unless --force): our controller is SIGKILLed first, because it removes
 * the other run's managed containers as orphans (and theirs ours), then only our own containers and
 * database are cleaned up. One on another daemon only shares the CPU: it is recorded, not fatal.
 */
function watchForOthers(known: ForeignProcess[]): NodeJS.Timeout {
  const seen = new Set<string>(known.map((other) => other.line));
  return setInterval(() => {
    const others = foreignActivity(controller?.child.pid ? [controller.child.pid] : []).filter(
      (other) => !seen.has(other.line),
    );
    if (others.length === 0) return;
    others.forEach((other) => seen.add(other.line));
    contamination.push(
      ...others.map(
        (other) =>
          `${new Date().toISOString()} ${other.sameDaemon ? 'same daemon' : 'other daemon, CPU shared'}: ${other.line}`,
      ),
    );
    const conflicting = others.filter((other) => other.sameDaemon);
    if (flags.force || conflicting.length === 0) return;
    console.error(
      `bench: another controller or jest run started on this Docker daemon; abandoning the benchmark:\n  ${conflicting.map((other) => other.line).join('\n  ')}`,
    );
    void (controller?.kill() ?? Promise.resolve()).then(() => cleanup()).finally(() => process.exit(3));
  }, 1_000);
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (controller) {
      const stopped = await Promise.race([
        controller.stop(),
        new Promise((resolve) => setTimeout(() => resolve('timeout'), 25_000)),
      ]);
      if (stopped === 'timeout') await controller.kill();
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(path.join(RESULTS, 'latest-controller.log'), controller.output());
    }
    // Again until nothing is left: a create already sent by a killed controller can land after a list.
    let removed = 0;
    for (let pass = 0; pass < 3; pass++) {
      const count = await removeBenchContainers(docker, CONCURRENCY, { controllerNetworks: true }).catch(
        (error: Error) => (log(`cleanup: ${error.message}`), 0),
      );
      removed += count;
      if (count === 0 && pass > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (db) await db.drop().catch((error: Error) => log(`dropping the database failed: ${error.message}`));
    log(`cleanup: removed ${removed} benchmark containers${db ? ', dropped the database' : ''}`);
  })();
  return cleaning;
}

for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.once(event, (error: unknown) => {
    console.error(`bench: ${event}: ${(error as Error)?.stack ?? String(error)}`);
    void cleanup().finally(() => process.exit(1));
  });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const others = foreignActivity();
  const conflicting = others.filter((other) => other.sameDaemon);
  if (conflicting.length && !flags.force) {
    console.error(
      'bench: other sessionctl controllers or jest runs are active on this machine. They remove managed containers that are not in\n' +
        'their own database, so the benchmark and the test suite must not run at the same time. Wait for them to finish\n' +
        '(or give the benchmark its own daemon and database: SESSIONCTL_STATE_DIR=/tmp/sctl-bench SESSIONCTL_DOCKER_PORT=2377\n' +
        `SESSIONCTL_PG_PORT=54339 npm run bench; or pass --force and get results marked contaminated):\n  ${conflicting.map((other) => other.line).join('\n  ')}`,
    );
    process.exitCode = 2;
    return;
  }
  contamination.push(
    ...others.map((other) => `start ${other.sameDaemon ? 'same daemon' : 'other daemon, CPU shared'}: ${other.line}`),
  );
  const watchdog = watchForOthers(others);
  watchdog.unref();
  const version = await docker.version();
  await docker.getImage('sessionctl/base:dev').inspect();
  const leftovers = await removeBenchContainers(docker, CONCURRENCY, { controllerNetworks: true });
  if (leftovers) log(`removed ${leftovers} leftover benchmark containers`);
  const foreignAtStart = await foreignContainers(docker);
  let composeVersion: string | undefined;
  if (params.compose) {
    try {
      composeVersion = execFileSync('docker-compose', ['version', '--short'], { encoding: 'utf8' }).trim();
    } catch {
      throw new Error(
        "docker-compose is not installed: `npm run env:up` installs Debian's package (or pass --no-compose)",
      );
    }
  }
  log(
    `docker ${version.Version}, docker-compose ${composeVersion ?? 'not run'}; N=${params.sizes.join(',')} x ${params.rounds} rounds, M=${params.m}, K=${params.k}, idle ${params.idleSeconds} s, Docker concurrency ${CONCURRENCY}, network mode ${params.networkMode}; other containers on the daemon: ${foreignAtStart.total}`,
  );

  // Warm-up: the image, the daemon's caches and our TLS connections, equally for both sides.
  await rawThroughput(
    docker,
    Array.from({ length: 8 }, (_, index) => `warm-${pad(index)}`),
    CONCURRENCY,
    params.networkMode,
  );
  await removeBenchContainers(docker, CONCURRENCY);

  db = await createTestDatabase('bench');
  controller = await startBenchController(db.url, {
    SESSIONCTL_DOCKER_CONCURRENCY: String(CONCURRENCY),
    SESSIONCTL_NETWORK_MODE: params.networkMode,
    SESSIONCTL_POLL_SECONDS: String(params.pollSeconds),
  });
  const controllerStartedAt = Date.now();
  log(`controller pid ${controller.child.pid} ready`);
  const spec = benchSpec();

  const throughput = [];
  for (const n of params.sizes) {
    log(`(a) N=${n}`);
    const result = await throughputRounds({
      docker,
      db,
      controller,
      spec,
      networkMode: params.networkMode,
      n,
      rounds: params.rounds,
      concurrency: CONCURRENCY,
      pollMs: params.pollMs,
      edits: params.edits,
      skipCompose: !params.compose,
      log,
    });
    throughput.push(result);
    // The sessions of the largest size stay for (b)-(d).
    if (n !== params.n) await controllerDelete(db, result.finalNames);
  }
  const names = throughput.at(-1)!.finalNames;
  const settleSeconds = Object.fromEntries(
    throughput.flatMap((result) =>
      Object.entries(result.settleSeconds).map(([phase, seconds]) => [`N=${result.n} ${phase}`, seconds]),
    ),
  );

  log(`(d) idle window ${params.idleSeconds} s with ${params.n} sessions`);
  const idle = await idleCost(controller, params.idleSeconds);
  const idleEndedAt = Date.now();

  log(`(b) pickup: ${params.m} single-row updates ${params.spacingMs} ms apart`);
  const pickup = await pickupLatency(db, controller, names, params.m, params.spacingMs);

  log(`(c) SIGKILL recovery: ${params.k} raw containers vs ${params.k} sessions, one crash each`);
  const recoverySettle = await waitHostQuiet();
  const restart = await recovery(docker, db, controller, {
    trials: params.k,
    concurrency: CONCURRENCY,
    spec,
    rawNames: Array.from({ length: params.k }, (_, index) => `kill-${pad(index)}`),
    sessionNames: Array.from({ length: params.k }, (_, index) => `${SESSION_PREFIX}kill-${pad(index)}`),
    networkMode: params.networkMode,
  });

  const report = buildReport({
    params,
    version,
    composeVersion,
    foreignAtStart,
    contamination,
    throughput,
    idle,
    pickup,
    restart,
    settleSeconds: { ...settleSeconds, recovery: recoverySettle },
    secondsFromControllerStartToIdleEnd: (idleEndedAt - controllerStartedAt) / 1000,
  });
  const files = writeResults(RESULTS, report.json, report.markdown, report.svg);
  console.log(
    `\n${report.table}\n\nOverall: ${report.passed ? 'PASS' : 'FAIL'}${contamination.length ? `\nCONTAMINATED:\n  ${contamination.join('\n  ')}` : ''}`,
  );
  console.log(`Wrote ${files.map((file) => path.relative(process.cwd(), file)).join(', ')}`);
}

main()
  .catch((error: Error) => {
    if (cleaning) return; // interrupted: the failure is the clean-up pulling things away
    console.error(`bench failed: ${error.stack ?? error.message}`);
    if (/socket hang up|ECONNRESET/.test(error.message)) {
      console.error(
        "hint: dockerd did not answer a request within the Docker client's 5 s response deadline. If container starts and removals\n" +
          'keep hanging, dockerd 20.10.24 may be in its known libnetwork deadlock (moby/moby#46661, fixed in 20.10.27): look for\n' +
          'getSvcRecords and processEndpointDelete in `curl --cacert ca.pem --cert cert.pem --key key.pem $DOCKER_HOST/debug/pprof/goroutine?debug=2`\n' +
          '(https, from $DOCKER_CERT_PATH); only a dockerd restart clears it.',
      );
    }
    if (controller) console.error(`--- controller output (last 4000 chars) ---\n${controller.output().slice(-4000)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup())
  // The Docker client's keep-alive agent would hold the process open.
  .finally(() => process.exit());
