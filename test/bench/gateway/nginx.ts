/**
 * nginx in the gateway benchmark, twice: as the HTTP upstream every contender forwards to (a
 * `return 200` answer costs nginx a few microseconds, so the upstream is never the bottleneck) and as
 * the reference proxy (one worker, upstream keep-alive). Both run from configs of our own in a
 * temporary directory, on 127.0.0.1, in the foreground; the packaged service is never used. The
 * Debian package is installed when missing (root with apt-get), as the benchmark's setup.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../helpers/controller';
import { pinned } from './pinning';
import { stopper, waitListening, type Started } from './process';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx'];

function findNginx(): string | undefined {
  return CANDIDATES.find((candidate) => spawnSync(candidate, ['-v']).status === 0);
}

/** The nginx binary, installing Debian's nginx-light first when it is missing. */
export function ensureNginx(): string {
  const found = findNginx();
  if (found) return found;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version']).status !== 0)
    throw new Error(
      'nginx is not installed: run `apt-get install -y nginx-light` (Debian) and start the benchmark again',
    );
  console.log('installing nginx-light (apt-get) for the benchmark ...');
  // policy-rc.d (present in Debian containers) keeps the packaged service from starting; we never use it.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'nginx-light']]) {
    const result = spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${result.status})`);
  }
  const installed = findNginx();
  if (!installed) throw new Error('apt-get installed nginx-light but no nginx binary was found in /usr/sbin');
  return installed;
}

/** Shared head of both configs: one worker, no access log, temp files in our own directory. */
function config(dir: string, http: string): string {
  return `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
${http}
}
`;
}

async function run(binary: string, cpus: string | undefined, http: string, port: number, what: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sctl-nginx-'));
  writeFileSync(path.join(dir, 'nginx.conf'), config(dir, http));
  const [command, args] = pinned(cpus, binary, ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitListening(port, child, what);
  return { child, port, stop: stopper(child) };
}

/** The upstream: a 2-byte 200 for every path, as cheap as an HTTP answer gets. */
export async function startNginxUpstream(binary: string, cpus: string | undefined): Promise<Started> {
  const port = await freePort();
  const http = `  server { listen 127.0.0.1:${port} backlog=4096; location / { default_type text/plain; return 200 'ok'; } }`;
  return run(binary, cpus, http, port, 'nginx upstream');
}

/** The reference proxy: one worker, keep-alive to the upstream, WebSockets under /ws/ to the echo server. */
export async function startNginxProxy(
  binary: string,
  cpus: string | undefined,
  upstreamPort: number,
  wsPort: number,
): Promise<Started> {
  const port = await freePort();
  const http = `  upstream session { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 10000000; }
  upstream echo { server 127.0.0.1:${wsPort}; }
  server { listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://session; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /ws/ { proxy_pass http://echo; proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }
  }`;
  return run(binary, cpus, http, port, 'nginx (1 worker)');
}
