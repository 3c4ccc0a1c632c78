/**
 * Stuck containers: managed containers Docker can neither start nor remove (state `dead`, or a remove
 * that fails, as after "failed to remove root filesystem: device or resource busy"). Such a container
 * is renamed out of its session's way, so that the session gets a fresh container at once, and its
 * removal is retried in the background with back-off until Docker lets go of it.
 */
import type { Logger } from 'pino';
import type { DockerHost } from '../../src/docker/host';
import { dockerErrorMessage, dockerStatusCode } from '../../src/docker/errors';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, isStuckContainerName, stuckContainerName } from '../../src/model/labels';
import type { Metrics } from '../../src/metrics/registry';
import { backoffDelay } from '../../src/runtime/backoff';

export const STUCK_REMOVAL_RETRY = { baseMs: 5_000, maxMs: 300_000 };

export interface StuckContainer {
  id: string;
  session: string;
  /** The name it was set aside under. */
  name: string;
  /** Why it is stuck, in Docker's words. */
  cause: string;
}

export interface StuckContainersOptions {
  host: DockerHost;
  logger: Logger;
  metrics: Metrics;
  /** A stuck container of this session went away: its status no longer mentions it. */
  onRemoved(session: string): void;
  retry?: { baseMs: number; maxMs: number };
}

/** A remove that Docker refused for a reason of its own (not a lost connection, not "no such container"). */
export function isRemovalRefused(error: unknown): boolean {
  const code = dockerStatusCode(error);
  return code !== undefined && code !== 404 && (code >= 500 || code === 409);
}

export class StuckContainers {
  private readonly entries = new Map<string, StuckContainer & { attempts: number; timer?: NodeJS.Timeout }>();
  private stopped = false;

  constructor(private readonly options: StuckContainersOptions) {
    this.report();
  }

  forSession(session: string): StuckContainer[] {
    return [...this.entries.values()].filter((entry) => entry.session === session);
  }

  get count(): number {
    return this.entries.size;
  }

  /**
   * Renames the container aside (Docker allows that even for a dead one) and schedules its removal.
   * Throws when the rename fails too: then the session cannot move on, and the caller reports why.
   */
  async setAside(container: Pick<ObservedContainer, 'id' | 'name' | 'labels'>, cause: string): Promise<StuckContainer> {
    const session = container.labels[LABELS.session] ?? '';
    const name = stuckContainerName(session, container.id);
    if (!isStuckContainerName(container.name)) await this.options.host.rename(container.id, name);
    const entry = this.track({ id: container.id, session, name, cause });
    this.options.logger.warn({ containerId: container.id, session, name, cause }, 'container stuck; set aside');
    return entry;
  }

  /** After a list: containers set aside earlier (by this process or one before it) are retried too. */
  adopt(containers: ObservedContainer[]): void {
    for (const container of containers) {
      if (!isStuckContainerName(container.name) || this.entries.has(container.id)) continue;
      this.track({
        id: container.id,
        session: container.labels[LABELS.session] ?? '',
        name: container.name,
        cause: 'found set aside by an earlier run',
      });
    }
  }

  stop(): void {
    this.stopped = true;
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
  }

  private track(stuck: StuckContainer): StuckContainer {
    const existing = this.entries.get(stuck.id);
    if (existing) return existing;
    const entry = { ...stuck, attempts: 0 };
    this.entries.set(stuck.id, entry);
    this.report();
    this.schedule(entry);
    return entry;
  }

  private schedule(entry: StuckContainer & { attempts: number; timer?: NodeJS.Timeout }): void {
    if (this.stopped) return;
    const delay = backoffDelay(entry.attempts++, this.options.retry ?? STUCK_REMOVAL_RETRY);
    entry.timer = setTimeout(() => void this.retryRemoval(entry), delay);
    entry.timer.unref();
  }

  private async retryRemoval(entry: StuckContainer & { attempts: number; timer?: NodeJS.Timeout }): Promise<void> {
    try {
      await this.options.host.remove(entry.id);
    } catch (error) {
      entry.cause = dockerErrorMessage(error);
      this.options.logger.info(
        { containerId: entry.id, session: entry.session, attempts: entry.attempts, err: { message: entry.cause } },
        'stuck container still cannot be removed',
      );
      this.schedule(entry);
      return;
    }
    this.entries.delete(entry.id);
    this.report();
    this.options.logger.info({ containerId: entry.id, session: entry.session }, 'stuck container removed');
    this.options.onRemoved(entry.session);
  }

  private report(): void {
    this.options.metrics.stuckContainers.set({ host: this.options.host.name }, this.entries.size);
  }
}
