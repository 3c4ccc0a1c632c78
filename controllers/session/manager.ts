/**
 * Wires the session controller together: the hosts it runs (one, or in a fleet those whose lease it
 * holds, fleet/fleet-hosts.ts), the one work queue and its workers, and the sources that only wake
 * keys (LISTEN, Docker events, the safety poll of unobserved rows, the jittered full resync). A key is
 * a session's name; each reconcile goes to the hosts it concerns. `stop()` leaves every container running.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../src/config';
import type { DockerHostConfig } from '../../src/config/docker-host';
import type { FleetConfig } from '../../src/config/fleet';
import { cachedProbe } from '../../src/health/cache';
import { healthReport } from '../../src/health/report';
import { recordFleetSnapshot } from '../../src/metrics/fleet';
import { preinitialise, type Metrics } from '../../src/metrics/registry';
import { MetricsServer } from '../../src/metrics/server';
import { PHASES } from '../../crds/status';
import { Controller, type ReconcileContext, type ReconcileOutcome } from '../../src/runtime/controller';
import { Periodic } from '../../src/runtime/periodic';
import { pruneEventsOfDeletedSessions } from '../../src/store/events';
import { readFleetSnapshot } from '../../src/store/fleet-snapshot';
import { HOSTS_CHANNEL } from '../../src/store/hosts';
import { SESSIONS_CHANNEL, SessionListener, type SessionNotification } from '../../src/store/listener';
import {
  countSessionsByPhase,
  getPlacement,
  listSessionPlacements,
  listUnobservedSessions,
  type SessionPlacement,
} from '../../src/store/sessions';
import { FleetHosts } from './fleet/fleet-hosts';

export const CONTROLLER_NAME = 'session';

export interface SessionControllerOptions {
  config: Config;
  fleet: FleetConfig;
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
  readonly listener: SessionListener;
  readonly hosts: FleetHosts;
  private readonly poll: Periodic;
  private readonly resync: Periodic;
  private readonly server: MetricsServer;
  private readonly abort = new AbortController();
  private rowsResynced = false;
  /** Keys of the first full resync not yet reconciled once; /readyz waits for it to empty. */
  private firstResync: Set<string> | undefined;
  private readonly startedAt = new Date();
  private announcedReady = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: SessionControllerOptions) {
    const { config, logger, metrics } = options;
    preinitialise(metrics, CONTROLLER_NAME);
    const wake = (sessions: string[]) => sessions.forEach((session) => this.controller.queue.add(session));
    // Keys of the first resync skipped while their host was being listed come back once it is.
    const onHostReady = () => {
      wake([...(this.firstResync ?? [])]);
      this.noteReadiness();
    };
    // Each host held has its own Docker concurrency limit: the workers grow with the hosts, so that
    // reconciles busy with the database never leave a host's slots idle.
    const onHeldChanged = (held: number) => this.controller?.resize(config.workers * Math.max(1, held));
    this.hosts = new FleetHosts({ ...options, wake, onHostReady, onHeldChanged });
    this.controller = new Controller({
      name: CONTROLLER_NAME,
      reconcile: this.dispatch,
      workers: config.workers,
      logger,
      metrics,
    });
    metrics.buildInfo.set({ version: options.version ?? 'unknown' }, 1);
    this.listener = this.createListener();
    this.poll = this.safetyPoll();
    this.resync = new Periodic({
      intervalMs: config.resyncIntervalMs,
      run: () => this.fullResync(),
      onError: (error) => logger.warn({ err: error }, 'full resync failed'),
    });
    this.server = this.metricsServer();
  }

  /**
   * One key, to every host it concerns: the host it is placed on, if held here, and any held host
   * with a container of it (strays, removed there). A session waiting for a host wakes the placer.
   */
  private readonly dispatch = async (context: ReconcileContext): Promise<ReconcileOutcome> => {
    const placement = await getPlacement(this.options.pool, context.key);
    if (placement?.placedHost === null) void this.hosts.placer?.wake();
    let outcome: ReconcileOutcome = {};
    let skipped = false;
    let failure: unknown;
    // The placed host first; a host holding a stray that does not answer must not hold the session back.
    for (const runtime of this.hosts.targets(context.key, placement?.placedHost)) {
      try {
        const result = await runtime.reconcile(context);
        if (!result) skipped = true;
        else outcome = earliest(outcome, result);
      } catch (error) {
        failure ??= error;
      }
    }
    // Reconciled once, even if it failed. A host still being listed reconciles the key when it can
    // (it wakes its sessions, and the keys of the first resync, once listed).
    if (!skipped || this.hosts.startedUp) this.reconciledOnce(context.key);
    if (failure !== undefined) throw failure;
    return outcome;
  };

  private reconciledOnce(key: string): void {
    if (this.firstResync?.delete(key)) this.noteReadiness();
  }

  /** The sessions' channel queues a session; the hosts' channel (room may have appeared) wakes the placer. */
  private createListener(): SessionListener {
    const { logger, metrics, connectionString } = this.options;
    return new SessionListener({
      connectionString,
      logger,
      channels: this.hosts.isFleet ? [SESSIONS_CHANNEL, HOSTS_CHANNEL] : [SESSIONS_CHANNEL],
      onNotification: (notification) => this.notified(notification),
      onConnected: (reconnect) => {
        metrics.listenerUp.set(1);
        if (reconnect) metrics.listenerReconnects.inc();
        this.resyncRows().catch((error) => logger.warn({ err: error }, 'resync after LISTEN failed'));
      },
      onDisconnected: () => metrics.listenerUp.set(0),
    });
  }

  private notified(notification: SessionNotification): void {
    if (notification.channel === HOSTS_CHANNEL) {
      void this.hosts.placer?.wake();
      this.hosts
        .hostChanged(notification.name)
        .catch((error) => this.options.logger.warn({ err: error }, 'host change'));
      return;
    }
    const { metrics } = this.options;
    if (notification.at > 0) metrics.notifyLatency.observe(Math.max(0, Date.now() / 1000 - notification.at));
    // A change on a host may free room (a deletion, a stop) for sessions that wait.
    if (notification.host && (this.hosts.placer?.waiting ?? 0) > 0) void this.hosts.placer?.wake();
    // Without a host field (a hand-made or older notification) the placement is unknown: the reconcile reads it.
    if (notification.host === undefined) this.controller.queue.add(notification.name);
    else this.route([{ name: notification.name, placedHost: notification.host }], notification.previousHost);
  }

  /** Queues the sessions this replica runs (or may hold strays of); waiting ones wake the placer. */
  private route(sessions: SessionPlacement[], previousHost?: string | null): void {
    const queue = this.controller.queue;
    for (const { name, placedHost } of sessions) {
      if (!this.hosts.isFleet || this.hosts.holds(placedHost) || this.hosts.holds(previousHost)) queue.add(name);
      else if (this.hosts.targets(name, placedHost).length > 0) queue.add(name);
    }
    if (this.hosts.isFleet && sessions.some((session) => session.placedHost === null)) void this.hosts.placer?.wake();
  }

  /** Rows not yet observed at their generation are queued, in case a notification was lost; phases and hosts are counted. */
  private safetyPoll(): Periodic {
    const { config, pool, logger, metrics } = this.options;
    return new Periodic({
      intervalMs: config.pollIntervalMs,
      run: async () => {
        this.route(await listUnobservedSessions(pool));
        const byPhase = await countSessionsByPhase(pool);
        for (const phase of PHASES) metrics.sessions.set({ phase }, byPhase.get(phase) ?? 0);
        if (this.hosts.isFleet) recordFleetSnapshot(metrics.fleet, await readFleetSnapshot(pool));
      },
      onError: (error) => logger.warn({ err: error }, 'safety poll failed'),
    });
  }

  /** /metrics, /health (the hosts, the database, the listener and the queue), /healthz and /readyz. */
  private metricsServer(): MetricsServer {
    const { config, pool, metrics, version, fleet } = this.options;
    return new MetricsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      registry: metrics.registry,
      ready: () => this.ready,
      health: cachedProbe(() =>
        healthReport({
          db: pool,
          hosts: this.hosts.probes(),
          listener: this.listener,
          queue: {
            depth: this.controller.queue.depth,
            inFlight: this.controller.queue.inFlight().size,
            oldestWaiting: () => this.controller.queue.oldestWaiting(),
          },
          version: version ?? 'unknown',
          ...(this.hosts.isFleet ? { replica: fleet.replicaId } : {}),
          startedAt: this.startedAt,
          ready: () => this.ready,
        }),
      ),
    });
  }

  /**
   * Ready once every host it runs was listed (or found unreachable) and every session of the first
   * full resync (rows and containers) has been reconciled once: before that, status and containers may disagree.
   */
  get ready(): boolean {
    // Once ready, a takeover of another host later (listed within a second or two) does not unready the replica.
    if (this.announcedReady) return true;
    return this.hosts.startedUp && this.rowsResynced && this.firstResync?.size === 0;
  }

  async start(): Promise<void> {
    const { logger, config } = this.options;
    await this.hosts.takeLeases();
    const address = await this.server.start();
    logger.info({ address: `${address.address}:${address.port}` }, 'metrics server listening');
    // Workers wait for the hosts: planning against an unlisted host would create containers that already exist.
    await this.hosts.start(this.abort.signal);
    if (this.abort.signal.aborted) return;
    this.listener.start();
    // Sessions that only have containers (orphans) belong to the first resync too.
    for (const runtime of this.hosts.runtimes())
      for (const session of runtime.inventory.sessions()) this.firstResync?.add(session);
    this.noteReadiness();
    this.controller.start();
    this.poll.start();
    this.resync.start();
    for (const runtime of this.hosts.runtimes()) void runtime.pruneOrphanNetworks();
    logger.info(
      {
        hosts: this.hosts.runtimes().map((runtime) => runtime.name),
        replica: this.options.fleet.replicaId,
        workers: config.workers,
      },
      'controller started',
    );
  }

  /** Rows only: after (re)connecting the listener, anything written while it was away is queued. */
  async resyncRows(): Promise<void> {
    const rows = await listSessionPlacements(this.options.pool);
    this.route(rows);
    const ours = rows.filter((row) => !this.hosts.isFleet || this.hosts.holds(row.placedHost));
    this.firstResync ??= new Set(ours.map((row) => row.name));
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
    for (const runtime of this.hosts.runtimes()) {
      for (const session of await runtime.relist()) this.controller.queue.add(session);
    }
    await this.resyncRows();
    await this.hosts.placer?.wake();
    await pruneEventsOfDeletedSessions(this.options.pool);
    for (const runtime of this.hosts.runtimes()) await runtime.pruneOrphanNetworks();
  }

  /**
   * Stops taking keys and gives the hosts up (in a fleet: Docker calls stop, leases are released at
   * once so other replicas take over within a second), lets in-flight reconciles finish (up to the
   * shutdown timeout), closes sources. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { logger, config } = this.options;
      this.abort.abort();
      await Promise.all([this.poll.stop(), this.resync.stop(), this.listener.stop()]);
      if (this.hosts.isFleet) await this.hosts.stop();
      const finished = await this.controller.stop(config.shutdownTimeoutMs);
      if (!finished)
        logger.warn(
          { timeoutMs: config.shutdownTimeoutMs },
          'abandoned in-flight reconciles at shutdown; the next start picks them up',
        );
      if (!this.hosts.isFleet) await this.hosts.stop();
      await this.server.stop();
      logger.info('controller stopped; containers keep running');
    })();
    return this.stopping;
  }
}

/** Several hosts' outcomes for one key: the soonest look again wins. */
function earliest(a: ReconcileOutcome, b: ReconcileOutcome): ReconcileOutcome {
  const after = [a.requeueAfterMs, b.requeueAfterMs].filter((ms): ms is number => ms !== undefined);
  return {
    ...(a.requeue || b.requeue ? { requeue: true } : {}),
    ...(after.length > 0 ? { requeueAfterMs: Math.min(...after) } : {}),
  };
}
