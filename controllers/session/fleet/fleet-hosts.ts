/**
 * The hosts this replica runs (docs/fleet.md): in a fleet, one HostRuntime per host whose lease it
 * holds, made when the lease is taken and stopped when it is lost or released, each watched by its
 * HostHealth; and the placer for sessions without a host. With a unix-socket DOCKER_HOST (local
 * development only, which cannot be registered as a fleet host) it runs that one host, no leases.
 */
import path from 'node:path';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { advertiseAddressFor, type Config } from '../../../src/config';
import type { DockerHostConfig } from '../../../src/config/docker-host';
import type { FleetConfig } from '../../../src/config/fleet';
import type { HostProbe } from '../../../src/health/report';
import { preinitialiseFleetHost } from '../../../src/metrics/fleet';
import type { Metrics } from '../../../src/metrics/registry';
import { listHosts, type HostRow } from '../../../src/store/hosts';
import type { Lease } from '../../../src/store/leases';
import { HostRuntime } from '../host-runtime';
import type { Wake } from '../host-wiring';
import { HostHealth } from './host-health';
import { LeaseKeeper } from './lease-keeper';
import { Placer } from './placer';

export interface FleetHostsOptions {
  config: Config;
  fleet: FleetConfig;
  /** DOCKER_HOST: the host registered at start, and the TLS settings every host shares. */
  dockerHost: DockerHostConfig;
  pool: Pool;
  logger: Logger;
  metrics: Metrics;
  installation: string;
  wake: Wake;
  /** A held host was listed and found answering (at takeover, or back from a failure). */
  onHostReady?(): void;
  /** The number of hosts held here changed. */
  onHeldChanged?(held: number): void;
}

interface Running {
  runtime: HostRuntime;
  health?: HostHealth;
  lease?: Lease;
  /** What the runtime was built from: how to reach the daemon and the address sessions advertise. */
  declared?: string;
}

export class FleetHosts {
  private readonly running = new Map<string, Running>();
  readonly keeper: LeaseKeeper | undefined;
  readonly placer: Placer | undefined;

  constructor(private readonly options: FleetHostsOptions) {
    const { pool, logger, metrics, fleet, config, dockerHost } = options;
    if (!dockerHost.tls) {
      const runtime = this.runtime(dockerHost, advertiseAddressFor(config, dockerHost));
      this.running.set(runtime.name, { runtime });
      return;
    }
    this.keeper = new LeaseKeeper({
      pool,
      holder: fleet.replicaId,
      logger,
      metrics,
      onAcquired: (lease, leaseWindowMs) => this.acquired(lease, leaseWindowMs),
      onLost: (host) => this.lost(host),
    });
    this.placer = new Placer({
      pool,
      logger,
      metrics,
      policy: fleet.placementPolicy,
      defaults: { memoryBytes: config.defaultResources.memoryBytes },
      onPlaced: (host, sessions) => {
        if (this.running.has(host)) options.wake(sessions);
      },
    });
  }

  /** Fleet: takes this replica's first hosts and places what waits; one host: lists it. */
  async start(signal: AbortSignal): Promise<void> {
    if (!this.keeper) {
      const { runtime } = [...this.running.values()][0];
      runtime.start();
      await runtime.waitSynced(signal);
      return;
    }
    this.keeper.start();
    // Not awaited: thousands of rows waiting for room must not hold the work queue back.
    void this.placer!.wake();
  }

  /** Fleet: the first lease round, so that /health names the hosts held from its first answer. */
  async takeLeases(): Promise<void> {
    await this.keeper?.tick().catch((error) => this.options.logger.warn({ err: error }, 'first lease round failed'));
  }

  get isFleet(): boolean {
    return this.keeper !== undefined;
  }

  /** Runtimes a session's key concerns: its placed host if held here, and any held host with a container of it. */
  targets(session: string, placedHost: string | null | undefined): HostRuntime[] {
    if (!this.keeper) return [...this.running.values()].map((running) => running.runtime);
    return [...this.running.values()]
      .map((running) => running.runtime)
      .filter((runtime) => runtime.name === placedHost || runtime.inventory.forSession(session).length > 0)
      .sort((a, b) => Number(b.name === placedHost) - Number(a.name === placedHost));
  }

