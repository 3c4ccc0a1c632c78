/**
 * Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, started by the tests: with htpasswd
 * basic auth, or with token auth against the test token server. Its access log (one Apache line per
 * request on stdout) is the proof of what the daemon and the controller asked.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './controller';
import { waitFor } from './wait';

export interface AccessLine {
  method: string;
  path: string;
  status: number;
  /** The User-Agent: the daemon's says "docker/", the controller's (Node's fetch) "node". */
  agent: string;
  /** When the line reached us (ms epoch). */
  at: number;
}

export type RegistryAuth =
  | { htpasswd: { username: string; password: string } }
  | { token: { realm: string; service: string; issuer: string; rootCertBundle: string } };

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  host: string;
  accessLog(): AccessLine[];
  /** Requests for one repository's manifests or blobs. */
  requests(filter: { method?: string; path: RegExp }): AccessLine[];
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const ACCESS = /"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

export async function startRegistry(auth: RegistryAuth): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sctl-registry-'));
  const port = await freePort();
  let authYaml: string;
  if ('htpasswd' in auth) {
    // distribution accepts bcrypt entries only; apache2-utils' htpasswd makes them (env-up installs it).
    const line = execFileSync('htpasswd', ['-Bbn', auth.htpasswd.username, auth.htpasswd.password], {
      encoding: 'utf8',
    }).trim();
    writeFileSync(path.join(dir, 'htpasswd'), `${line}\n`, { mode: 0o600 });
    authYaml = `  htpasswd:\n    realm: sessionctl-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else {
    const { realm, service, issuer, rootCertBundle } = auth.token;
    authYaml = `  token:\n    realm: ${realm}\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${rootCertBundle}\n`;
  }
  const config = path.join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: ${path.basename(dir)}\nauth:\n${authYaml}`,
  );
  const lines: AccessLine[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async () => {
    const started = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    let buffered = '';
    started.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const match = ACCESS.exec(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        if (match)
          lines.push({ method: match[1], path: match[2], status: Number(match[3]), agent: match[4], at: Date.now() });
      }
    });
    started.stderr!.resume();
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`docker-registry exited with ${started.exitCode}`);
        const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
        return response !== undefined;
      },
      { timeoutMs: 15_000, what: 'docker-registry to listen' },
    );
  };
  await launch();
  const stopChild = async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return {
    host: `127.0.0.1:${port}`,
    accessLog: () => [...lines],
    requests: (filter) =>
      lines.filter((line) => (!filter.method || line.method === filter.method) && filter.path.test(line.path)),
    async restart() {
      await stopChild();
      await launch();
    },
    async stop() {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
