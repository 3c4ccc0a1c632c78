/**
 * The real gateway, as a child process running the compiled CLI (so that its log output can be
 * searched for secrets), plus session specs whose busybox containers report what reached them:
 * a CGI script that echoes the forwarded headers and checks the token, and a WebSocket echo made
 * of `nc` and `cat`.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { SessionSpecInput } from '../../crds/session';
import { packageRoot } from '../../src/store/migrate';
import { freePort } from './controller';
import { waitFor } from './wait';

const CLI = path.join(packageRoot(), 'bin', 'sessionctl.js');

/** Reads the token from $SESSION_TOKEN_FILE when set (the file form), else $SESSION_TOKEN. */
const ECHO_CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
want="$SESSION_TOKEN"; [ -n "$SESSION_TOKEN_FILE" ] && want=$(cat "$SESSION_TOKEN_FILE")
got="$HTTP_X_SESSION_TOKEN"; [ -z "$got" ] && got="\${HTTP_AUTHORIZATION#Bearer }"
if [ -n "$want" ] && [ "$got" = "$want" ]; then echo "token=ok"; else echo "token=bad"; fi
echo "uri=$REQUEST_URI"
echo "xff=$HTTP_X_FORWARDED_FOR"
echo "xfproto=$HTTP_X_FORWARDED_PROTO"
echo "xfhost=$HTTP_X_FORWARDED_HOST"
echo "cookie=$HTTP_COOKIE"
echo "hop=$HTTP_X_HOP"
echo "authorization=\${HTTP_AUTHORIZATION:+set}"
`;

/** The RFC 6455 handshake in busybox sh; then `cat` echoes frames as they are (the test sends them unmasked). */
const WS_ECHO = `#!/bin/sh
key=
while IFS= read -r line; do
  line=$(printf '%s' "$line" | tr -d '\\r')
  [ -z "$line" ] && break
  case "$line" in [Ss]ec-[Ww]eb[Ss]ocket-[Kk]ey:*) key=$(printf '%s' "\${line#*:}" | tr -d ' ') ;; esac
done
accept=$(printf "$(printf '%s' "\${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11" | sha1sum | cut -c1-40 | sed 's/../\\\\x&/g')" | base64)
printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: %s\\r\\n\\r\\n' "$accept"
exec cat
`;

const SETUP = [
  'mkdir -p /tmp/www/cgi-bin /tmp/www/s/keeper',
  'printf %s "$ECHO_CGI" > /tmp/www/cgi-bin/echo',
  'printf %s "$WS_ECHO" > /tmp/ws.sh',
  'chmod +x /tmp/www/cgi-bin/echo /tmp/ws.sh',
  'echo hello > /tmp/www/hello.txt',
  'echo kept > /tmp/www/s/keeper/hello.txt',
  '{ nc -ll -p 8081 -e /tmp/ws.sh & }',
  'exec httpd -f -p 8080 -h /tmp/www',
].join(' && ');

/** A session with a token, an HTTP port (`http`, first) and a WebSocket echo port (`ws`). */
export const gatewaySpec = (extra: Partial<SessionSpecInput> = {}): SessionSpecInput => ({
  image: 'sessionctl/base:dev',
  command: ['sh', '-c', SETUP],
  env: { ECHO_CGI, WS_ECHO },
  ports: [
    { name: 'http', containerPort: 8080 },
    { name: 'ws', containerPort: 8081 },
  ],
  resources: { memory: '32Mi', cpus: '0.2' },
  auth: { tokenTtlSeconds: 3600 },
  ...extra,
});

export interface GatewayProcess {
  url: string;
  port: number;
  metricsUrl: string;
  output(): string;
  stop(): Promise<number | null>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export async function startGateway(options: {
  databaseUrl: string;
  env?: Record<string, string>;
  /** PEM files: the gateway serves HTTPS, and `url` is https://. */
  tls?: { certPath: string; keyPath: string };
}): Promise<GatewayProcess> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: options.databaseUrl,
    SESSIONCTL_GATEWAY_ADDR: `127.0.0.1:${port}`,
    SESSIONCTL_GATEWAY_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    LOG_LEVEL: 'debug',
    SESSIONCTL_LOG_FORMAT: 'json',
    ...(options.tls
      ? { SESSIONCTL_GATEWAY_TLS_CERT: options.tls.certPath, SESSIONCTL_GATEWAY_TLS_KEY: options.tls.keyPath }
      : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, [CLI, 'gateway'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${output}`);
      // The metrics port answers the same probe in plain HTTP, so no CA is needed here.
      return (await fetch(`${options.tls ? metricsUrl : url}/readyz`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, what: 'the gateway to become ready' },
  );
  return {
    url,
    port,
    metricsUrl,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      let total = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)))
          total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return total;
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A plain node:http(s) GET (fetch refuses hop-by-hop headers and follows redirects); `ca` trusts a test CA. */
export function get(url: string, headers: Record<string, string> = {}, method = 'GET', ca?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const request = client.request(url, { method, headers, agent: false, ca }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}
