/**
 * Everything the session controller runs for one Docker host: the host's client (with its call gate),
 * its inventory of containers and event stream, admission, stuck containers, create activity and the
 * reconciler. In a fleet a replica has one for each host it holds the lease of, made when the lease is
 * taken and stopped when it is lost or released; with one host, one for the controller's life.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../src/config';
import type { DockerHostConfig } from '../../src/config/docker-host';
import { clientCertificateExpiry, createDockerClient } from '../../src/docker/client';
import { DockerHost } from '../../src/docker/host';
import { HostInventory } from '../../src/docker/inventory';
import { preinitialiseHost, type Metrics } from '../../src/metrics/registry';
import type { ReconcileContext, ReconcileOutcome } from '../../src/runtime/controller';
import { sleep } from '../../src/runtime/backoff';
import type { Fence } from '../../src/store/fencing';
import { listSessionPlacements } from '../../src/store/sessions';
import type { Admission } from './admission';
import { admissionFor, containerDefaults, imagesFor, type Wake } from './host-wiring';
import { HostActivity } from './host-activity';
import { OrphanNetworks } from './orphan-networks';
import { SessionReconciler } from './reconcile';
import { ImageRollout } from './rollout';
import { StuckContainers } from './stuck';

export interface HostRuntimeOptions {
  config: Config;
  /** How to reach the daemon; its name is the host's name. */
  dockerHost: DockerHostConfig;
  /** Written into status.endpoints. */
  advertiseAddress: string;
  pool: Pool;
  logger: Logger;
  metrics: Metrics;
  installation: string;
  /** Queues sessions for reconciling (the replica's one work queue). */
  wake: Wake;
  /**
   * The lease this runtime works under, in a fleet: rows placed elsewhere are not its own, and its
   * writes are fenced. Absent: one host, every row is its own.
   */
  lease?: { fence: Fence; leaseWindowMs: () => number };
}

/** What a reconcile on this host found out about where the row lives. */
export interface HostReconcileOutcome extends ReconcileOutcome {
  /** The row is placed on another host (or none, null): the replica may have to look there too. */
  placedElsewhere?: string | null;
}

export class HostRuntime {
  readonly name: string;
  readonly host: DockerHost;
  readonly inventory: HostInventory;
  readonly admission: Admission;
  readonly stuck: StuckContainers;
  readonly fence: Fence | undefined;
  /** Until the host is listed and its strays removed (at takeover, and when it answers again: host-health.ts), reconciles wait. */
  paused = false;
  /** Set by host health while the host does not answer: status says HostUnreachable or HostLost first. */
  problem: { reason: string; message: string } | undefined;
  private readonly reconciler: SessionReconciler;
  private readonly orphanNetworks: OrphanNetworks;

  constructor(private readonly options: HostRuntimeOptions) {
    const { config, pool, logger, metrics, wake, lease } = options;
    this.name = options.dockerHost.name;
    this.fence = lease?.fence;
    this.host = connectHost(config, options.dockerHost, metrics, lease?.leaseWindowMs);
    this.admission = admissionFor(this.host, config, metrics, wake);
    this.stuck = new StuckContainers({ host: this.host, logger, metrics, onRemoved: (session) => wake([session]) });
    this.inventory = this.createInventory();
    const activity = new HostActivity();
    activity.creates.wakeWith(wake);
    this.reconciler = new SessionReconciler({
      images: imagesFor(this.host, { config, pool, metrics, logger, wake }),
      // A batch member that has not finished in 10 minutes (a crash-looping new image) no longer holds the rollout back.
      rollout: new ImageRollout({ batchSize: config.images.updateBatchSize, wake, stuckAfterMs: 600_000 }),
      stuck: this.stuck,
      activity,
      db: pool,
      inventory: this.inventory,
      metrics,
      admission: this.admission,
      allowedHostPaths: config.allowedHostPaths,
      ceilings: config.ceilings,
      allowedRegistries: config.images.allowedRegistries,
      advertiseAddress: options.advertiseAddress,
      defaults: containerDefaults(config, options.installation),
      ...(lease ? { fence: lease.fence, placement: { host: this.name }, hostProblem: () => this.problem } : {}),
    });
    this.orphanNetworks = new OrphanNetworks({
      host: this.host,
      db: pool,
      installation: options.installation,
      logger,
    });
  }

