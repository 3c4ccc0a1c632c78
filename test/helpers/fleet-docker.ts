/**
 * The fleet's Docker daemons as the tests see them (`npm test` brings up three, SESSIONCTL_HOSTS=3):
 * one dockerode client per daemon, stopping and starting one daemon with deploy/dev/dockerd.sh (its
 * data root kept, so its containers are there again when it comes back), the managed containers of
 * every daemon with the duplicates among them, and each daemon's own event log.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import PQueue from 'p-queue';
import { parseAllDocuments } from 'yaml';
import type { Pool } from 'pg';
import { loadDockerHostConfig } from '../../src/config/docker-host';
import { createDockerClient } from '../../src/docker/client';
import { LABELS, MANAGED_FILTER } from '../../src/model/labels';
import { packageRoot } from '../../src/store/migrate';
import { upsertHosts, type HostWrite } from '../../src/store/hosts';

const DOCKERD_SH = path.join(packageRoot(), 'deploy', 'dev', 'dockerd.sh');

export interface FleetDaemon {
  /** Its DockerHost name in the test databases: dev-<port> (registerFleetHosts). */
  name: string;
  port: number;
  /** Spelled exactly as in the manifest: a controller's DOCKER_HOST must match it to not register `default`. */
  endpoint: string;
  docker: Dockerode;
  /** dockerd.sh's directory for it (data root, pidfile, log) and where its server certificate is. */
  dir: string;
  serverCerts: string;
}

function stateDir(): string {
  if (process.env.SESSIONCTL_STATE_DIR) return process.env.SESSIONCTL_STATE_DIR;
  if (process.env.SESSIONCTL_HOSTS_MANIFEST) return path.dirname(process.env.SESSIONCTL_HOSTS_MANIFEST);
  if (process.env.DOCKER_CERT_PATH) return path.dirname(process.env.DOCKER_CERT_PATH);
  throw new Error('no SESSIONCTL_STATE_DIR: run the tests through `npm test`, which brings up the daemons');
}

let daemons: FleetDaemon[] | undefined;

/** Stops the loops still running and closes the clients' keep-alive connections, so that jest exits. */
export async function closeFleetClients(): Promise<void> {
  await stopBackgroundLoops();
  for (const daemon of daemons ?? [])
    (daemon.docker.modem as unknown as { agent?: { destroy(): void } }).agent?.destroy();
  daemons = undefined;
}

/** The daemons of the test environment, first (DOCKER_HOST's) to last. */
export function fleetDaemons(): FleetDaemon[] {
  if (daemons) return daemons;
  const ports = (process.env.SESSIONCTL_DOCKER_PORTS ?? '').split(',').filter(Boolean).map(Number);
  if (ports.length < 3)
    throw new Error(
      `the fleet tests need three dockerds (SESSIONCTL_DOCKER_PORTS=${process.env.SESSIONCTL_DOCKER_PORTS ?? ''}): run them through \`npm test\`, which sets SESSIONCTL_HOSTS=3`,
    );
  const state = stateDir();
  daemons = ports.map((port, index) => {
    const endpoint = `tcp://127.0.0.1:${port}`;
    const dir = index === 0 ? path.join(state, 'docker') : path.join(state, 'hosts', String(port));
    const docker = createDockerClient(loadDockerHostConfig({ ...process.env, DOCKER_HOST: endpoint }));
    return {
      name: `dev-${port}`,
      port,
      endpoint,
      docker,
      dir,
      serverCerts: index === 0 ? path.join(state, 'certs') : path.join(dir, 'certs'),
    };
  });
  return daemons;
}

interface ManifestDocument {
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { endpoint?: string; certDir?: string; advertiseAddress?: string };
}

/**
 * Registers the test environment's daemons in a test database, with the given capacity, as env-up's
 * manifest (SESSIONCTL_HOSTS_MANIFEST) describes them, under the names of fleetDaemons(). Tests do
 * this before starting controllers, so that DOCKER_HOST (the first daemon) is not registered a
 * second time as `default`.
 */
