/**
 * docker-compose as many users run it today (Debian's `docker-compose` 1.29.2, the Python one):
 * one compose file with N services, each the same container the controller would create for a
 * session (containerCreateOptions, via rawCreateOptions), driven with `docker-compose up -d`. With
 * the controller's PerSession network mode each service gets a network of its own, declared with the
 * options the controller creates a session's with (rawNetworkOptions): compose names it
 * benchcompose_<service> and creates it before the containers.
 *
 * Over TLS, compose 1.29.2 verifies the daemon with python-requests' own CA bundle unless
 * REQUESTS_CA_BUNDLE names the CA file, so it is set next to DOCKER_HOST/DOCKER_TLS_VERIFY/
 * DOCKER_CERT_PATH. COMPOSE_PARALLEL_LIMIT is 2N: with its default (64) compose 1.29 can deadlock
 * on large projects (docker/compose#5864, #8161); every call also has a hard timeout.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import type { NetworkMode } from '../../../src/docker/networks';
import { rawCreateOptions, rawNetworkOptions } from './docker';

export const COMPOSE_PROJECT = 'benchcompose';
/** compose 1.29 names containers <project>_<service>_<index>. */
export const COMPOSE_CONTAINER_PREFIX = `${COMPOSE_PROJECT}_`;

/** The compose service for one benchmark session: the controller's create options, spelled as compose keys. */
function service(name: string, env: Record<string, string>, networkMode: NetworkMode): object {
  const options = rawCreateOptions(name, 'no', networkMode);
  const host = options.HostConfig!;
  const binding = Object.entries(host.PortBindings ?? {}).map(
    ([port, bindings]) => `${(bindings as Array<{ HostIp: string }>)[0].HostIp}::${port.split('/')[0]}`,
  );
  return {
    image: options.Image,
    entrypoint: options.Entrypoint,
    ...(options.Cmd ? { command: options.Cmd } : {}),
    environment: env,
    ports: binding,
    mem_limit: host.Memory,
    memswap_limit: host.MemorySwap,
    cpus: (host.NanoCpus ?? 0) / 1e9,
    pids_limit: host.PidsLimit,
    init: host.Init,
    security_opt: host.SecurityOpt,
    cap_drop: host.CapDrop,
    cap_add: host.CapAdd,
    logging: { driver: host.LogConfig?.Type, options: host.LogConfig?.Config },
    // As the raw and controller containers: on its own network (PerSession), or the daemon's default bridge.
    ...(networkMode === 'PerSession' ? { networks: [name] } : { network_mode: 'bridge' }),
    restart: 'no',
  };
}

/** The service's own network, as compose keys: bridge, internal per egress, our label. */
function network(name: string): object {
  const options = rawNetworkOptions(name);
  return { driver: options.Driver, internal: options.Internal, labels: options.Labels };
}

function baseEnv(name: string): Record<string, string> {
  const options = rawCreateOptions(name, 'no', 'Shared');
  return Object.fromEntries(
    (options.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
}

export class ComposeProject {
  readonly directory = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-bench-compose-'));
  readonly file = path.join(this.directory, 'compose.yaml');
  private readonly env: Record<string, Record<string, string>> = {};

  constructor(
    readonly services: string[],
    readonly networkMode: NetworkMode,
  ) {
    for (const name of services) this.env[name] = baseEnv(name);
    this.write();
  }

  /** Changes one service's environment, as an operator edits one session. */
  edit(name: string, key: string, value: string): void {
    this.env[name] = { ...this.env[name], [key]: value };
    this.write();
  }

  containerName(service: string): string {
    return `${COMPOSE_CONTAINER_PREFIX}${service}_1`;
  }

  private write(): void {
    // YAML 1.1, as compose's PyYAML reads it: 'no' must be quoted or it becomes false.
    writeFileSync(
      this.file,
      stringify(
        {
          services: Object.fromEntries(
            this.services.map((name) => [name, service(name, this.env[name], this.networkMode)]),
          ),
          ...(this.networkMode === 'PerSession'
            ? { networks: Object.fromEntries(this.services.map((name) => [name, network(name)])) }
            : {}),
        },
        { version: '1.1', aliasDuplicateObjects: false },
      ),
    );
  }

  /** `docker-compose up -d`: returns when compose exits, with its wall time, pid and output. */
  up(timeoutMs: number): Promise<{ seconds: number; pid: number; output: string }> {
    return this.run(['up', '-d', '--no-color'], timeoutMs);
  }

  private run(args: string[], timeoutMs: number): Promise<{ seconds: number; pid: number; output: string }> {
    const certs = process.env.DOCKER_CERT_PATH ?? path.join(os.homedir(), '.docker');
    const env = {
      ...process.env,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
      REQUESTS_CA_BUNDLE: path.join(certs, 'ca.pem'),
      COMPOSE_PARALLEL_LIMIT: String(2 * this.services.length),
      COMPOSE_HTTP_TIMEOUT: String(Math.ceil(timeoutMs / 1000)),
    };
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn('docker-compose', ['-p', COMPOSE_PROJECT, '-f', this.file, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `docker-compose ${args.join(' ')} did not finish within ${timeoutMs} ms (killed); last output:\n${output.slice(-2000)}`,
          ),
        );
      }, timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`docker-compose could not run (apt-get install docker-compose): ${error.message}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        const seconds = (performance.now() - t0) / 1000;
        if (code === 0) resolve({ seconds, pid: child.pid!, output });
        else reject(new Error(`docker-compose ${args.join(' ')} exited with ${code}:\n${output.slice(-2000)}`));
      });
    });
  }

  dispose(): void {
    rmSync(this.directory, { recursive: true, force: true });
  }
}
