/**
 * From the figures of one run to the report: the table rows with their targets and pass/fail, the
 * method notes, latest.json's content, the markdown and the chart.
 */
import os from 'node:os';
import type Dockerode from 'dockerode';
import type { NetworkMode } from '../../src/docker/networks';
import { rawCreateOptions, rawNetworkOptions } from './lib/docker';
import { COLORS, markdownTable, svgChart, type Row } from './lib/report';
import type { IdleResult } from './phases/idle';
import type { PickupResult } from './phases/pickup';
import type { RecoveryResult } from './phases/recovery';
import type { RoundsResult } from './phases/rounds';

/** A full resync lists the containers and the networks (orphaned session networks are pruned), once each. */
const RESYNC_CALLS: ReadonlySet<string> = new Set(['list', 'network_list']);

export const TARGETS = {
  throughputRatio: 1.05,
  throughputTargetMinN: 200,
  editSeconds: 1,
  pickupP50Ms: 20,
  recoveryRatio: 2,
  idleCpuPercent: 2,
  idleRssMb: 200,
};

export interface BenchParams {
  /** Session counts, each run as its own set of rounds; (b)-(d) run with the largest. */
  sizes: number[];
  n: number;
  rounds: number;
  edits: number;
  compose: boolean;
  m: number;
  k: number;
  idleSeconds: number;
  spacingMs: number;
  pollMs: number;
  dockerConcurrency: number;
  /** The controller's SESSIONCTL_NETWORK_MODE; the raw and compose sides do the same network work. */
  networkMode: NetworkMode;
  resyncSeconds: number;
  pollSeconds: number;
}

