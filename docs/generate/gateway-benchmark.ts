/**
 * The gateway's benchmark tables, copied from test/bench/results/gateway.json (`npm run bench:gateway`):
 * the goals with pass or fail (README and docs/gateway.md) and every contender's figures
 * (docs/gateway.md). Rerunning the bench and then `npm run docs:generate` refreshes both.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR } from './benchmark';

interface Row {
  name: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest?: number;
  meanUsAt1: number;
  meanUsAt1Unpinned?: number;
  wsRoundTripUs?: number;
  rounds: number[];
}
interface GatewayResults {
  at: string;
  settings: { connections: number; seconds: number; rounds: number };
  pinning: string;
  upstream: string;
  rows: Row[];
  ratios: {
    gatewayVsChp?: number;
    gatewayVsNginx?: number;
    addedUsAt1?: number;
    addedUsAt1Unpinned?: number;
    nginxAddedUsAt1?: number;
    nginxAddedUsAt1Unpinned?: number;
  };
  routeVisibleMs: { p50: number; max: number; samples: number };
  wake?: { samples: number; wakeMs: { p50: number; max: number }; rawMs: { p50: number; max: number }; ratio: number };
  wakeError?: string;
}

const read = (root: string) =>
  JSON.parse(readFileSync(path.join(root, RESULTS_DIR, 'gateway.json'), 'utf8')) as GatewayResults;
const whole = (value: number) => Math.round(value).toLocaleString('en-US');
const mark = (pass: boolean) => (pass ? 'pass' : '**miss**');
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

function find(results: GatewayResults, prefix: string): Row | undefined {
  return results.rows.find((candidate) => candidate.name.startsWith(prefix));
}

/** CPU time per request of `other` over the gateway's: how many more requests a core serves. */
function cpuRatio(gateway: Row | undefined, other: Row | undefined): string {
  if (!gateway?.cpuUsPerRequest || !other?.cpuUsPerRequest) return '-';
  return `${(other.cpuUsPerRequest / gateway.cpuUsPerRequest).toFixed(2)}×`;
}

/** `dated`: name the run's date (docs/gateway.md); the README carries no dates. */
export function renderGatewayGoals(root: string, dated = true): string {
  const results = read(root);
  const { ratios, routeVisibleMs: visible, wake } = results;
  const gateway = find(results, 'sessionctl');
  const chp = find(results, 'configurable');
  const nginx = find(results, 'nginx');
  const lines = [
    `From \`${RESULTS_DIR}/gateway.json\`${dated ? ` (${results.at.slice(0, 10)})` : ''}, \`npm run bench:gateway\`: ${results.settings.connections} keep-alive connections, median of ${results.settings.rounds} interleaved ${results.settings.seconds} s rounds; ${results.pinning}.`,
    '',
    row(['goal', 'measured', 'target', 'result']),
    row(['---', '---', '---', '---']),
  ];
  if (ratios.gatewayVsChp !== undefined)
    lines.push(
      row([
        'throughput vs configurable-http-proxy',
        `${ratios.gatewayVsChp}× (${whole(gateway!.reqPerSec)} vs ${whole(chp!.reqPerSec)} req/s; CPU per request ${cpuRatio(gateway, chp)} less)`,
        '≥ 3×',
        mark(ratios.gatewayVsChp >= 3),
      ]),
    );
  if (ratios.gatewayVsNginx !== undefined)
    lines.push(
      row([
        'throughput vs nginx, one worker',
        `${ratios.gatewayVsNginx}× (${whole(nginx!.reqPerSec)} req/s; CPU per request ${cpuRatio(gateway, nginx)})`,
        '≥ 0.75×',
        mark(ratios.gatewayVsNginx >= 0.75),
      ]),
    );
  const latency = addedLatencyRow(ratios);
  if (latency) lines.push(latency);
  lines.push(
    row([
      'route visible after Ready',
      `p50 ${visible.p50} ms, max ${visible.max} ms`,
      '< 50 ms',
      mark(visible.max < 50),
    ]),
  );
  if (wake)
    lines.push(
      row([
        'wake from idle to first byte',
        `${wake.ratio}× (p50 ${whole(wake.wakeMs.p50)} ms vs the same container's create+start ${whole(wake.rawMs.p50)} ms; max ${whole(wake.wakeMs.max)} ms)`,
        '≤ 1.2×',
        mark(wake.ratio <= 1.2),
      ]),
    );
  else if (results.wakeError)
    lines.push(
      row(['wake from idle to first byte', `not measured in this run: ${results.wakeError}`, '≤ 1.2×', '**miss**']),
    );
  return lines.join('\n');
}

/**
 * Graded with nothing pinned, as the processes run on a machine of their own; the pinned figure is
 * shown beside it, with nginx's, because there every request crosses CPUs and the wake-ups that
 * costs on this virtual machine are most of what any proxy adds (docs/gateway.md).
 */
function addedLatencyRow(ratios: GatewayResults['ratios']): string | undefined {
  const unpinned = ratios.addedUsAt1Unpinned;
  if (unpinned === undefined) {
    if (ratios.addedUsAt1 === undefined) return undefined;
    return row([
      'mean latency added, one connection',
      `${ratios.addedUsAt1} µs`,
      '< 100 µs',
      mark(ratios.addedUsAt1 < 100),
    ]);
  }
  return row([
    'mean latency added, one connection',
    `${unpinned} µs (nginx ${ratios.nginxAddedUsAt1Unpinned ?? '-'} µs); pinned as for throughput ${ratios.addedUsAt1} µs (nginx ${ratios.nginxAddedUsAt1 ?? '-'} µs)`,
    '< 100 µs',
    mark(unpinned < 100),
  ]);
}

export function renderGatewayContenders(root: string): string {
  const results = read(root);
  const us = (value: number | undefined) => (value === undefined ? '-' : `${whole(value)} µs`);
  return [
    `Upstream: ${results.upstream}.`,
    '',
    row([
      'target',
      'req/s',
      'p50 / p99 ms',
      'CPU per request',
      'mean at 1 connection',
      'the same, unpinned',
      'WebSocket round trip',
      'rounds (req/s)',
    ]),
    row(['---', '---', '---', '---', '---', '---', '---', '---']),
    ...results.rows.map((target) =>
      row([
        target.name,
        whole(target.reqPerSec),
        `${target.p50Ms} / ${target.p99Ms}`,
        target.cpuUsPerRequest === undefined ? '-' : `${target.cpuUsPerRequest.toFixed(0)} µs`,
        us(target.meanUsAt1),
        us(target.meanUsAt1Unpinned),
        us(target.wsRoundTripUs),
        target.rounds.map(whole).join(', '),
      ]),
    ),
  ].join('\n');
}