export async function registerFleetHosts(
  pool: Pool,
  capacity: Pick<HostWrite, 'maxSessions' | 'allocatableMemoryBytes'> = {},
): Promise<FleetDaemon[]> {
  const file = process.env.SESSIONCTL_HOSTS_MANIFEST;
  if (!file) throw new Error('SESSIONCTL_HOSTS_MANIFEST is not set: run the tests through `npm test`');
  const documents = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((document) => document.toJSON() as ManifestDocument | null)
    .filter((document): document is ManifestDocument => document?.kind === 'DockerHost');
  // Named as fleetDaemons() names them, whatever the manifest calls them (env-up keeps the name a
  // daemon was registered under in the main database, say `default`).
  const fleet = fleetDaemons();
  const writes: HostWrite[] = fleet.map((daemon) => {
    const document = documents.find((candidate) => candidate.spec?.endpoint === daemon.endpoint);
    if (!document)
      throw new Error(
        `the manifest ${file} has no DockerHost for ${daemon.endpoint}: run the tests through \`npm test\``,
      );
    return {
      name: daemon.name,
      labels: document.metadata!.labels ?? {},
      endpoint: daemon.endpoint,
      certDir: document.spec!.certDir!,
      advertiseAddress: document.spec!.advertiseAddress,
      ...capacity,
    };
  });
  await upsertHosts(pool, writes);
  return fleet;
}

function dockerdSh(daemon: FleetDaemon, args: string[]): Promise<string> {
  const env = {
    ...process.env,
    SESSIONCTL_STATE_DIR: stateDir(),
    SESSIONCTL_DOCKER_PORT: String(daemon.port),
    SESSIONCTL_DOCKER_DIR: daemon.dir,
    SESSIONCTL_DOCKER_SERVER_CERTS: daemon.serverCerts,
  };
  return new Promise((resolve, reject) =>
    execFile('bash', [DOCKERD_SH, ...args], { env, timeout: 120_000 }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`dockerd.sh ${args.join(' ')} (${daemon.name}): ${error.message}\n${stderr}`))
        : resolve(stdout),
    ),
  );
}

/** Stops one daemon as env-down does (its containers SIGKILLed 1 s in); its data root stays. */
export async function stopDaemon(daemon: FleetDaemon): Promise<void> {
  await dockerdSh(daemon, ['stop', '--fast']);
}

/** Starts it again on the same data root, port and certificate; resolves once it answers. */
export async function startDaemon(daemon: FleetDaemon): Promise<void> {
  await dockerdSh(daemon, ['start']);
}

export interface FleetContainer {
  host: string;
  id: string;
  name: string;
  session: string;
  uid: string;
  state: string;
  installation: string;
  /** The session generation the container was made for. */
  generation: number;
}

export interface FleetListing {
  containers: FleetContainer[];
  /** Daemons that did not answer the list (stopped, restarting). */
  unreachable: string[];
}