export interface BenchFigures {
  params: BenchParams;
  version: Dockerode.DockerVersion;
  composeVersion?: string;
  foreignAtStart: { total: number; running: number };
  contamination: string[];
  throughput: RoundsResult[];
  idle: IdleResult;
  pickup: PickupResult;
  restart: RecoveryResult;
  settleSeconds: Record<string, number>;
  secondsFromControllerStartToIdleEnd: number;
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

const NETWORK_WORDS: Record<NetworkMode, string> = {
  PerSession: 'a network per container',
  Shared: 'default bridge',
};

/** The rows of one session count: totals, per-session quantiles, the one-session edit, the controller's load. */
function sizeRows(tp: RoundsResult, rounds: number, networkMode: NetworkMode): Row[] {
  const n = tp.n;
  const targeted = n >= TARGETS.throughputTargetMinN;
  const hasCompose = tp.compose.length > 0;
  const aheadOfCompose = !hasCompose || tp.controllerTotalSeconds < tp.composeTotalSeconds;
  const rows: Row[] = [
    {
      measure: `N=${n}: all running / Ready, total (mean of ${rounds}; ${NETWORK_WORDS[networkMode]})`,
      baseline: tp.rawTotalSeconds,
      compose: hasCompose ? tp.composeTotalSeconds : 'not run',
      controller: tp.controllerTotalSeconds,
      unit: 's',
      ratio: tp.ratio,
      ...(targeted
        ? {
            target: `÷raw ≤ ${TARGETS.throughputRatio}${hasCompose ? ', < compose' : ''}`,
            pass: tp.ratio <= TARGETS.throughputRatio && aheadOfCompose,
          }
        : {}),
    },
    {
      measure: `N=${n}: per session, p50`,
      baseline: tp.rawPerSession.p50,
      compose: hasCompose ? tp.composePerSession.p50 : undefined,
      controller: tp.controllerPerSession.p50,
      unit: 's',
      ratio: tp.controllerPerSession.p50 / tp.rawPerSession.p50,
    },
    {
      measure: `N=${n}: per session, p99`,
      baseline: tp.rawPerSession.p99,
      compose: hasCompose ? tp.composePerSession.p99 : undefined,
      controller: tp.controllerPerSession.p99,
      unit: 's',
      ratio: tp.controllerPerSession.p99 / tp.rawPerSession.p99,
    },
    {
      measure: `N=${n}: total per round (sessionctl ÷ raw)`,
      controller: `${Math.min(...tp.perRoundRatio).toFixed(2)}–${Math.max(...tp.perRoundRatio).toFixed(2)}×`,
      unit: '',
    },
    {
      measure: `N=${n}: edit one session, p50 of ${tp.edits.controller.trials}`,
      baseline: tp.edits.raw.seconds.p50,
      compose: tp.edits.compose ? tp.edits.compose.seconds.p50 : undefined,
      controller: tp.edits.controller.seconds.p50,
      unit: 's',
      ratio: tp.edits.controller.seconds.p50 / tp.edits.raw.seconds.p50,
      target: `< ${TARGETS.editSeconds} s`,
      pass: tp.edits.controller.seconds.max < TARGETS.editSeconds,
    },
    {
      measure: `N=${n}: remove all (force-remove; DELETE rows)`,
      baseline: mean(tp.rawRemoveSeconds),
      compose: hasCompose ? mean(tp.composeRemoveSeconds) : undefined,
      controller: tp.controllerDeleteSeconds.length ? mean(tp.controllerDeleteSeconds) : Number.NaN,
      unit: 's',
    },
    {
      measure: `N=${n}: controller CPU while creating (mean)`,
      controller: mean(tp.controllerLoad.cpuPercentOfOneCore),
      unit: '% of a core',
    },
    {
      measure: `N=${n}: controller RSS after creating (max)`,
      controller: Math.max(...tp.controllerLoad.rssMbAfter),
      unit: 'MB',
    },
  ];
  return rows;
}

export function buildReport(figures: BenchFigures) {
  const { params, version, idle, pickup, restart } = figures;
  const { n, m, k, resyncSeconds } = params;
  // A full resync (one list) can only fall in the window once the controller has run 0.9 × the interval.
  const resyncsPossible =
    figures.secondsFromControllerStartToIdleEnd >= resyncSeconds * 0.9
      ? Math.ceil(idle.seconds / (resyncSeconds * 0.9))
      : 0;
  // events_check is the event stream's liveness check: one cheap bounded call every 5 s, by design.
  const idleDockerPass =
    Object.keys(idle.dockerRequests).every(
      (operation) => RESYNC_CALLS.has(operation) || operation === 'events_check',
    ) && [...RESYNC_CALLS].every((operation) => (idle.dockerRequests[operation] ?? 0) <= resyncsPossible);
  const idleCalls =
    Object.entries(idle.dockerRequests)
      .map(([operation, count]) => `${operation}:${count}`)
      .join(' ') || 'none';
  const rows: Row[] = [
    ...figures.throughput.flatMap((tp) => sizeRows(tp, params.rounds, params.networkMode)),
    {
      measure: `LISTEN pickup p50 (M=${m}, histogram)`,
      controller: pickup.p50Ms,
      unit: 'ms',
      target: `< ${TARGETS.pickupP50Ms} ms`,
      pass: pickup.p50Ms < TARGETS.pickupP50Ms,
    },
    { measure: 'LISTEN pickup p99 (histogram)', controller: pickup.p99Ms, unit: 'ms' },
    {
      measure: `SIGKILL -> running, p50 (K=${k}; Docker --restart=always)`,
      baseline: restart.dockerMs.p50,
      controller: restart.controllerMs.p50,
      unit: 'ms',
      ratio: restart.controllerMs.p50 / restart.dockerMs.p50,
      target: `÷Docker ≤ ${TARGETS.recoveryRatio}`,
      pass: restart.controllerMs.p50 / restart.dockerMs.p50 <= TARGETS.recoveryRatio,
    },
    {
      measure: 'SIGKILL -> running, p90',
      baseline: restart.dockerMs.p90,
      controller: restart.controllerMs.p90,
      unit: 'ms',
      ratio: restart.controllerMs.p90 / restart.dockerMs.p90,
    },
    {
      measure: `Idle CPU (${Math.round(idle.seconds)} s, ${n} sessions)`,
      controller: idle.cpuPercentOfOneCore,
      unit: '% of a core',
      target: `< ${TARGETS.idleCpuPercent}%`,
      pass: idle.cpuPercentOfOneCore < TARGETS.idleCpuPercent,
    },
    {
      measure: 'Idle RSS (max in window)',
      controller: idle.rssMb.max,
      unit: 'MB',
      target: `< ${TARGETS.idleRssMb} MB`,
      pass: idle.rssMb.max < TARGETS.idleRssMb,
    },
    { measure: 'Peak RSS since start (VmHWM)', controller: idle.peakRssMb, unit: 'MB' },
    {
      measure: 'Idle Docker API calls',
      controller: idleCalls,
      unit: '',
      target: `none; a resync's lists only (≤${resyncsPossible} here)`,
      pass: idleDockerPass,
    },
    { measure: 'Idle reconciles', controller: String(idle.reconciles), unit: '' },
  ];
  const table = markdownTable(rows);
  const passed = rows.every((row) => row.pass !== false);
  const date = new Date().toISOString();
  const caption = `${date.slice(0, 16)}Z · docker ${version.Version} · ${os.cpus().length} cores · node ${process.version} · network mode ${params.networkMode}`;
  const notes = [
    ...figures.throughput.map(
      (tp) =>
        `N=${tp.n}: ${params.rounds} alternating rounds (raw, docker-compose, sessionctl, raw, ...) on one daemon; totals are means (raw ${tp.raw.map((raw) => raw.totalSeconds.toFixed(2)).join(', ')} s; compose ${tp.compose.map((compose) => compose.totalSeconds.toFixed(2)).join(', ') || '—'} s; sessionctl ${tp.controller.map((ctl) => ctl.totalSeconds.toFixed(2)).join(', ')} s), per-session quantiles pool all rounds.`,
    ),
    `Raw = N× dockerode create+start through p-queue(${params.dockerConcurrency}), from the batch start to each start() returning. docker-compose ${figures.composeVersion ?? ''} = one compose file with N services carrying the same settings, \`docker-compose up -d\` from spawn to exit (COMPOSE_PARALLEL_LIMIT=2N, since 1.29 can deadlock with its default on large projects); per container = batch start to the daemon's start event. sessionctl = one INSERT ... SELECT unnest, from the commit ack to the bench's ${params.pollMs} ms poll seeing all rows Ready at their generation; per session = commit to the Ready condition's lastTransitionTime. All three send the same create options (containerCreateOptions); only names and labels differ. Network mode ${params.networkMode} (SESSIONCTL_NETWORK_MODE): ${params.networkMode === 'PerSession' ? "each container on a bridge network of its own, created just before it with the controller's network options (sessionNetworkCreateOptions; raw: in the same queue slot, compose: a network per service, which compose creates before the containers), and removed with it" : "every container on the daemon's default bridge"}.`,
    `Edit one session with N running (last round, ${params.edits} trials each, different sessions): raw = force-remove, create, start; docker-compose = change one service's environment in the file, \`up -d\` (compose re-checks all N services' config hashes and recreates one); sessionctl = UPDATE one row's spec.env, from the commit ack to the row Ready at the new generation with a new container (polled every 5 ms). The target applies to the slowest sessionctl trial.`,
    `Before every timed batch the bench waits until the whole machine is < 15% busy for 1 s (dockerd keeps tearing down removed containers after the API returns); waits in s: ${Object.entries(
      figures.settleSeconds,
    )
      .map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)}`)
      .join(', ')}.`,
    'Pickup: delta of the controller histogram sessionctl_notify_pickup_seconds (trigger clock_timestamp() -> key queued) over exactly the M updates; quantiles interpolated within buckets like PromQL histogram_quantile. Each update flips spec.restartPolicy, which is outside the spec hash: a generation bump with no container change.',
    `Recovery: ${restart.method}. Raw and sessionctl trials alternate.`,
    'Idle: utime+stime from /proc/<pid>/stat over the window, VmRSS sampled each second, VmHWM at the end; Docker calls from sessionctl_docker_requests_total. An "events" call in the window means the event stream was re-opened, which also relists and requeues every session; a "list" (containers) with a "network_list" (orphaned session networks) is a full resync.',
  ];
  const markdown = `# sessionctl benchmark — ${date}\n\n${caption}. Overall: **${passed ? 'PASS' : 'FAIL'}**${figures.contamination.length ? ' (CONTAMINATED: other controllers/jest were running)' : ''}\n\n${table}\n\n## Method\n\n${notes.map((note) => `- ${note}`).join('\n')}\n\n![chart](latest.svg)\n`;
  const json = {
    date,
    machine: {
      hostname: os.hostname(),
      platform: `${os.type()} ${os.release()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGb: os.totalmem() / 1024 ** 3,
    },
    node: process.version,
    docker: { serverVersion: version.Version, apiVersion: version.ApiVersion, host: process.env.DOCKER_HOST },
    dockerCompose: figures.composeVersion,
    parameters: {
      ...params,
      image: 'sessionctl/base:dev',
      createOptions: rawCreateOptions('example', 'no', params.networkMode),
      ...(params.networkMode === 'PerSession' ? { networkOptions: rawNetworkOptions('example') } : {}),
    },
    otherContainersOnDaemonAtStart: figures.foreignAtStart,
    settleSecondsBeforePhase: figures.settleSeconds,
    contamination: figures.contamination,
    targets: TARGETS,
    checks: Object.fromEntries(
      rows
        .filter((row) => row.pass !== undefined)
        .map((row) => [row.measure, { value: row.ratio ?? row.controller, target: row.target, pass: row.pass }]),
    ),
    pass: passed,
    rows,
    throughput: figures.throughput,
    pickup,
    recovery: restart,
    idle,
    notes,
  };
  const largest = figures.throughput.at(-1)!;
  const svg = svgChart(
    [
      ...figures.throughput.map((tp) => ({
        title: `N=${tp.n}: all running/Ready`,
        unit: 's',
        bars: [
          { label: 'raw', value: tp.rawTotalSeconds, color: COLORS.raw },
          ...(tp.compose.length ? [{ label: 'compose', value: tp.composeTotalSeconds, color: COLORS.compose }] : []),
          { label: 'sessionctl', value: tp.controllerTotalSeconds, color: COLORS.controller },
        ],
      })),
      {
        title: `N=${largest.n}: edit one session (p50)`,
        unit: 's',
        bars: [
          { label: 'raw', value: largest.edits.raw.seconds.p50, color: COLORS.raw },
          ...(largest.edits.compose
            ? [{ label: 'compose', value: largest.edits.compose.seconds.p50, color: COLORS.compose }]
            : []),
          { label: 'sessionctl', value: largest.edits.controller.seconds.p50, color: COLORS.controller },
        ],
      },
      {
        title: 'SIGKILL to running again (p50)',
        unit: 'ms',
        bars: [
          { label: 'restart=always', value: restart.dockerMs.p50, color: COLORS.raw },
          { label: 'sessionctl', value: restart.controllerMs.p50, color: COLORS.controller },
        ],
      },
    ],
    caption,
  );
  return { table, passed, markdown, json, svg };
}
