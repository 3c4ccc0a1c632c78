/**
 * One Docker host as the controller sees it: every Engine API call goes through here, bounded by
 * the host's own concurrency limit (so a slow host never starves the others) and measured by
 * operation and result code.
 */
import type Dockerode from 'dockerode';
import { performance } from 'node:perf_hooks';
import PQueue from 'p-queue';
import type { Metrics } from '../metrics/registry';
import { DockerDeadlineError, LeaseLostError, dockerStatusCode, type DockerApiError } from './errors';
import type { DockerOperation } from './operations';
import { networkCalls } from './network-calls';
import type { NetworkApi } from './networks';

/** Operations that stream for as long as they need (they have their own liveness checks). */
const NO_DEADLINE: ReadonlySet<DockerOperation> = new Set(['events', 'image_pull']);
/** A host that timed out a call this recently is reported degraded. */
export const DEGRADED_FOR_MS = 60_000;

export interface DockerHostOptions {
  name: string;
  docker: Dockerode;
  /** The same host without an idle timeout, for the event stream. */
  streams: Dockerode;
  metrics: Metrics;
  concurrency: number;
  /** Deadline of one call (stop and restart add their grace period); 0 for none. */
  timeoutMs: number;
  /**
   * In a fleet, how long this controller may still call the host (until its lease may have lapsed),
   * asked before every call: none left refuses the call, and a call still unanswered when the time is
   * up is aborted (LeaseLostError), so that a paused process never sends it late. Absent: no limit.
   */
  leaseWindowMs?: () => number;
  now?: () => number;
}

type Request<T> = (signal: AbortSignal) => Promise<T>;

/** For the host limiter: below everything else. */
const LOW_PRIORITY = -1;

export class DockerHost {
  readonly name: string;
  readonly docker: Dockerode;
  readonly streams: Dockerode;
  private readonly metrics: Metrics;
  private readonly limiter: PQueue;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly leaseWindowMs: () => number;
  private lastTimeoutAt: number | undefined;
  /** When a call last got an answer (any HTTP status), and when one last got none (refused, reset, timed out). */
  private lastAnswerAt = 0;
  private lastSilenceAt = 0;
  /** Network calls of their own, and the same calls made inside a slot already held. */
  private readonly networks: NetworkApi;
  private readonly networksInSlot: NetworkApi;

  constructor(options: DockerHostOptions) {
    ({
      name: this.name,
      docker: this.docker,
      streams: this.streams,
      metrics: this.metrics,
      timeoutMs: this.timeoutMs,
    } = options);
    this.now = options.now ?? Date.now;
    this.leaseWindowMs = options.leaseWindowMs ?? (() => Infinity);
    this.limiter = new PQueue({ concurrency: options.concurrency });
    const pending = { unanswered: new Set<string>(), hostInDoubt: () => !this.answering || this.degraded };
    this.networks = networkCalls(this.docker, (operation, request) => this.call(operation, request), pending);
    this.networksInSlot = networkCalls(this.docker, (operation, request) => this.measure(operation, request), pending);
  }

  /**
   * The last call that ended got an answer (any HTTP status): false from a refused, reset or timed-out
   * call until one is answered again (the event stream's liveness check makes one every few seconds).
   */
  get answering(): boolean {
    return this.lastSilenceAt <= this.lastAnswerAt;
  }

  /** A call timed out within the last minute: the daemon is hung or overloaded. */
  get degraded(): boolean {
    return this.lastTimeoutAt !== undefined && this.now() - this.lastTimeoutAt < DEGRADED_FOR_MS;
  }

  /**
   * Runs one API call under the host's concurrency limit, with its deadline, recording its latency and
   * outcome. Restarts that may wait (restartBehindOthers) go behind every call queued here.
   */
  async call<T>(operation: DockerOperation, request: Request<T>, graceMs = 0): Promise<T> {
    return this.limiter.add(() => this.measure(operation, request, graceMs)) as Promise<T>;
  }