/** Every managed container on every daemon (or on `only`), with its host. */
export async function fleetContainers(only: FleetDaemon[] = fleetDaemons()): Promise<FleetListing> {
  const listing: FleetListing = { containers: [], unreachable: [] };
  await Promise.all(
    only.map(async (daemon) => {
      try {
        const infos = await daemon.docker.listContainers({ all: true, filters: { label: [MANAGED_FILTER] } });
        for (const info of infos)
          listing.containers.push({
            host: daemon.name,
            id: info.Id,
            name: (info.Names[0] ?? '').replace(/^\//, ''),
            session: info.Labels[LABELS.session] ?? '',
            uid: info.Labels[LABELS.uid] ?? '',
            state: info.State,
            installation: info.Labels[LABELS.installation] ?? '',
            generation: Number(info.Labels[LABELS.generation] ?? 0),
          });
      } catch {
        listing.unreachable.push(daemon.name);
      }
    }),
  );
  return listing;
}

/**
 * Two containers of one session anywhere in the fleet, by container name and by the uid label:
 * one line per duplicate ("name sessionctl-x: dev-2411 running, dev-2412 created"). With
 * `runningOnly`, only copies that run count (a stopped one on a host that just came back is
 * expected until the controller removes it).
 */
export function duplicates(containers: FleetContainer[], options: { runningOnly?: boolean } = {}): string[] {
  const counted = options.runningOnly ? containers.filter((c) => c.state === 'running') : containers;
  const found: string[] = [];
  for (const key of ['name', 'uid'] as const) {
    const groups = new Map<string, FleetContainer[]>();
    for (const container of counted) {
      if (!container[key]) continue;
      groups.set(container[key], [...(groups.get(container[key]) ?? []), container]);
    }
    for (const [value, group] of groups)
      if (group.length > 1)
        found.push(
          `${key} ${value}: ${group
            .map((c) => `${c.host} ${c.state} ${c.id.slice(0, 12)}`)
            .sort()
            .join(', ')}`,
        );
  }
  return found;
}

/** A loop running beside a test (a sampler, a watcher); stopped by its test or, at the latest, by afterAll. */
export interface BackgroundLoop {
  stop(): Promise<void>;
}

const loops = new Set<BackgroundLoop>();

/**
 * Runs `body` over and over, `pauseMs` apart, until stopped. An error ends the loop (kept for stop()
 * to throw) rather than becoming an unhandled rejection; a test that fails before stopping its loops
 * still ends, because afterAll calls stopBackgroundLoops().
 */
export function backgroundLoop(body: () => Promise<void>, pauseMs: number): BackgroundLoop {
  let running = true;
  let failure: unknown;
  const done = (async () => {
    while (running) {
      try {
        await body();
      } catch (error) {
        failure = error;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  })();
  const loop: BackgroundLoop = {
    async stop() {
      running = false;
      loops.delete(loop);
      await done;
      if (failure) throw failure;
    },
  };
  loops.add(loop);
  return loop;
}

/** Stops every loop still running (afterAll of each fleet test file, before the database is dropped). */
export async function stopBackgroundLoops(): Promise<void> {
  await Promise.all([...loops].map((loop) => loop.stop().catch(() => undefined)));
}

/**
 * Lists every daemon's containers over and over (each list right after the previous one) while a
 * test disrupts the fleet, and keeps every duplicate it ever saw: "never two copies" is checked at
 * every moment it could be seen, not only at the end.
 */
export class ContainerSampler {
  readonly violations: string[] = [];
  samples = 0;
  private loop: BackgroundLoop | undefined;

  constructor(private readonly options: { runningOnly?: boolean; installation?: string } = {}) {}

  start(): this {
    this.loop = backgroundLoop(async () => {
      const { containers } = await fleetContainers();
      const ours = this.options.installation
        ? containers.filter((c) => c.installation === this.options.installation)
        : containers;
      this.samples++;
      for (const line of duplicates(ours, this.options))
        if (!this.violations.includes(line)) this.violations.push(line);
    }, 100);
    return this;
  }

  async stop(): Promise<{ samples: number; violations: string[] }> {
    await this.loop?.stop();
    return { samples: this.samples, violations: this.violations };
  }
}

export interface DaemonEvent {
  host: string;
  action: string;
  name: string;
  session: string;
  /** ms since the epoch, from the daemon. */
  at: number;
}

/**
 * What a daemon itself recorded about managed containers between two moments (its event log,
 * read afterwards with since/until): create, start, die, destroy... Who made a call is not in the
 * log, so tests read it over windows in which nobody legitimate should have made one.
 */
export async function daemonEvents(daemon: FleetDaemon, sinceMs: number, untilMs: number): Promise<DaemonEvent[]> {
  const stream = (await daemon.docker.getEvents({
    since: (sinceMs / 1000).toFixed(3),
    until: (untilMs / 1000).toFixed(3),
    filters: JSON.stringify({ type: ['container'], label: [MANAGED_FILTER] }),
  } as unknown as object)) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map(
      (line) => JSON.parse(line) as { Action: string; Actor: { Attributes: Record<string, string> }; timeNano: number },
    )
    .map((event) => ({
      host: daemon.name,
      action: event.Action,
      name: event.Actor.Attributes.name ?? '',
      session: event.Actor.Attributes[LABELS.session] ?? '',
      at: event.timeNano / 1e6,
    }));
}

/**
 * Every managed container, network and volume on every answering daemon, removed: each fleet test
 * file starts and ends with none, like the files that use only the first daemon.
 */
export async function removeFleetContainers(only: FleetDaemon[] = fleetDaemons()): Promise<void> {
  await Promise.all(
    only.map(async (daemon) => {
      // Containers that are not running go in one prune call per daemon (dockerd removes them
      // itself, far quicker than one request each); the running ones four at a time, as
      // test/helpers/docker.ts does (dockerd 20.10.24 can deadlock in its network code under a
      // burst of removals, moby/moby#46661).
      await daemon.docker.pruneContainers({ filters: { label: [MANAGED_FILTER] } }).catch(() => undefined);
      const queue = new PQueue({ concurrency: 4 });
      const infos = await daemon.docker
        .listContainers({ all: true, filters: { label: [MANAGED_FILTER] } })
        .catch(() => []);
      await Promise.all(
        infos.map((info) =>
          queue.add(() =>
            daemon.docker
              .getContainer(info.Id)
              .remove({ force: true, v: false })
              .catch(() => undefined),
          ),
        ),
      );
      const networks = await daemon.docker.listNetworks({ filters: { label: [MANAGED_FILTER] } }).catch(() => []);
      for (const network of networks)
        await daemon.docker
          .getNetwork(network.Id)
          .remove()
          .catch(() => undefined);
      const volumes = await daemon.docker.listVolumes({ filters: { label: [MANAGED_FILTER] } }).catch(() => undefined);
      for (const volume of volumes?.Volumes ?? [])
        await daemon.docker
          .getVolume(volume.Name)
          .remove({ force: true })
          .catch(() => undefined);
    }),
  );
}
