/**
 * One Docker host as the controller sees it: every Engine API call goes through here, bounded by
 * the host's own concurrency limit (so a slow host never starves the others) and measured by
 * operation and result code.
 */
import type Dockerode from 'dockerode';
import PQueue from 'p-queue';
import type { Metrics } from '../metrics/registry';
import { CreateActivity } from './create-activity';
import { LABELS } from './labels';
import { RestartPacer } from './restart-pacer';

export type DockerOperation =
  | 'list'
  | 'create'
  | 'start'
  | 'stop'
  | 'restart'
  | 'remove'
  | 'inspect'
  | 'version'
  | 'events'
  | 'ping'
  | 'volume_create'
  | 'volume_remove'
  | 'volume_inspect'
  | 'network_inspect'
  | 'put_archive'
  | 'network_create'
  | 'network_remove'
  | 'image_inspect'
  | 'image_pull';

export interface DockerApiError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/** The daemon's own message when it sent one, else the transport error's. */
export function dockerErrorMessage(error: unknown): string {
  const apiError = error as DockerApiError;
  return apiError.json?.message ?? apiError.message ?? String(error);
}

export function dockerStatusCode(error: unknown): number | undefined {
  return (error as DockerApiError).statusCode;
}

/** For the host limiter: below everything else. */
const LOW_PRIORITY = -1;

export class DockerHost {
  private readonly limiter: PQueue;
  /** Sessions whose containers this host is creating: crash-loop restarts wait for them. */
  readonly creates = new CreateActivity();
  /** Turns for crash-loop restarts: a bounded rate of them per host. */
  readonly crashRestarts = new RestartPacer();

  constructor(
    readonly name: string,
    readonly docker: Dockerode,
    /** The same host without an idle timeout, for the event stream. */
    readonly streams: Dockerode,
    private readonly metrics: Metrics,
    concurrency: number,
  ) {
    this.limiter = new PQueue({ concurrency });
  }

  /**
   * Runs one API call under the host's concurrency limit, recording its latency and outcome.
   * Crash-loop restarts (restartCrashLoop) go behind every call queued here.
   */
  async call<T>(operation: DockerOperation, request: () => Promise<T>): Promise<T> {
    return this.limiter.add(() => this.measure(operation, request)) as Promise<T>;
  }

  /** For calls that must not wait behind creates, such as the event stream and health checks. */
  async measure<T>(operation: DockerOperation, request: () => Promise<T>): Promise<T> {
    const stop = this.metrics.dockerRequestDuration.startTimer({ host: this.name, operation });
    let code = 'ok';
    try {
      return await request();
    } catch (error) {
      const apiError = error as DockerApiError;
      code = apiError.statusCode ? String(apiError.statusCode) : (apiError.code ?? 'error');
      throw error;
    } finally {
      stop();
      this.metrics.dockerRequests.inc({ host: this.name, operation, code });
    }
  }

  listManaged(filter: string): Promise<Dockerode.ContainerInfo[]> {
    return this.call('list', () => this.docker.listContainers({ all: true, filters: { label: [filter] } }));
  }

  /**
   * Create and, if asked, start in one concurrency slot, as `docker run` does: a new container is
   * not left waiting for a start behind other creates. A failed start still returns the id.
   */
  createAndStart(
    options: Dockerode.ContainerCreateOptions,
    start: boolean,
    /** Runs between create and start, such as writing the token file; its failure is reported like a failed start. */
    prepare?: (container: Dockerode.Container) => Promise<void>,
  ): Promise<{ id: string; startError?: unknown }> {
    const work = () => this.limiter.add(async () => {
      const container = await this.measure('create', () => this.docker.createContainer(options));
      if (prepare) {
        try {
          await this.measure('put_archive', () => prepare(container));
        } catch (error) {
          return { id: container.id, startError: error };
        }
      }
      if (!start) return { id: container.id };
      try {
        await this.measure('start', () => container.start());
      } catch (error) {
        if (dockerStatusCode(error) !== 304) return { id: container.id, startError: error };
      }
      return { id: container.id };
    }) as Promise<{ id: string; startError?: unknown }>;
    const session = options.Labels?.[LABELS.session];
    return start && session ? this.creates.track(session, work) : work();
  }

  async start(id: string): Promise<void> {
    await this.call('start', () => this.startContainer(id));
  }

  private async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (error) {
      // 304: already started. The goal is reached, so it is not a failure.
      if (dockerStatusCode(error) !== 304) throw error;
    }
  }

  /**
   * A crash loop's restart (a start, or for an unhealthy container a restart): behind every other
   * call, and, if it may yield, given up (false) when by its turn the host has begun creating other
   * sessions' containers, because it was planned before they came. The caller plans again.
   */
  async restartCrashLoop(id: string, session: string, how: { unhealthy: boolean; timeoutSeconds: number; yieldToCreates: boolean }): Promise<boolean> {
    return this.limiter.add(
      async () => {
        if (how.yieldToCreates && this.creates.busyWithOthers(session)) return false;
        if (how.unhealthy) await this.measure('restart', () => this.docker.getContainer(id).restart({ t: how.timeoutSeconds }));
        else await this.measure('start', () => this.startContainer(id));
        return true;
      },
      { priority: LOW_PRIORITY },
    ) as Promise<boolean>;
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    await this.call('stop', async () => {
      try {
        await this.docker.getContainer(id).stop({ t: timeoutSeconds });
      } catch (error) {
        if (dockerStatusCode(error) !== 304) throw error;
      }
    });
  }

  /** Stop (with the grace period) and start again: the same container, with new ephemeral ports. */
  async restart(id: string, timeoutSeconds: number): Promise<void> {
    await this.call('restart', () => this.docker.getContainer(id).restart({ t: timeoutSeconds }));
  }

  /**
   * Creates a named volume, or finds it: the daemon answers 201 for an existing volume too, so the
   * caller checks the labels of what it got (src/docker/volumes.ts).
   */
  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.call('volume_create', () => this.docker.createVolume({ Name: name, Labels: labels }));
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
    await this.call('volume_remove', async () => {
      try {
        await this.docker.getVolume(name).remove();
      } catch (error) {
        if (dockerStatusCode(error) !== 404) throw error;
      }
    });
  }

  async inspectNetwork(name: string): Promise<Dockerode.NetworkInspectInfo | undefined> {
    return this.call('network_inspect', async () => {
      try {
        return await this.docker.getNetwork(name).inspect();
      } catch (error) {
        if (dockerStatusCode(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async createNetwork(options: Dockerode.NetworkCreateOptions): Promise<void> {
    await this.call('network_create', () => this.docker.createNetwork(options));
  }

  async removeNetwork(name: string): Promise<void> {
    await this.call('network_remove', async () => {
      try {
        await this.docker.getNetwork(name).remove();
      } catch (error) {
        if (dockerStatusCode(error) !== 404) throw error;
      }
    });
  }

  async remove(id: string): Promise<void> {
    await this.call('remove', async () => {
      try {
        await this.docker.getContainer(id).remove({ force: true, v: false });
      } catch (error) {
        // 404: already gone, which is what we wanted.
        if (dockerStatusCode(error) !== 404) throw error;
      }
    });
  }

  inspect(idOrName: string): Promise<Dockerode.ContainerInspectInfo> {
    return this.call('inspect', () => this.docker.getContainer(idOrName).inspect());
  }

  version(): Promise<Dockerode.DockerVersion> {
    return this.measure('version', () => this.docker.version());
  }
}
