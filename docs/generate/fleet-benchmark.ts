/**
 * The fleet's benchmark table, copied from test/bench/results/fleet.json (`npm run bench:fleet`): the
 * goals of the fleet issue with pass or fail (docs/benchmark.md, and the short form in the README).
 * Rerunning the bench and then `npm run docs:generate` refreshes both.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR } from './benchmark';

interface Summary {
  p50: number;
  max: number;
  n: number;
}
interface Cost {
  rows: number;
  running: number;
  rssMb: { idle: number[] };
  fullResyncSeconds: Array<number | null>;
  idleCpuPercent: number[];
  idleSeconds: number;
  editSeconds: Summary;
  unschedulable: number;
}
interface FleetResults {
  date: string;
  machine: { cpus: number };
  parameters: { n: number; rounds: number; replicas: number; hosts: number; dockerConcurrencyPerHost: number };
  throughput?: {
    n: number;
    raw: { seconds: number };
    controller: { seconds: number; diagnostics?: { cpuCores: Record<string, number> } };
    ratio: number;
  };
  failover?: { takeover: Summary; reconciled: Summary };
  cost?: Cost[];
}

const GOALS = { ratio: 1.1, failoverSeconds: 20, rssMb: 300, resyncSeconds: 2, idleCpuPercent: 2, editSeconds: 1 };

const mark = (pass: boolean) => (pass ? 'pass' : '**miss**');
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
const fixed = (value: number, digits = 1) => value.toFixed(digits);
const worst = (values: Array<number | null>) =>
  values.some((value) => value === null) ? Infinity : Math.max(...(values as number[]));

function read(root: string): FleetResults {
  return JSON.parse(readFileSync(path.join(root, RESULTS_DIR, 'fleet.json'), 'utf8')) as FleetResults;
}

function throughputRows(results: FleetResults): string[] {
  const { throughput, failover, parameters } = results;
  const lines: string[] = [];
  if (throughput) {
    const cores = throughput.controller.diagnostics?.cpuCores;
    const replicas = cores
      ? Object.entries(cores)
          .filter(([group]) => /^bench-[ab]-/.test(group))
          .reduce((sum, [, value]) => sum + value, 0)
      : undefined;
    const spent =
      cores && replicas !== undefined
        ? ` (replicas ${fixed(replicas, 2)} + PostgreSQL ${fixed(cores.postgres ?? 0, 2)} of ${fixed(cores.machine, 2)} cores busy)`
        : '';
    lines.push(
      row([
        `${throughput.n} sessions over ${parameters.hosts} hosts, all Ready: raw dockerode (${parameters.dockerConcurrencyPerHost} at a time per daemon) vs ${parameters.replicas} replicas`,
        `${fixed(throughput.raw.seconds)} s vs ${fixed(throughput.controller.seconds)} s: **${throughput.ratio.toFixed(2)}×**${spent}`,
        `≤ ${GOALS.ratio}×`,
        mark(throughput.ratio <= GOALS.ratio),
      ]),
    );
  }
  if (failover) {
    lines.push(
      row([
        `failover after SIGKILL of a replica, ${failover.reconciled.n} rounds: hosts taken over`,
        `p50 ${fixed(failover.takeover.p50)} s, max ${fixed(failover.takeover.max)} s`,
        '—',
        'info',
      ]),
      row([
        'the same, until every affected session is reconciled again',
        `p50 ${fixed(failover.reconciled.p50)} s, max ${fixed(failover.reconciled.max)} s`,
        `max < ${GOALS.failoverSeconds} s`,
        mark(failover.reconciled.max < GOALS.failoverSeconds),
      ]),
    );
  }
  return lines;
}

function costRows(cost: Cost): string[] {
  const rows = cost.rows.toLocaleString('en-US');
  const rss = Math.max(...cost.rssMb.idle);
  const resync = worst(cost.fullResyncSeconds);
  const cpu = Math.max(...cost.idleCpuPercent);
  return [
    row([
      `${rows} rows (${cost.running} run, ${cost.unschedulable} wait for room): RSS per replica, idle`,
      `${Math.round(rss)} MB`,
      `< ${GOALS.rssMb} MB`,
      mark(rss < GOALS.rssMb),
    ]),
    row([
      `${rows} rows: full resync (replicas restarted, start to /readyz), slower replica`,
      resync === Infinity ? 'not ready within 45 s' : `${fixed(resync, 2)} s`,
      `< ${GOALS.resyncSeconds} s`,
      mark(resync < GOALS.resyncSeconds),
    ]),
    row([
      `${rows} rows: idle CPU per replica (${cost.idleSeconds} s), busier replica`,
      `${fixed(cpu, 2)} % of a core`,
      `< ${GOALS.idleCpuPercent} %`,
      mark(cpu < GOALS.idleCpuPercent),
    ]),
    row([
      `${rows} rows: one edit of a running session to Ready, p50 / max of ${cost.editSeconds.n}`,
      `${fixed(cost.editSeconds.p50, 2)} s / ${fixed(cost.editSeconds.max, 2)} s`,
      `< ${GOALS.editSeconds} s`,
      mark(cost.editSeconds.max < GOALS.editSeconds),
    ]),
  ];
}

export function renderFleetBenchmark(root: string): string {
  const results = read(root);
  return [
    `From \`${RESULTS_DIR}/fleet.json\` (${results.date.slice(0, 10)}, ${results.machine.cpus} cores), \`npm run bench:fleet\`:`,
    '',
    row(['measure', 'measured', 'goal', 'result']),
    row(['---', '---', '---', '---']),
    ...throughputRows(results),
    ...(results.cost ?? []).flatMap(costRows),
  ].join('\n');
}
