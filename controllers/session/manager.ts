/**
 * Wires the session controller together: the Docker host and its inventory, the work queue and
 * workers, and the sources that only wake keys (LISTEN, Docker events, the safety poll of
 * unobserved rows, the jittered full resync). `stop()` leaves every container running.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { advertiseAddressFor, type Config, type DockerHostConfig } from '../../src/config';
import { clientCertificateExpiry, createDockerClient } from '../../src/docker/client';
import { DockerHost } from '../../src/docker/host';
import { HostInventory } from '../../src/docker/inventory';
import { cachedProbe } from '../../src/health/cache';
import { healthReport } from '../../src/health/report';
import { preinitialise, preinitialiseHost, type Metrics } from '../../src/metrics/registry';
import { MetricsServer } from '../../src/metrics/server';
import { PHASES } from '../../crds/status';
import { Controller } from '../../src/runtime/controller';
import { Periodic } from '../../src/runtime/periodic';
import { sleep } from '../../src/runtime/backoff';
import { pruneEventsOfDeletedSessions } from '../../src/store/events';
import { SessionListener } from '../../src/store/listener';
import { countSessionsByPhase, listSessionNames, listUnobservedSessionNames } from '../../src/store/sessions';
import type { Admission } from './admission';
import { admissionFor, containerDefaults, imagesFor } from './host-wiring';
import { ImageRollout } from './rollout';
import { OrphanNetworks } from './orphan-networks';
import { SessionReconciler } from './reconcile';
import { HostActivity } from './host-activity';
import { StuckContainers } from './stuck';

export const CONTROLLER_NAME = 'session';

export interface SessionControllerOptions {
  config: Config;
  dockerHost: DockerHostConfig;
  pool: Pool;
  connectionString: string;
  logger: Logger;
  metrics: Metrics;
  /** The build version, for /health and sessionctl_build_info. */
  version?: string;
  /** This database's installation id (migration 008): containers of other installations are not ours. */
  installation: string;
}

