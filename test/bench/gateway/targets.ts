/**
 * The processes the gateway benchmark compares, each started the way an operator would: the
 * upstream, `sessionctl gateway`, configurable-http-proxy (JupyterHub's proxy) and nginx with one
 * worker when the Debian package is installed. All on 127.0.0.1, each in its own process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../../src/store/migrate';
import { freePort } from '../../helpers/controller';

export interface Started {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
}

async function waitListening(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const up = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    );
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not listen on ${port} within 30 s`);
}

export async function startUpstream(): Promise<Started> {
  const child = spawn(process.execPath, [path.join(packageRoot(), 'dist/test/bench/gateway/upstream.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
  });
  return { child, port, stop: stopper(child) };
}

/** The bare undici proxy (bare-proxy.ts): the ceiling of the gateway's approach. */
export async function startBareProxy(upstreamPort: number): Promise<Started> {
  const child = spawn(
    process.execPath,
    [path.join(packageRoot(), 'dist/test/bench/gateway/bare-proxy.js'), String(upstreamPort)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`bare proxy exited with ${code}`)));
  });
  return { child, port, stop: stopper(child) };
}

export async function startGatewayProcess(
  databaseUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<Started> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [path.join(packageRoot(), 'bin/sessionctl.js'), 'gateway'], {
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

export async function startChp(upstreamPort: number): Promise<Started> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const bin = path.join(packageRoot(), 'node_modules/configurable-http-proxy/bin/configurable-http-proxy');
  const child = spawn(
    process.execPath,
    [
      bin,
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--api-ip',
      '127.0.0.1',
      '--api-port',
      String(apiPort),
      '--default-target',
      `http://127.0.0.1:${upstreamPort}`,
      '--log-level',
      'error',
    ],
    {
      env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 'bench' },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  await waitListening(port, child, 'configurable-http-proxy');
  return { child, port, stop: stopper(child) };
}

/** nginx only when installed (Debian package nginx): one worker, upstream keep-alive, no access log. */
export async function startNginx(upstreamPort: number): Promise<Started | undefined> {
  const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((candidate) => spawnSync(candidate, ['-v']).status === 0);
  if (!nginx) return undefined;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sctl-nginx-'));
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream session { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://session; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
  );
  const child = spawn(nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitListening(port, child, 'nginx');
  return { child, port, stop: stopper(child) };
}
