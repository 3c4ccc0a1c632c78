/**
 * `npm run bench:gateway`: the gateway side by side with direct access, configurable-http-proxy,
 * nginx (one worker) and a bare undici proxy, in one run, against the same upstreams (nginx answering
 * 2 bytes for HTTP, a Node echo server for WebSockets): req/s and p50/p99 at 64 keep-alive
 * connections, each proxy's CPU time per request, mean latency at one connection, a WebSocket round
 * trip, how soon a session that becomes Ready is routable, and wake from idle-stopped to first byte
 * against the container's own create-and-start (wake.ts). Prints a table with ratios and writes
 * test/bench/results/gateway.json. `BENCH_WAKE=0` skips the wake part (it needs the dev dockerd).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/store/migrate';
import { createTestDatabase } from '../helpers/database';
import { createBenchSession } from './gateway/fixture';
import { measureAll, routeVisibility, type Target } from './gateway/measure';
import { ensureNginx, startNginxProxy, startNginxUpstream } from './gateway/nginx';
import { choosePinning, pinSelf, unpinProcess, unpinSelf } from './gateway/pinning';
import { printReport, summarise } from './gateway/report';
import { startBareProxy, startChp, startEchoUpstream, startGatewayProcess, type Started } from './gateway/targets';
import { measureWake } from './gateway/wake';

const SETTINGS = {
  connections: Number(process.env.BENCH_CONNECTIONS ?? 64),
  seconds: Number(process.env.BENCH_SECONDS ?? 8),
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
};
/**
 * Comma-separated subset of direct,gateway,chp,nginx,bare (all by default), e.g. for profiling; `agent`
 * adds the bare proxy on node:http's keep-alive Agent (the client comparison in docs/gateway.md).
 */
const ONLY = process.env.BENCH_ONLY?.split(',');

async function startAll(started: Started[], databaseUrl: string, pool: import('pg').Pool) {
  const pinning = choosePinning();
  pinSelf(pinning);
  const nginxBinary = ensureNginx();
  const track = <T extends Started>(process: T) => (started.push(process), process);
  const upstream = track(await startNginxUpstream(nginxBinary, pinning.upstream));
  const echo = track(await startEchoUpstream(pinning.upstream));
  const endpoints = { http: `127.0.0.1:${upstream.port}`, ws: `127.0.0.1:${echo.port}` };
  const token = await createBenchSession(pool, 'bench', endpoints);
  const visibleToken = await createBenchSession(pool, 'visible', endpoints);
  const gateway = track(await startGatewayProcess(pinning.proxy, databaseUrl));
  const chp = track(await startChp(pinning.proxy, upstream.port, echo.port));
  const nginx = track(await startNginxProxy(nginxBinary, pinning.proxy, upstream.port, echo.port));
  const bare = track(await startBareProxy(pinning.proxy, upstream.port));
  const agent = ONLY?.includes('agent') ? track(await startBareProxy(pinning.proxy, upstream.port, 'agent')) : bare;
  const at = (port: number) => `127.0.0.1:${port}`;
  const targets: Array<Target & { key: string }> = [
    {
      key: 'direct',
      name: 'direct (nginx upstream)',
      url: `http://${endpoints.http}/`,
      headers: {},
      wsUrl: `ws://${endpoints.ws}/ws/`,
    },
    {
      key: 'gateway',
      name: 'sessionctl gateway',
      url: `http://${at(gateway.port)}/s/bench/`,
      headers: { authorization: `Bearer ${token}` },
      wsUrl: `ws://${at(gateway.port)}/s/bench/ws/`,
      pid: gateway.child.pid,
    },
    {
      key: 'chp',
      name: 'configurable-http-proxy',
      url: `http://${at(chp.port)}/`,
      headers: {},
      wsUrl: `ws://${at(chp.port)}/ws/`,
      pid: chp.child.pid,
    },
    {
      key: 'nginx',
      name: 'nginx (1 worker)',
      url: `http://${at(nginx.port)}/`,
      headers: {},
      wsUrl: `ws://${at(nginx.port)}/ws/`,
      pid: nginx.child.pid,
    },
    {
      key: 'bare',
      name: 'bare undici proxy (ceiling)',
      url: `http://${at(bare.port)}/`,
      headers: {},
      pid: bare.child.pid,
    },
    {
      key: 'agent',
      name: 'bare node:http Agent proxy',
      url: `http://${at(agent.port)}/`,
      headers: {},
      pid: agent.child.pid,
    },
  ];
  return {
    pinning,
    gateway,
    endpoints,
    visibleToken,
    targets: targets.filter((target) => (ONLY ? ONLY.includes(target.key) : target.key !== 'agent')),
  };
}

async function main(): Promise<void> {
  const db = await createTestDatabase('bench_gateway');
  const started: Started[] = [];
  try {
    const { pinning, gateway, endpoints, visibleToken, targets } = await startAll(started, db.url, db.pool);
    // After the pinned rounds the latency at one connection is measured again with nothing pinned.
    const unpin = () => {
      for (const process of started) if (process.child.pid) unpinProcess(pinning, process.child.pid);
      unpinSelf(pinning);
    };
    const rows = await measureAll(targets, SETTINGS, unpin);
    const visibility = await routeVisibility(db.pool, `http://127.0.0.1:${gateway.port}`, visibleToken, endpoints);
    for (const process of started.splice(0).reverse()) await process.stop();
    unpinSelf(pinning);
    // A failed wake measurement is reported (and recorded), and the proxy figures are kept.
    let wakeError: string | undefined;
    const wake =
      process.env.BENCH_WAKE === '0'
        ? undefined
        : await measureWake().catch((error: Error) => {
            wakeError = error.message;
            console.error(`wake measurement failed: ${error.message}`);
            return undefined;
          });
    const results = summarise({ settings: SETTINGS, pinning: pinning.describe, rows, visibility, wake, wakeError });
    printReport(results);
    if (!ONLY)
      writeFileSync(
        path.join(packageRoot(), 'test/bench/results/gateway.json'),
        `${JSON.stringify(results, null, 2)}\n`,
      );
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
