/**
 * The gateway benchmark's results: one object (written to test/bench/results/gateway.json, which the
 * README table and docs/gateway.md are generated from) and the table printed at the end of a run.
 */
import type { Figures, LoadSettings } from './measure';
import type { WakeFigures } from './wake';

export interface GatewayResults {
  at: string;
  settings: LoadSettings;
  pinning: string;
  upstream: string;
  rows: Figures[];
  ratios: {
    gatewayVsChp?: number;
    gatewayVsNginx?: number;
    gatewayVsBare?: number;
    /** Mean latency the gateway adds at one connection over direct access: pinned, and with nothing pinned. */
    addedUsAt1?: number;
    addedUsAt1Unpinned?: number;
    /** The same for nginx, the reference: what any proxy pays on this machine. */
    nginxAddedUsAt1?: number;
    nginxAddedUsAt1Unpinned?: number;
  };
  routeVisibleMs: { p50: number; max: number; samples: number };
  wake?: WakeFigures;
  /** Why the wake measurement has no figures in this run. */
  wakeError?: string;
}

const find = (rows: Figures[], prefix: string) => rows.find((row) => row.name.startsWith(prefix));
const ratio = (a: Figures | undefined, b: Figures | undefined) =>
  a && b ? Number((a.reqPerSec / b.reqPerSec).toFixed(2)) : undefined;

export function summarise(input: {
  settings: LoadSettings;
  pinning: string;
  rows: Figures[];
  visibility: number[];
  wake?: WakeFigures;
  wakeError?: string;
}): GatewayResults {
  const { rows, visibility } = input;
  const [direct, gateway] = [find(rows, 'direct'), find(rows, 'sessionctl')];
  return {
    at: new Date().toISOString(),
    settings: input.settings,
    pinning: input.pinning,
    upstream:
      'nginx, one worker, `return 200` of 2 bytes (HTTP); a Node ws echo server (WebSocket); each in its own process',
    rows,
    ratios: {
      gatewayVsChp: ratio(gateway, find(rows, 'configurable')),
      gatewayVsNginx: ratio(gateway, find(rows, 'nginx')),
      gatewayVsBare: ratio(gateway, find(rows, 'bare')),
      ...addedLatency(direct, gateway, find(rows, 'nginx')),
    },
    routeVisibleMs: {
      p50: Number(visibility[Math.floor(visibility.length / 2)].toFixed(1)),
      max: Number(visibility[visibility.length - 1].toFixed(1)),
      samples: visibility.length,
    },
    wake: input.wake,
    wakeError: input.wakeError,
  };
}

function addedLatency(direct: Figures | undefined, gateway: Figures | undefined, nginx: Figures | undefined) {
  const added = (proxy: Figures | undefined, unpinned: boolean) => {
    const [through, straight] = unpinned
      ? [proxy?.meanUsAt1Unpinned, direct?.meanUsAt1Unpinned]
      : [proxy?.meanUsAt1, direct?.meanUsAt1];
    return through !== undefined && straight !== undefined ? Math.round(through - straight) : undefined;
  };
  return {
    addedUsAt1: added(gateway, false),
    addedUsAt1Unpinned: added(gateway, true),
    nginxAddedUsAt1: added(nginx, false),
    nginxAddedUsAt1Unpinned: added(nginx, true),
  };
}

export function printReport(results: GatewayResults): void {
  const { settings, rows, ratios } = results;
  console.log(
    `\ngateway benchmark: ${settings.connections} keep-alive connections, ${settings.seconds} s per target, median of ${settings.rounds} interleaved rounds\n` +
      `upstream: ${results.upstream}\npinning: ${results.pinning}`,
  );
  const chp = find(rows, 'configurable');
  const nginx = find(rows, 'nginx');
  const line = (cells: string[]) =>
    console.log(cells.map((cell, index) => (index === 0 ? cell.padEnd(28) : cell.padStart(11))).join(''));
  line([
    'target',
    'req/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'cpu us/req',
    'mean@1 us',
    'unpinned',
    'ws rt us',
    'vs CHP',
    'vs nginx',
  ]);
  for (const row of rows) {
    line([
      row.name,
      row.reqPerSec.toFixed(0),
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      String(row.errors),
      row.cpuUsPerRequest?.toFixed(1) ?? '-',
      row.meanUsAt1.toFixed(0),
      row.meanUsAt1Unpinned?.toFixed(0) ?? '-',
      row.wsRoundTripUs?.toFixed(0) ?? '-',
      chp ? `${(row.reqPerSec / chp.reqPerSec).toFixed(2)}x` : '-',
      nginx ? `${(row.reqPerSec / nginx.reqPerSec).toFixed(2)}x` : '-',
    ]);
  }
  for (const row of rows) console.log(`  ${row.name}: rounds ${row.rounds.join(', ')} req/s`);
  console.log(
    `gateway/CHP ${ratios.gatewayVsChp ?? '-'}x (goal >= 3), gateway/nginx ${ratios.gatewayVsNginx ?? '-'}x (goal >= 0.75), ` +
      `mean latency added at 1 connection ${ratios.addedUsAt1Unpinned ?? '-'} us unpinned (goal < 100; nginx ${ratios.nginxAddedUsAt1Unpinned ?? '-'}), ` +
      `${ratios.addedUsAt1 ?? '-'} us pinned (nginx ${ratios.nginxAddedUsAt1 ?? '-'})`,
  );
  const visible = results.routeVisibleMs;
  console.log(
    `route visible after Ready: p50 ${visible.p50} ms, max ${visible.max} ms over ${visible.samples} status writes (goal < 50)`,
  );
  const wake = results.wake;
  if (wake)
    console.log(
      `wake from idle-stopped to first byte: p50 ${wake.wakeMs.p50} ms (max ${wake.wakeMs.max}); the same container's create+start+first byte with dockerode: p50 ${wake.rawMs.p50} ms (max ${wake.rawMs.max}); ratio ${wake.ratio}x (goal <= 1.2) over ${wake.samples} rounds`,
    );
}
