/**
 * The Docker side of the benchmark: the session spec both sides run, the raw baseline's create
 * options (byte for byte what the controller would send, minus the managed labels), in the network
 * mode the controller runs (SESSIONCTL_NETWORK_MODE): with PerSession each raw container gets its own
 * network first, created as the controller creates a session's. Cleanup of only the benchmark's own
 * containers and networks, a Docker events recorder, and crashing a container.
 */
import { performance } from 'node:perf_hooks';
import type Dockerode from 'dockerode';
import PQueue from 'p-queue';
import { sessionSpecSchema, type SessionSpecInput } from '../../../crds/session';
import { loadDockerHostConfig } from '../../../src/config/docker-host';
import { envSchema } from '../../../src/config/env-schema';
import { onJsonLines } from '../../../src/docker/json-lines';
import { createDockerClient } from '../../../src/docker/client';
import { DEFAULT_CONTAINER_DEFAULTS, containerCreateOptions } from '../../../src/docker/container-config';
import { sessionNetworkCreateOptions, type NetworkMode } from '../../../src/docker/networks';
import { httpSpec } from '../../helpers/sessions';
import { sleep } from './stats';

/** Session names start with this; the controller names their containers `sessionctl-bench-…`. */
export const SESSION_PREFIX = 'bench-';
export const RAW_PREFIX = 'benchraw-';
const RAW_LABEL = 'sessionctl-bench.baseline';
/** Also docker-compose's containers (lib/compose.ts names them benchcompose_<service>_1). */
const OWN_NAME = new RegExp(`^/?(${RAW_PREFIX}|sessionctl-${SESSION_PREFIX}|benchcompose_)`);
/** The baselines' networks: raw (benchraw-<name>) and docker-compose's (benchcompose_<service>). */
const BASELINE_NETWORK = new RegExp(`^(${RAW_PREFIX}|benchcompose_)`);
/** The controller's networks for the benchmark's sessions (sessionNetworkName). */
const CONTROLLER_NETWORK = new RegExp(`^sessionctl-${SESSION_PREFIX}`);

/** The controller's network mode and default egress, read from the environment as its configuration reads them. */
export function benchNetworkMode(env: NodeJS.ProcessEnv = process.env): {
  mode: NetworkMode;
  defaultEgress: 'Internet' | 'None';
} {
  return {
    mode: envSchema.shape.SESSIONCTL_NETWORK_MODE.parse(env.SESSIONCTL_NETWORK_MODE),
    defaultEgress: envSchema.shape.SESSIONCTL_DEFAULT_EGRESS.parse(env.SESSIONCTL_DEFAULT_EGRESS),
  };
}

export function benchSpec(extra: Partial<SessionSpecInput> = {}): SessionSpecInput {
  return httpSpec({ env: { MODE: 'bench' }, ...extra });
}

/**
 * What the controller sends for a session with benchSpec(), with our own name and a label that is
 * not the managed one, so that no controller ever treats the baseline's containers as orphans. In
 * PerSession mode the container is on rawNetworkOptions(name)'s network, as a session on its own.
 */
export function rawCreateOptions(
  name: string,
  restart: 'no' | 'always',
  networkMode: NetworkMode,
): Dockerode.ContainerCreateOptions {
  const spec = sessionSpecSchema.parse(benchSpec());
  const options = containerCreateOptions(
    { name, uid: '00000000-0000-0000-0000-000000000000', generation: 1 },
    spec,
    { ...DEFAULT_CONTAINER_DEFAULTS, publishAddress: '127.0.0.1', networkMode },
    { network: networkMode === 'PerSession' ? rawNetworkName(name) : undefined },
  );
  return {
    ...options,
    name: `${RAW_PREFIX}${name}`,
    Labels: { [RAW_LABEL]: 'true' },
    HostConfig: { ...options.HostConfig, RestartPolicy: { Name: restart } },
  };
}

export function rawNetworkName(name: string): string {
  return `${RAW_PREFIX}${name}`;
}

/** What the controller creates a session's network with (sessionNetworkCreateOptions), with our name and label. */
export function rawNetworkOptions(name: string): Dockerode.NetworkCreateOptions {
  const spec = sessionSpecSchema.parse(benchSpec());
  const egress = spec.network?.egress ?? benchNetworkMode().defaultEgress;
  const options = sessionNetworkCreateOptions(name, '00000000-0000-0000-0000-000000000000', egress);
  return { ...options, Name: rawNetworkName(name), Labels: { [RAW_LABEL]: 'true' } };
}

/**
 * One raw container as the controller makes a new session's: its network first (PerSession), then
 * create and start. Times each step in ms.
 */
