/**
 * The README's benchmark summary: the headline figure of each bench, from its results file
 * (latest.json, isolation.json, fleet.json in test/bench/results/), with its target. The full tables
 * are in docs/benchmark.md; `npm run docs:generate` refreshes both.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Row } from '../../test/bench/lib/report';
import { RESULTS_DIR } from './benchmark';

interface Latest {
  rows: Row[];
}
interface Isolation {
  healthy: number;
  crashing: number;
  summary: Array<{ measure: string; ratio: number }>;
}
interface Fleet {
  throughput?: { n: number; ratio: number };
  failover?: { reconciled: { max: number } };
}

const read = <T>(root: string, file: string) =>
  JSON.parse(readFileSync(path.join(root, RESULTS_DIR, file), 'utf8')) as T;
const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
const seconds = (value: number | string | undefined) =>
  typeof value === 'number' ? `${value.toFixed(2)} s` : String(value ?? '—');
const mark = (pass: boolean | undefined) => (pass === undefined ? 'info' : pass ? 'pass' : '**miss**');

function latestLine(latest: Latest, pattern: RegExp, what: string, figure: (row: Row) => string): string[] {
  const found = latest.rows.find((row) => pattern.test(row.measure));
  return found ? [line([what, figure(found), found.target ?? '—', mark(found.pass)])] : [];
}

export function renderReadmeBenchmark(root: string): string {
  const latest = read<Latest>(root, 'latest.json');
  const isolation = read<Isolation>(root, 'isolation.json');
  const fleet = read<Fleet>(root, 'fleet.json');
  const all = isolation.summary.find((row) => row.measure === 'all');
  return [
    line(['bench', 'measured', 'target', 'result']),
    line(['---', '---', '---', '---']),
    ...latestLine(
      latest,
      /^N=200: all running/,
      '`npm run bench`: 200 sessions Ready, ÷ raw dockerode',
      (row) =>
        `${row.ratio?.toFixed(2)}× (${seconds(row.baseline)} vs ${seconds(row.controller)}; docker-compose ${seconds(row.compose)})`,
    ),
    ...latestLine(latest, /^N=200: edit one session/, '`npm run bench`: one edit with 200 running, p50', (row) =>
      seconds(row.controller),
    ),
    ...(all
      ? [
          line([
            `\`npm run bench:isolation\`: ${isolation.healthy} healthy sessions beside ${isolation.crashing} crash loops, all Ready`,
            `${all.ratio.toFixed(2)}× alone`,
            '≤ 1.10×',
            mark(all.ratio <= 1.1),
          ]),
        ]
      : []),
    ...(fleet.throughput
      ? [
          line([
            `\`npm run bench:fleet\`: ${fleet.throughput.n} sessions on 3 daemons, 2 replicas, ÷ raw dockerode`,
            `${fleet.throughput.ratio.toFixed(2)}×`,
            '≤ 1.10×',
            mark(fleet.throughput.ratio <= 1.1),
          ]),
        ]
      : []),
    ...(fleet.failover
      ? [
          line([
            '`npm run bench:fleet`: after a replica is SIGKILLed, every affected session reconciled, max',
            `${fleet.failover.reconciled.max.toFixed(1)} s`,
            '< 20 s',
            mark(fleet.failover.reconciled.max < 20),
          ]),
        ]
      : []),
  ].join('\n');
}