  /** For calls that must not wait behind creates, such as the event stream and health checks. */
  async measure<T>(operation: DockerOperation, request: Request<T>, graceMs = 0): Promise<T> {
    const stop = this.metrics.dockerRequestDuration.startTimer({ host: this.name, operation });
    let code = 'ok';
    try {
      const windowMs = this.leaseWindowMs();
      if (windowMs <= 0) throw new LeaseLostError(this.name);
      const result = await this.withDeadline(operation, request, graceMs, windowMs);
      this.lastAnswerAt = performance.now();
      return result;
    } catch (error) {
      const apiError = error as DockerApiError;
      code = apiError.statusCode ? String(apiError.statusCode) : (apiError.code ?? 'error');
      if (apiError.statusCode) this.lastAnswerAt = performance.now();
      else if (!(error instanceof LeaseLostError)) this.lastSilenceAt = performance.now();
      throw error;
    } finally {
      stop();
      this.metrics.dockerRequests.inc({ host: this.name, operation, code });
    }
  }

  /**
   * Aborts the request and rejects once its deadline passes, whether or not the transport honours the
   * abort, so that a hung daemon can never hold a concurrency slot for ever.
   */
  private async withDeadline<T>(
    operation: DockerOperation,
    request: Request<T>,
    graceMs: number,
    windowMs: number,
  ): Promise<T> {
    const abort = new AbortController();
    const streams = NO_DEADLINE.has(operation);
    const callMs = this.timeoutMs <= 0 || streams ? Infinity : this.timeoutMs + graceMs;
    if (callMs === Infinity && (streams || windowMs === Infinity)) return request(abort.signal);
    const timers: NodeJS.Timeout[] = [];
    const deadline = new Promise<never>((_, reject) => {
      if (callMs !== Infinity)
        timers.push(
          setTimeout(() => {
            abort.abort();
            this.lastTimeoutAt = this.now();
            this.metrics.dockerRequestTimeouts.inc({ host: this.name, operation });
            reject(new DockerDeadlineError(operation, callMs));
          }, callMs),
        );
      // Looked at again when the window ends: a renewed lease extends it, a lapsed one aborts the call
      // (on a process woken from a pause, timers run before the socket is written to).
      const watchLease = (ms: number) =>
        timers.push(
          setTimeout(() => {
            const left = this.leaseWindowMs();
            if (left > 0) return watchLease(left);
            abort.abort();
            reject(new LeaseLostError(this.name));
          }, ms),
        );
      if (windowMs !== Infinity) watchLease(windowMs);
    });
    const work = request(abort.signal);
    work.catch(() => undefined);
    try {
      return await Promise.race([work, deadline]);
    } finally {
      for (const timer of timers) clearTimeout(timer);
    }
  }