  /**
   * A host row changed. One held here whose endpoint, certificates or advertised address moved is
   * given back and taken again with a runtime built from the new row (labels, capacity and cordon
   * need no new runtime).
   */
  async hostChanged(host: string): Promise<void> {
    const running = this.running.get(host);
    if (!running?.declared) return;
    const [row] = await listHosts(this.options.pool, [host]);
    if (!row || declaration(row) === running.declared) return;
    this.options.logger.info({ host }, 'the host was declared anew; running it again with the new declaration');
    await this.keeper?.giveBack(host);
  }

  holds(host: string | null | undefined): boolean {
    return host !== null && host !== undefined && this.running.has(host);
  }

  runtimes(): HostRuntime[] {
    return [...this.running.values()].map((running) => running.runtime);
  }

  /** Every held host has been looked at once (listed and found Ready, or found unreachable). */
  get startedUp(): boolean {
    // Listed once (a host that never answered keeps the replica unready: its sessions' truth is unknown).
    return [...this.running.values()].every(
      (running) => running.runtime.synced && (!running.health || running.health.current !== 'Pending'),
    );
  }

  probes(): HostProbe[] {
    return [...this.running.values()].map(({ runtime, health, lease }) => ({
      name: runtime.name,
      url: this.urlOf(runtime.name),
      version: () => runtime.host.version(),
      containersManaged: () => runtime.inventory.size,
      eventsConnected: () => runtime.inventory.connected,
      degraded: () => runtime.host.degraded,
      ...(health && lease ? { fleet: { state: () => health.current, leaseEpoch: lease.epoch } } : {}),
    }));
  }

  private urlOf(host: string): string {
    return host === this.options.dockerHost.name ? this.options.dockerHost.url : host;
  }

  async stop(): Promise<void> {
    if (this.keeper) await this.keeper.stop();
    else for (const running of this.running.values()) await running.runtime.stop();
  }

  private runtime(dockerHost: DockerHostConfig, advertiseAddress: string, lease?: Lease, leaseWindowMs?: () => number) {
    const { config, pool, logger, metrics, installation, wake } = this.options;
    return new HostRuntime({
      config,
      dockerHost,
      advertiseAddress,
      pool,
      logger: logger.child({ host: dockerHost.name }),
      metrics,
      installation,
      wake,
      ...(lease && leaseWindowMs ? { lease: { fence: lease, leaseWindowMs } } : {}),
    });
  }

  private async acquired(lease: Lease, leaseWindowMs: () => number): Promise<void> {
    const [row] = await listHosts(this.options.pool, [lease.host]);
    if (!row) return;
    const dockerHost = hostConfig(row, this.options.dockerHost);
    preinitialiseFleetHost(this.options.metrics.fleet, row.name);
    const runtime = this.runtime(
      dockerHost,
      row.advertiseAddress ?? advertiseAddressFor(this.options.config, dockerHost),
      lease,
      leaseWindowMs,
    );
    // Nothing is reconciled before the host is listed and its strays are removed (HostHealth.recover).
    runtime.paused = true;
    const health = new HostHealth({
      runtime,
      pool: this.options.pool,
      logger: this.options.logger,
      metrics: this.options.metrics,
      lostAfterMs: this.options.fleet.hostLostAfterMs,
      wake: this.options.wake,
      initial: { state: row.state, since: row.stateChangedAt },
      onReady: this.options.onHostReady,
    });
    this.running.set(lease.host, { runtime, health, lease, declared: declaration(row) });
    this.options.onHeldChanged?.(this.running.size);
    runtime.start();
    health.start();
  }

  private async lost(host: string): Promise<void> {
    const running = this.running.get(host);
    if (!running) return;
    this.running.delete(host);
    this.options.onHeldChanged?.(this.running.size);
    running.runtime.paused = true;
    await running.health?.stop();
    await running.runtime.stop();
  }
}

/** A host row as a Docker client configuration: its endpoint, and ca/cert/key.pem in its certificate directory. */
export function hostConfig(row: HostRow, template: Pick<DockerHostConfig, 'tlsMinVersion'>): DockerHostConfig {
  const url = new URL(row.endpoint.replace(/^tcp:/, 'https:'));
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    name: row.name,
    url: row.endpoint,
    host,
    port: Number(url.port),
    tls: {
      caPath: path.join(row.certDir, 'ca.pem'),
      certPath: path.join(row.certDir, 'cert.pem'),
      keyPath: path.join(row.certDir, 'key.pem'),
    },
    ...(template.tlsMinVersion ? { tlsMinVersion: template.tlsMinVersion } : {}),
  };
}

function declaration(row: HostRow): string {
  return JSON.stringify([row.endpoint, row.certDir, row.advertiseAddress]);
}