export class SessionControllerManager {
  readonly controller: Controller;
  readonly inventory: HostInventory;
  readonly listener: SessionListener;
  readonly admission: Admission;
  readonly stuck: StuckContainers;
  private readonly poll: Periodic;
  private readonly resync: Periodic;
  private readonly server: MetricsServer;
  private readonly orphanNetworks: OrphanNetworks;
  private readonly abort = new AbortController();
  private rowsResynced = false;
  /** Keys of the first full resync not yet reconciled once; /readyz waits for it to empty. */
  private firstResync: Set<string> | undefined;
  private readonly startedAt = new Date();
  private announcedReady = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: SessionControllerOptions) {
    const { config, dockerHost, pool, logger, metrics } = options;
    preinitialise(metrics, CONTROLLER_NAME);
    const host = connectHost(config, dockerHost, metrics);
    const wake = (sessions: string[]) => sessions.forEach((session) => this.controller.queue.add(session));
    this.admission = admissionFor(host, config, metrics, wake);
    this.stuck = new StuckContainers({ host, logger, metrics, onRemoved: (session) => wake([session]) });
    this.inventory = new HostInventory({
      host,
      installation: options.installation,
      logger,
      metrics,
      onChange: (session) => wake([session]),
      onRelisted: (sessions) => {
        for (const session of sessions) this.stuck.adopt(this.inventory.forSession(session));
        // Running containers hold their room before any waiting session is admitted.
        for (const session of sessions) this.admission.seed(this.inventory.forSession(session));
        wake([...sessions]);
      },
    });
    const activity = new HostActivity();
    activity.creates.wakeWith(wake);
    const reconciler = new SessionReconciler({
      images: imagesFor(host, { config, pool, metrics, logger, wake }),
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
      advertiseAddress: advertiseAddressFor(config, dockerHost),
      defaults: containerDefaults(config, options.installation),
    });
    this.controller = new Controller({
      name: CONTROLLER_NAME,
      reconcile: reconciler.reconcile,
      workers: config.workers,
      logger,
      metrics,
    });
    this.controller.on('reconciled', (key) => {
      if (this.firstResync?.delete(key)) this.noteReadiness();
    });
    metrics.buildInfo.set({ version: options.version ?? 'unknown' }, 1);
    this.listener = this.createListener();
    this.poll = this.safetyPoll();
    this.resync = new Periodic({
      intervalMs: config.resyncIntervalMs,
      run: () => this.fullResync(),
      onError: (error) => logger.warn({ err: error }, 'full resync failed'),
    });
    this.server = this.metricsServer(host);
    this.orphanNetworks = new OrphanNetworks({ host, db: pool, installation: options.installation, logger });
  }

  /** LISTEN on the change channel: a row change queues its session; a (re)connect resyncs the rows. */
  private createListener(): SessionListener {
    const { logger, metrics, connectionString } = this.options;
    return new SessionListener({
      connectionString,
      logger,
      onNotification: (notification) => {
        if (notification.at > 0) metrics.notifyLatency.observe(Math.max(0, Date.now() / 1000 - notification.at));
        this.controller.queue.add(notification.name);
      },
      onConnected: (reconnect) => {
        metrics.listenerUp.set(1);
        if (reconnect) metrics.listenerReconnects.inc();
        this.resyncRows().catch((error) => logger.warn({ err: error }, 'resync after LISTEN failed'));
      },
      onDisconnected: () => metrics.listenerUp.set(0),
    });
  }

  /** Rows not yet observed at their generation are queued, in case a notification was lost; phases are counted. */
  private safetyPoll(): Periodic {
    const { config, pool, logger, metrics } = this.options;
    return new Periodic({
      intervalMs: config.pollIntervalMs,
      run: async () => {
        for (const name of await listUnobservedSessionNames(pool)) this.controller.queue.add(name);
        const byPhase = await countSessionsByPhase(pool);
        for (const phase of PHASES) metrics.sessions.set({ phase }, byPhase.get(phase) ?? 0);
      },
      onError: (error) => logger.warn({ err: error }, 'safety poll failed'),
    });
  }

  /** /metrics, /health (the host, the database, the listener and the queue), /healthz and /readyz. */
  private metricsServer(host: DockerHost): MetricsServer {
    const { config, dockerHost, pool, metrics, version } = this.options;
    return new MetricsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      registry: metrics.registry,
      ready: () => this.ready,
      health: cachedProbe(() =>
        healthReport({
          db: pool,
          hosts: [
            {
              name: host.name,
              url: dockerHost.url,
              version: () => host.version(),
              containersManaged: () => this.inventory.size,
              eventsConnected: () => this.inventory.connected,
              degraded: () => host.degraded,
            },
          ],
          listener: this.listener,
          queue: {
            depth: this.controller.queue.depth,
            inFlight: this.controller.queue.inFlight().size,
            oldestWaiting: () => this.controller.queue.oldestWaiting(),
          },
          version: version ?? 'unknown',
          startedAt: this.startedAt,
          ready: () => this.ready,
        }),
      ),
    });
  }

  /**
   * Ready once the inventory has listed the host and every session of the first full resync (rows
   * and containers) has been reconciled once: before that, status and containers may still disagree.
   */
  get ready(): boolean {
    return this.inventory.synced && this.rowsResynced && this.firstResync?.size === 0;
  }

  async start(): Promise<void> {
    const { logger, config, dockerHost } = this.options;
    const address = await this.server.start();
    logger.info({ address: `${address.address}:${address.port}` }, 'metrics server listening');
    this.inventory.start();
    this.listener.start();
    // Workers wait for the first list: planning against an empty inventory would try to create
    // containers that already exist.
    while (!this.inventory.synced && !this.abort.signal.aborted) await sleep(50, this.abort.signal);
    if (this.abort.signal.aborted) return;
    // Sessions that only have containers (orphans) belong to the first resync too, when the rows
    // are already in: they were queued by the list, and no worker has taken them yet.
    for (const session of this.firstResync ? this.inventory.sessions() : []) this.firstResync?.add(session);
    this.noteReadiness();
    this.controller.start();
    this.poll.start();
    this.resync.start();
    void this.orphanNetworks.prune();
    logger.info({ host: dockerHost.name, dockerHost: dockerHost.url, workers: config.workers }, 'controller started');
  }

  /** Rows only: after (re)connecting the listener, anything written while it was away is queued. */
  async resyncRows(): Promise<void> {
    const names = await listSessionNames(this.options.pool);
    for (const name of names) this.controller.queue.add(name);
    this.firstResync ??= new Set(names);
    this.rowsResynced = true;
    this.noteReadiness();
  }

  private noteReadiness(): void {
    if (!this.ready || this.announcedReady) return;
    this.announcedReady = true;
    this.options.metrics.ready.set(1);
    this.options.logger.info('first full resync reconciled; ready');
  }

  /** One list per host and one query, whatever the number of sessions. */
  async fullResync(): Promise<void> {
    const sessions = await this.inventory.relist();
    for (const session of sessions) this.stuck.adopt(this.inventory.forSession(session));
    sessions.forEach((session) => this.controller.queue.add(session));
    await this.resyncRows();
    await pruneEventsOfDeletedSessions(this.options.pool);
    await this.orphanNetworks.prune();
  }

  /** Stops taking keys, lets in-flight reconciles finish (up to the shutdown timeout), closes sources. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { logger, config } = this.options;
      this.abort.abort();
      await Promise.all([this.poll.stop(), this.resync.stop(), this.listener.stop()]);
      const finished = await this.controller.stop(config.shutdownTimeoutMs);
      if (!finished)
        logger.warn(
          { timeoutMs: config.shutdownTimeoutMs },
          'abandoned in-flight reconciles at shutdown; the next start picks them up',
        );
      await this.inventory.stop();
      this.stuck.stop();
      await this.server.stop();
      logger.info('controller stopped; containers keep running');
    })();
    return this.stopping;
  }
}

/** The Docker host with its call deadline, its degraded state reported at scrape time, and its series at 0. */
function connectHost(config: Config, dockerHost: DockerHostConfig, metrics: Metrics): DockerHost {
  const host = new DockerHost({
    name: dockerHost.name,
    docker: createDockerClient(dockerHost),
    streams: createDockerClient(dockerHost, { idleTimeoutMs: 0 }),
    metrics,
    concurrency: config.dockerConcurrency,
    timeoutMs: config.dockerTimeoutMs,
  });
  metrics.trackDegraded(host.name, () => host.degraded);
  preinitialiseHost(metrics, host.name);
  const certificateExpiry = clientCertificateExpiry(dockerHost);
  if (certificateExpiry !== undefined)
    metrics.clientCertificateExpiry.set({ host: dockerHost.name }, certificateExpiry / 1000);
  return host;
}
