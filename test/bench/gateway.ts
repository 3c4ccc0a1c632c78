/**
 * `npm run bench:gateway`: the gateway side by side with direct access, configurable-http-proxy and
 * (when installed) nginx, in one run, against the same upstream: req/s and p50/p99 at 64 keep-alive
 * connections, mean latency at one connection, a WebSocket round trip, and how soon a session that
 * becomes Ready is routable. Prints a table with ratios and writes test/bench/results/gateway.json.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { packageRoot } from '../../src/store/migrate';
import { createTestDatabase } from '../helpers/database';
import { createBenchSession, setReady } from './gateway/fixture';
import { autocannonRun, sequentialMeanUs, type LoadResult } from './gateway/load';
import {
  startBareProxy,
  startChp,
  startGatewayProcess,
  startNginx,
  startUpstream,
  type Started,
} from './gateway/targets';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  wsUrl?: string;
}

interface Figures {
  name: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Mean of one request at a time, over one keep-alive connection. */
  meanUsAt1: number;
  wsRoundTripUs?: number;
  /** req/s of every round, for the spread. */
  rounds: number[];
}

/**
 * Rounds interleave the targets (direct, gateway, CHP, ... then again), so that a burst of load from
 * elsewhere on the machine hits them all alike; each target's median round is reported.
 */
async function measureAll(targets: Target[]): Promise<Figures[]> {
  const runs = new Map<string, LoadResult[]>(targets.map((target) => [target.name, []]));
  for (const target of targets) await autocannonRun(target.url, target.headers, CONNECTIONS, 2); // warm-up: JIT, pools
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets)
      runs.get(target.name)!.push(await autocannonRun(target.url, target.headers, CONNECTIONS, SECONDS));
  }
  // One-connection latency, interleaved the same way: the median round of each target.
  const latencies = new Map<string, number[]>(targets.map((target) => [target.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) latencies.get(target.name)!.push(await sequentialMeanUs(target.url, target.headers));
  }
  const figures: Figures[] = [];
  for (const target of targets) {
    const sorted = [...runs.get(target.name)!].sort((a, b) => a.reqPerSec - b.reqPerSec);
    const median = sorted[Math.floor(sorted.length / 2)];
    const meanUsAt1 = [...latencies.get(target.name)!].sort((a, b) => a - b)[Math.floor(ROUNDS / 2)];
    const wsRoundTripUs = target.wsUrl ? await wsRoundTrip(target.wsUrl, target.headers) : undefined;
    figures.push({
      name: target.name,
      ...median,
      meanUsAt1,
      wsRoundTripUs,
      rounds: runs.get(target.name)!.map((run) => Math.round(run.reqPerSec)),
    });
  }
  return figures;
}

/** Mean of sequential echo round trips over one WebSocket, in microseconds. */
async function wsRoundTrip(url: string, headers: Record<string, string> = {}, count = 2_000): Promise<number> {
  const socket = new WebSocket(url, { headers, perMessageDeflate: false });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const once = () =>
    new Promise<void>((resolve) => {
      socket.once('message', () => resolve());
      socket.send('ping');
    });
  for (let index = 0; index < 200; index++) await once();
  const started = process.hrtime.bigint();
  for (let index = 0; index < count; index++) await once();
  const us = Number(process.hrtime.bigint() - started) / 1000 / count;
  socket.close();
  return us;
}

/** Time from a status write (Ready with an endpoint) to the first 200 through the gateway. */
async function routeVisibility(
  pool: import('pg').Pool,
  gatewayUrl: string,
  token: string,
  endpoint: string,
  rounds = 20,
): Promise<number[]> {
  const samples: number[] = [];
  const probe = async () =>
    (await fetch(`${gatewayUrl}/s/visible/`, { headers: { authorization: `Bearer ${token}` } })).status;
  for (let round = 0; round < rounds; round++) {
    await setReady(pool, 'visible', false);
    while ((await probe()) === 200) await new Promise((resolve) => setTimeout(resolve, 1));
    const started = performance.now();
    await setReady(pool, 'visible', true, endpoint);
    while ((await probe()) !== 200) await new Promise((resolve) => setImmediate(resolve));
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b);
}