  listManaged(filter: string): Promise<Dockerode.ContainerInfo[]> {
    return this.call('list', (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label: [filter] }, abortSignal }),
    );
  }

  /**
   * Create and, if asked, start in one concurrency slot, as `docker run` does: a new container is
   * not left waiting for a start behind other creates. A failed start still returns the id.
   */
  createAndStart(
    options: Dockerode.ContainerCreateOptions,
    start: boolean,
    steps: {
      /** Runs first, such as making the container's network; its failure fails the create. */
      network?: (calls: NetworkApi) => Promise<unknown>;
      /** Runs between create and start, such as writing the token file; its failure is reported like a failed start. */
      prepare?: (container: Dockerode.Container) => Promise<void>;
    } = {},
  ): Promise<{ id: string; startError?: unknown }> {
    const { network, prepare } = steps;
    return this.limiter.add(async () => {
      if (network) await network(this.networksInSlot);
      const container = await this.measure('create', (abortSignal) =>
        this.docker.createContainer({ ...options, abortSignal } as Dockerode.ContainerCreateOptions),
      );
      if (prepare) {
        try {
          await this.measure('put_archive', () => prepare(container));
        } catch (error) {
          return { id: container.id, startError: error };
        }
      }
      if (!start) return { id: container.id };
      try {
        await this.measure('start', (abortSignal) => container.start({ abortSignal }));
      } catch (error) {
        if (dockerStatusCode(error) !== 304) return { id: container.id, startError: error };
      }
      return { id: container.id };
    }) as Promise<{ id: string; startError?: unknown }>;
  }

  async start(id: string): Promise<void> {
    await this.call('start', (abortSignal) => this.startContainer(id, abortSignal));
  }

  private async startContainer(id: string, abortSignal: AbortSignal): Promise<void> {
    try {
      await this.docker.getContainer(id).start({ abortSignal });
    } catch (error) {
      // 304: already started. The goal is reached, so it is not a failure.
      if (dockerStatusCode(error) !== 304) throw error;
    }
  }

  /**
   * A restart that may wait (a start, or for an unhealthy container a restart): behind every other
   * call, and given up (false) when `stillWanted` says no by its turn, because what it was planned
   * for has changed meanwhile. The caller plans again.
   */
  async restartBehindOthers(
    id: string,
    how: { unhealthy: boolean; timeoutSeconds: number; stillWanted?: () => boolean },
  ): Promise<boolean> {
    return this.limiter.add(
      async () => {
        if (how.stillWanted && !how.stillWanted()) return false;
        if (how.unhealthy)
          await this.measure(
            'restart',
            (abortSignal) => this.docker.getContainer(id).restart({ t: how.timeoutSeconds, abortSignal }),
            how.timeoutSeconds * 1000,
          );
        else await this.measure('start', (abortSignal) => this.startContainer(id, abortSignal));
        return true;
      },
      { priority: LOW_PRIORITY },
    ) as Promise<boolean>;
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    await this.call(
      'stop',
      async (abortSignal) => {
        try {
          await this.docker.getContainer(id).stop({ t: timeoutSeconds, abortSignal });
        } catch (error) {
          if (dockerStatusCode(error) !== 304) throw error;
        }
      },
      timeoutSeconds * 1000,
    );
  }

  /** Stop (with the grace period) and start again: the same container, with new ephemeral ports. */
  async restart(id: string, timeoutSeconds: number): Promise<void> {
    await this.call(
      'restart',
      (abortSignal) => this.docker.getContainer(id).restart({ t: timeoutSeconds, abortSignal }),
      timeoutSeconds * 1000,
    );
  }

  /**
   * Creates a named volume, or finds it: the daemon answers 201 for an existing volume too, so the
   * caller checks the labels of what it got (src/docker/volumes.ts).
   */
  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.call('volume_create', (abortSignal) =>
      this.docker.createVolume({ Name: name, Labels: labels, abortSignal }),
    );
  }

  /** The volume's details, or undefined when there is none of that name. */
  async inspectVolume(name: string): Promise<Dockerode.VolumeInspectInfo | undefined> {
    return this.call('volume_inspect', async () => {
      try {
        return await this.docker.getVolume(name).inspect();
      } catch (error) {
        if (dockerStatusCode(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async removeVolume(name: string): Promise<void> {
    await this.call('volume_remove', async (abortSignal) => {
      try {
        await this.docker.getVolume(name).remove({ abortSignal });
      } catch (error) {
        if (dockerStatusCode(error) !== 404) throw error;
      }
    });
  }

  async inspectNetwork(name: string): Promise<Dockerode.NetworkInspectInfo | undefined> {
    return this.networks.inspectNetwork(name);
  }

  /** Networks carrying every one of the given `key=value` labels. */
  async listNetworks(labels: string[]): Promise<Dockerode.NetworkInspectInfo[]> {
    return this.networks.listNetworks(labels);
  }

  async createNetwork(options: Dockerode.NetworkCreateOptions): Promise<void> {
    await this.networks.createNetwork(options);
  }

  async removeNetwork(name: string): Promise<void> {
    await this.networks.removeNetwork(name);
  }

  createMayBePending(name: string): boolean {
    return this.networks.createMayBePending(name);
  }

  async remove(id: string): Promise<void> {
    await this.call('remove', async (abortSignal) => {
      try {
        await this.docker.getContainer(id).remove({ force: true, v: false, abortSignal });
      } catch (error) {
        // 404: already gone, which is what we wanted.
        if (dockerStatusCode(error) !== 404) throw error;
      }
    });
  }

  /** Docker renames even a dead container, which frees its name for a fresh one. */
  async rename(id: string, name: string): Promise<void> {
    await this.call('rename', (abortSignal) => this.docker.getContainer(id).rename({ name, abortSignal }));
  }

  inspect(idOrName: string): Promise<Dockerode.ContainerInspectInfo> {
    return this.call('inspect', (abortSignal) => this.docker.getContainer(idOrName).inspect({ abortSignal }));
  }

  version(): Promise<Dockerode.DockerVersion> {
    return this.measure('version', () => this.docker.version());
  }
}
