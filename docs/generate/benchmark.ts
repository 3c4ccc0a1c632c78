/**
 * The benchmark table, copied from the results files the bench scripts write (test/bench/results/):
 * latest.json (`npm run bench`), isolation.json (`npm run bench:isolation`) and cli.json
 * (`npm run bench:cli`). Rerunning a bench and then `npm run docs:generate` refreshes it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { markdownTable, type Row } from '../../test/bench/lib/report';

export const RESULTS_DIR = path.join('test', 'bench', 'results');

interface LatestResults {
  date: string;
  machine: { cpus: number; cpuModel: string };
  docker: { serverVersion: string };
  node: string;
  dockerCompose?: string;
  rows: Row[];
}
interface IsolationResults {
  date: string;
  healthy: number;
  crashing: number;
  summary: Array<{ measure: 'p50' | 'p95' | 'all'; alone: number; beside: number; ratio: number }>;
}
interface CliResults {
  date: string;
  nodeStartupSeconds: number;
  apply1000Seconds: number;
  reapply1000UnchangedSeconds: number;
  get10000Seconds: number;
  targets: { apply1000Seconds: number; get10000Seconds: number };
}

const ISOLATION_TARGET = 1.1;
const ISOLATION_MEASURES = { p50: 'per session, p50', p95: 'per session, p95', all: 'all Ready' } as const;

function read<T>(root: string, file: string): T {
  return JSON.parse(readFileSync(path.join(root, RESULTS_DIR, file), 'utf8')) as T;
}

/** The figures the README and the issues quote: totals, edits and every row with a target. */
function throughputRows(latest: LatestResults): Row[] {
  return latest.rows.filter((row) => row.target !== undefined || /all running|per session, p50/.test(row.measure));
}

function isolationRows(isolation: IsolationResults): Row[] {
  return isolation.summary.map((row) => ({
    measure: `${isolation.healthy} healthy sessions, ${ISOLATION_MEASURES[row.measure]}: alone (raw column) / beside ${isolation.crashing} crash loops`,
    baseline: row.alone,
    controller: row.beside,
    unit: 's',
    ratio: row.ratio,
    target: `÷alone ≤ ${ISOLATION_TARGET}`,
    pass: row.ratio <= ISOLATION_TARGET,
  }));
}

function cliRows(cli: CliResults): Row[] {
  return [
    { measure: 'CLI: `sessionctl --version` (node start-up)', controller: cli.nodeStartupSeconds, unit: 's' },
    {
      measure: 'CLI: `apply -f` of 1,000 sessions',
      controller: cli.apply1000Seconds,
      unit: 's',
      target: `< ${cli.targets.apply1000Seconds} s`,
      pass: cli.apply1000Seconds < cli.targets.apply1000Seconds,
    },
    { measure: 'CLI: the same apply again, all unchanged', controller: cli.reapply1000UnchangedSeconds, unit: 's' },
    {
      measure: 'CLI: `get sessions` over 10,000 rows',
      controller: cli.get10000Seconds,
      unit: 's',
      target: `< ${cli.targets.get10000Seconds} s`,
      pass: cli.get10000Seconds < cli.targets.get10000Seconds,
    },
  ];
}

export function renderBenchmarkTable(root: string): string {
  const latest = read<LatestResults>(root, 'latest.json');
  const isolation = read<IsolationResults>(root, 'isolation.json');
  const cli = read<CliResults>(root, 'cli.json');
  const machine = `${latest.machine.cpus} cores (${latest.machine.cpuModel}), dockerd ${latest.docker.serverVersion}, Node ${latest.node}${latest.dockerCompose ? `, docker-compose ${latest.dockerCompose}` : ''}`;
  const sources = [
    `\`latest.json\` (${latest.date.slice(0, 10)})`,
    `\`isolation.json\` (${isolation.date.slice(0, 10)})`,
    `\`cli.json\` (${cli.date.slice(0, 10)})`,
  ];
  return [
    `Machine: ${machine}. From ${sources.join(', ')} in \`${RESULTS_DIR}/\`.`,
    '',
    markdownTable([...throughputRows(latest), ...isolationRows(isolation), ...cliRows(cli)]),
  ].join('\n');
}