function printTable(rows: Figures[], chp: Figures | undefined, nginx: Figures | undefined, direct: Figures): void {
  const line = (cells: string[]) =>
    console.log(cells.map((cell, index) => (index === 0 ? cell.padEnd(26) : cell.padStart(12))).join(''));
  line(['target', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'mean@1 us', 'ws rt us', 'vs CHP', 'vs nginx']);
  for (const row of rows) {
    line([
      row.name,
      row.reqPerSec.toFixed(0),
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      String(row.errors),
      row.meanUsAt1.toFixed(0),
      row.wsRoundTripUs?.toFixed(0) ?? '-',
      chp ? `${(row.reqPerSec / chp.reqPerSec).toFixed(2)}x` : '-',
      nginx ? `${(row.reqPerSec / nginx.reqPerSec).toFixed(2)}x` : '-',
    ]);
  }
  for (const row of rows.filter((candidate) => candidate !== direct)) {
    console.log(
      `${row.name}: ${(row.reqPerSec / direct.reqPerSec).toFixed(2)}x direct throughput, +${((row.meanUsAt1 - direct.meanUsAt1) / 1000).toFixed(3)} ms mean latency added at 1 connection; rounds ${row.rounds.join(', ')} req/s`,
    );
  }
}

async function main(): Promise<void> {
  const db = await createTestDatabase('bench_gateway');
  const started: Started[] = [];
  try {
    const upstream = await startUpstream();
    started.push(upstream);
    const endpoint = `127.0.0.1:${upstream.port}`;
    const token = await createBenchSession(db.pool, 'bench', endpoint);
    const visibleToken = await createBenchSession(db.pool, 'visible', endpoint);
    const gateway = await startGatewayProcess(db.url);
    started.push(gateway);
    const chp = await startChp(upstream.port);
    started.push(chp);
    const bare = await startBareProxy(upstream.port);
    started.push(bare);
    const nginx = await startNginx(upstream.port);
    if (nginx) started.push(nginx);
    const auth = { authorization: `Bearer ${token}` };

    const targets: Target[] = [
      { name: 'direct (node upstream)', url: `http://${endpoint}/`, headers: {}, wsUrl: `ws://${endpoint}/` },
      {
        name: 'sessionctl gateway',
        url: `http://127.0.0.1:${gateway.port}/s/bench/`,
        headers: auth,
        wsUrl: `ws://127.0.0.1:${gateway.port}/s/bench/`,
      },
      {
        name: 'configurable-http-proxy',
        url: `http://127.0.0.1:${chp.port}/`,
        headers: {},
        wsUrl: `ws://127.0.0.1:${chp.port}/`,
      },
      ...(nginx ? [{ name: 'nginx (1 worker)', url: `http://127.0.0.1:${nginx.port}/`, headers: {} }] : []),
      { name: 'bare undici proxy (ceiling)', url: `http://127.0.0.1:${bare.port}/`, headers: {} },
    ];
    const rows = await measureAll(targets);
    const [direct, , viaChp] = rows;
    const viaNginx = nginx ? rows[3] : undefined;
    const visibility = await routeVisibility(db.pool, `http://127.0.0.1:${gateway.port}`, visibleToken, endpoint);

    console.log(
      `\ngateway benchmark: ${CONNECTIONS} keep-alive connections, ${SECONDS} s per target, autocannon in its own process, median of ${ROUNDS} interleaved rounds; upstream: a 2-byte Node http server in its own process`,
    );
    if (!nginx) console.log('nginx: not installed (apt-get install nginx to include it)');
    printTable(rows, viaChp, viaNginx, direct);
    const median = visibility[Math.floor(visibility.length / 2)];
    console.log(
      `route visible after Ready: median ${median.toFixed(1)} ms, max ${visibility[visibility.length - 1].toFixed(1)} ms over ${visibility.length} status writes`,
    );
    const results = {
      at: new Date().toISOString(),
      connections: CONNECTIONS,
      seconds: SECONDS,
      rounds: ROUNDS,
      rows,
      routeVisibleMs: { median, max: visibility[visibility.length - 1] },
    };
    writeFileSync(path.join(packageRoot(), 'test/bench/results/gateway.json'), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    for (const process of started.reverse()) await process.stop();
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
