/**
 * The proxies the gateway benchmark compares, each started the way an operator would, each in its
 * own process pinned the same way (pinning.ts): `sessionctl gateway`, configurable-http-proxy
 * (JupyterHub's proxy), the bare undici proxy, and the WebSocket echo upstream. nginx is in nginx.ts.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../../src/store/migrate';
import { freePort } from '../../helpers/controller';
import { pinned } from './pinning';
import { printedPort, stopper, waitListening, type Started } from './process';

export type { Started } from './process';

/** The Node upstream: a WebSocket echo (and a 2-byte HTTP answer) in its own process. */
export async function startEchoUpstream(cpus: string | undefined): Promise<Started> {
  const [command, args] = pinned(cpus, process.execPath, [
    path.join(packageRoot(), 'dist/test/bench/gateway/upstream.js'),
  ]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await printedPort(child, 'upstream');
  return { child, port, stop: stopper(child) };
}

/** A bare proxy: bare-proxy.ts (undici, the ceiling of the gateway's approach) or agent-proxy.ts (node:http Agent). */
export async function startBareProxy(
  cpus: string | undefined,
  upstreamPort: number,
  client: 'undici' | 'agent' = 'undici',
): Promise<Started> {
  const script = client === 'undici' ? 'bare-proxy.js' : 'agent-proxy.js';
  const [command, args] = pinned(cpus, process.execPath, [
    path.join(packageRoot(), 'dist/test/bench/gateway', script),
    String(upstreamPort),
  ]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await printedPort(child, script);
  return { child, port, stop: stopper(child) };
}

export async function startGatewayProcess(
  cpus: string | undefined,
  databaseUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<Started> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const [command, args] = pinned(cpus, process.execPath, [
    ...nodeArgs,
    path.join(packageRoot(), 'bin/sessionctl.js'),
    'gateway',
  ]);
  const child = spawn(command, args, {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      SESSIONCTL_GATEWAY_ADDR: `127.0.0.1:${port}`,
      SESSIONCTL_GATEWAY_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'warn',
      SESSIONCTL_LOG_FORMAT: 'json',
      ...extraEnv,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitListening(port, child, 'sessionctl gateway');
  return { child, port, stop: stopper(child) };
}

/** CHP with the HTTP upstream as its default target and /ws routed to the echo server. */
export async function startChp(cpus: string | undefined, upstreamPort: number, wsPort: number): Promise<Started> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const bin = path.join(packageRoot(), 'node_modules/configurable-http-proxy/bin/configurable-http-proxy');
  const [command, args] = pinned(cpus, process.execPath, [
    bin,
    ...['--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort)],
    ...['--default-target', `http://127.0.0.1:${upstreamPort}`, '--log-level', 'error'],
  ]);
  const child = spawn(command, args, {
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 'bench' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitListening(port, child, 'configurable-http-proxy');
  const added = await fetch(`http://127.0.0.1:${apiPort}/api/routes/ws`, {
    method: 'POST',
    headers: { authorization: 'token bench', 'content-type': 'application/json' },
    body: JSON.stringify({ target: `http://127.0.0.1:${wsPort}` }),
  });
  if (added.status !== 201) throw new Error(`configurable-http-proxy refused the /ws route: ${added.status}`);
  return { child, port, stop: stopper(child) };
}