  private createInventory(): HostInventory {
    const { logger, metrics, wake, installation } = this.options;
    const inventory: HostInventory = new HostInventory({
      host: this.host,
      installation,
      logger,
      metrics,
      onChange: (session) => wake([session]),
      onRelisted: (sessions) => {
        for (const session of sessions) this.stuck.adopt(inventory.forSession(session));
        // Running containers hold their room before any waiting session is admitted.
        for (const session of sessions) this.admission.seed(inventory.forSession(session));
        wake([...sessions]);
      },
    });
    return inventory;
  }

  /** The inventory has listed the host once: only then may a plan trust what it shows. */
  get synced(): boolean {
    return this.inventory.synced;
  }

  start(): void {
    this.inventory.start();
  }

  /** Undefined when the reconcile was not made (paused, or not listed yet): the key comes back when it can be. */
  readonly reconcile = async (context: ReconcileContext): Promise<HostReconcileOutcome | undefined> => {
    // Planning against an empty inventory would create containers that already exist.
    if (!this.synced || this.paused) return undefined;
    return this.reconciler.reconcile(context);
  };

  async waitSynced(signal: AbortSignal): Promise<void> {
    while (!this.synced && !signal.aborted) await sleep(50, signal);
  }

  /**
   * Containers here of sessions placed on another host (or none, or deleted): removed before the
   * host's own sessions are reconciled, so that nothing ever runs in two places because of this host.
   */
  async removeStrays(): Promise<void> {
    const { pool, logger } = this.options;
    const here = new Set(this.inventory.sessions());
    if (here.size === 0) return;
    const placed = new Map((await listSessionPlacements(pool)).map((row) => [row.name, row.placedHost]));
    for (const session of here) {
      const placedHost = placed.get(session);
      // Its own, a row of the one host, or one waiting for a host (never removed: see the reconciler).
      if (placedHost === this.name || placedHost === null || (!this.fence && placedHost !== undefined)) continue;
      try {
        await this.reconciler.reconcile({ key: session, reconcileId: `strays-${session}`, logger });
      } catch (error) {
        // One container Docker cannot remove keeps only its own session waiting, not the host.
        logger.warn({ err: error, session }, 'could not remove a stray container; retried at the next recovery');
      }
    }
  }

  /** One list of the host: every session with a container here is queued. */
  async relist(): Promise<Iterable<string>> {
    const sessions = await this.inventory.relist();
    for (const session of sessions) this.stuck.adopt(this.inventory.forSession(session));
    return sessions;
  }

  pruneOrphanNetworks(): Promise<string[]> {
    return this.orphanNetworks.prune();
  }

  async stop(): Promise<void> {
    await this.inventory.stop();
    this.stuck.stop();
  }
}

/** The Docker host with its call deadline and gate, its degraded state reported at scrape time, and its series at 0. */
function connectHost(
  config: Config,
  dockerHost: DockerHostConfig,
  metrics: Metrics,
  leaseWindowMs: (() => number) | undefined,
): DockerHost {
  const host = new DockerHost({
    name: dockerHost.name,
    docker: createDockerClient(dockerHost),
    streams: createDockerClient(dockerHost, { idleTimeoutMs: 0 }),
    metrics,
    concurrency: config.dockerConcurrency,
    timeoutMs: config.dockerTimeoutMs,
    leaseWindowMs,
  });
  metrics.trackDegraded(host.name, () => host.degraded);
  preinitialiseHost(metrics, host.name);
  const certificateExpiry = clientCertificateExpiry(dockerHost);
  if (certificateExpiry !== undefined)
    metrics.clientCertificateExpiry.set({ host: dockerHost.name }, certificateExpiry / 1000);
  return host;
}