export async function rawCreateStart(
  docker: Dockerode,
  name: string,
  restart: 'no' | 'always',
  networkMode: NetworkMode,
): Promise<{ container: Dockerode.Container; networkMs: number; createMs: number; startMs: number }> {
  const n0 = performance.now();
  if (networkMode === 'PerSession') await docker.createNetwork(rawNetworkOptions(name));
  const c0 = performance.now();
  const container = await docker.createContainer(rawCreateOptions(name, restart, networkMode));
  const c1 = performance.now();
  await container.start();
  return { container, networkMs: c0 - n0, createMs: c1 - c0, startMs: performance.now() - c1 };
}

/**
 * Force-removes every container the benchmark made (by name), nothing else, then the baselines'
 * networks; with `controllerNetworks` (only while no controller runs) also the networks its
 * controller left for the benchmark's sessions.
 */
export async function removeBenchContainers(
  docker: Dockerode,
  concurrency: number,
  { controllerNetworks = false } = {},
): Promise<number> {
  const all = await docker.listContainers({ all: true });
  const ours = all.filter((info) => info.Names.some((name) => OWN_NAME.test(name)));
  const queue = new PQueue({ concurrency });
  const gone = (error: { statusCode?: number }) => {
    if (error.statusCode !== 404 && error.statusCode !== 409) throw error;
  };
  await Promise.all(
    ours.map((info) => queue.add(() => docker.getContainer(info.Id).remove({ force: true }).catch(gone))),
  );
  const networks = (await docker.listNetworks()).filter(
    (info) => BASELINE_NETWORK.test(info.Name) || (controllerNetworks && CONTROLLER_NETWORK.test(info.Name)),
  );
  await Promise.all(networks.map((info) => queue.add(() => docker.getNetwork(info.Id).remove().catch(gone))));
  return ours.length;
}

/** Containers on the daemon that are not the benchmark's: reported, since they share the daemon. */
export async function foreignContainers(docker: Dockerode): Promise<{ total: number; running: number }> {
  const all = (await docker.listContainers({ all: true })).filter(
    (info) => !info.Names.some((name) => OWN_NAME.test(name)),
  );
  return { total: all.length, running: all.filter((info) => info.State === 'running').length };
}

export interface ContainerEvent {
  action: string;
  id: string;
  name: string;
  /** ns epoch, from the daemon. */
  timeNano: number;
}

/** Records container die/start events of the benchmark's containers from the daemon's own stream. */
export class EventRecorder {
  readonly events: ContainerEvent[] = [];
  private stream: NodeJS.ReadableStream | undefined;
  private closed = false;

  /** Opens the stream on its own client without an idle timeout: the stream is silent between trials. */
  async start(): Promise<void> {
    const docker = createDockerClient(loadDockerHostConfig(process.env), { idleTimeoutMs: 0 });
    const stream = (await docker.getEvents({
      filters: { type: ['container'], event: ['die', 'start'] },
    } as object)) as NodeJS.ReadableStream;
    this.stream = stream;
    onJsonLines(stream, (line) => {
      let event: { Action: string; Actor: { ID: string; Attributes?: Record<string, string> }; timeNano: number };
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      const name = event.Actor.Attributes?.name ?? '';
      if (OWN_NAME.test(name))
        this.events.push({ action: event.Action, id: event.Actor.ID, name, timeNano: event.timeNano });
    });
    stream.on('error', () => undefined);
    stream.on('close', () => (this.closed = true));
  }

  /** The first event matching, at or after index `from`, waiting up to timeoutMs. */
  async next(from: number, match: (event: ContainerEvent) => boolean, timeoutMs: number): Promise<ContainerEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (this.closed) throw new Error('the Docker event stream closed');
      if (Date.now() > deadline) throw new Error(`no matching Docker event within ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  stop(): void {
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  }
}

/**
 * Crashes a container the way a fatal signal or the kernel would: SIGKILL to its PID 1 (docker-init)
 * from the host. `docker kill` is not used: dockerd 20.10 marks an API kill "exit on next" and then
 * never applies the container's own restart policy, which would leave no Docker baseline to compare.
 */
export async function crash(docker: Dockerode, id: string): Promise<void> {
  const { State } = await docker.getContainer(id).inspect();
  if (!State.Running || !State.Pid) throw new Error(`container ${id.slice(0, 12)} is not running`);
  process.kill(State.Pid, 'SIGKILL');
}

/** Waits until the container has been running for at least `ms`. */
export async function waitSteady(docker: Dockerode, id: string, ms: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { State } = await docker.getContainer(id).inspect();
    const upMs = State.Running ? Date.now() - Date.parse(State.StartedAt) : -1;
    if (upMs >= ms) return;
    if (Date.now() > deadline)
      throw new Error(`container ${id.slice(0, 12)} not steadily running within ${timeoutMs} ms`);
    await sleep(upMs >= 0 ? Math.max(10, ms - upMs) : 50);
  }
}
