/**
 * The leases this replica holds (docs/fleet.md): every second it looks at the hosts and their leases,
 * takes free ones up to its even share (ceil(hosts / live replicas)), renews what it holds every 5 s,
 * and gives one host back per renewal period while it holds more than its share, once the other
 * replicas have been alive for a renewal period (hysteresis: a replica that starts and dies at once
 * moves nothing).
 *
 * Deadlines are local and monotonic: a renewal's answer is valid from just before it was sent, and
 * the replica stops calling a host's Docker API 10 s after that (of the 15 s lease), so that its last
 * call lands well before anyone else may take the host over. Past the deadline the host is given up.
 */
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from '../../../src/metrics/registry';
import { sleep } from '../../../src/runtime/backoff';
import {
  LEASE_DURATION_MS,
  LEASE_RENEW_INTERVAL_MS,
  acquireLease,
  hostLeaseStates,
  releaseAllLeases,
  releaseLease,
  renewLease,
  type HostLeaseState,
  type Lease,
} from '../../../src/store/leases';
import { heartbeatReplica, removeReplica, type LiveReplica } from '../../../src/store/replicas';

/** Docker calls stop this long after a renewal was sent, whatever the lease's 15 s say. */
export const RENEW_DEADLINE_MS = 10_000;
const TICK_MS = 1_000;
const UNUSABLE_BACKOFF_MS = 60_000;

export interface HeldLease {
  lease: Lease;
  /** performance.now() after which the host's Docker API is not called. */
  deadline: number;
  renewedAt: number;
}

export interface LeaseKeeperOptions {
  pool: Pool;
  holder: string;
  logger: Logger;
  metrics: Metrics;
  /** A host is ours: start reconciling it. `leaseWindowMs` is how long its Docker API may still be called (0: no more). */
  onAcquired(lease: Lease, leaseWindowMs: () => number): Promise<void>;
  /** A host is no longer ours (lost, released or deleted): stop reconciling it. */
  onLost(host: string): Promise<void>;
}

export class LeaseKeeper {
  private readonly held = new Map<string, HeldLease>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private replicas: LiveReplica[] = [];
  private lastRelease = -Infinity;
  /** Hosts this replica could not run, and until when it leaves them to others. */
  private readonly unusable = new Map<string, number>();
  /** Runtimes being stopped: in the background, so that one slow host never delays renewing the others. */
  private stopping: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaseKeeperOptions) {}

  get holder(): string {
    return this.options.holder;
  }

  /** The leases held now, by host. */
  leases(): Lease[] {
    return [...this.held.values()].map((held) => held.lease);
  }

  /** Live replicas at the last heartbeat, this one included. */
  get liveReplicas(): number {
    return Math.max(1, this.replicas.length);
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** One round now (the first at start-up, so hosts are taken before anything waits on them). */
  async tick(): Promise<void> {
    const now = performance.now();
    for (const [host, held] of this.held) if (now >= held.deadline) this.lose(host);
    await this.renewDue(now);
    // Every round (one small statement): a replica that left or joined changes the share at once.
    try {
      this.replicas = await heartbeatReplica(this.options.pool, this.holder, LEASE_DURATION_MS);
      this.options.metrics.fleet.replicas.set(this.replicas.length);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'replica heartbeat failed; leases are still renewed');
    }
    await this.balance(await hostLeaseStates(this.options.pool));
    this.options.metrics.fleet.leasesHeld.set({ replica: this.holder }, this.held.size);
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.tick();
      } catch (error) {
        this.options.logger.warn({ err: error }, 'lease round failed; leases past their deadline are given up');
      }
      await sleep(TICK_MS, this.abort.signal);
    }
  }

  private async renewDue(now: number): Promise<void> {
    for (const [host, held] of this.held) {
      if (now - held.renewedAt < LEASE_RENEW_INTERVAL_MS) continue;
      const sentAt = performance.now();
      const renewed = await renewLease(this.options.pool, held.lease);
      if (!renewed) this.lose(host);
      else this.held.set(host, { lease: renewed, deadline: deadlineFrom(sentAt, renewed), renewedAt: sentAt });
    }
  }

  /** Takes free hosts up to the share; gives one back when over it and everyone has settled. */
  private async balance(states: HostLeaseState[]): Promise<void> {
    const known = new Set(states.map((state) => state.host));
    for (const host of this.held.keys()) if (!known.has(host)) this.lose(host);
    const share = Math.ceil(states.length / this.liveReplicas);
    for (const state of rotate(states, this.holder)) {
      if (this.held.size >= share) break;
      if (state.live || this.held.has(state.host)) continue;
      await this.take(state);
    }
    const settled = this.replicas.every((replica) => replica.upForMs >= LEASE_RENEW_INTERVAL_MS);
    const now = performance.now();
    if (this.held.size > share && settled && now - this.lastRelease >= LEASE_RENEW_INTERVAL_MS) {
      this.lastRelease = now;
      const host = [...this.held.keys()].sort().at(-1)!;
      await this.release(host);
    }
  }

  private async take(state: HostLeaseState): Promise<void> {
    if ((this.unusable.get(state.host) ?? 0) > performance.now()) return;
    const sentAt = performance.now();
    const result = await acquireLease(this.options.pool, state.host, this.holder);
    if (!result.acquired) return;
    const held: HeldLease = { lease: result.lease, deadline: deadlineFrom(sentAt, result.lease), renewedAt: sentAt };
    this.held.set(state.host, held);
    const transition = state.abandoned && state.holder !== this.holder ? 'takeover' : 'acquired';
    this.options.metrics.fleet.leaseTransitions.inc({ host: state.host, transition });
    this.options.logger.info(
      { host: state.host, epoch: result.lease.epoch, previousHolder: state.holder ?? undefined, transition },
      'took the host lease',
    );
    try {
      await this.options.onAcquired(result.lease, () => this.callWindowMs(state.host, held));
    } catch (error) {
      // This replica cannot run the host (its certificates are missing here, say): another one may.
      this.options.logger.error({ err: error, host: state.host }, 'cannot run the host; giving its lease back');
      this.held.delete(state.host);
      this.unusable.set(state.host, performance.now() + UNUSABLE_BACKOFF_MS);
      await releaseLease(this.options.pool, result.lease);
    }
  }

  /** Only the lease object handed out at acquisition: a host lost and taken again gets a new one. */
  private callWindowMs(host: string, held: HeldLease): number {
    const current = this.held.get(host);
    if (current === undefined || current.lease.epoch !== held.lease.epoch) return 0;
    return Math.max(0, current.deadline - performance.now());
  }

  /**
   * Gives a held host back now (its declaration changed: endpoint, certificates, address). It is
   * taken again, by this replica or another, with a runtime built from the new row.
   */
  async giveBack(host: string): Promise<void> {
    await this.release(host);
  }

  /** The gate closes with `held`, the lease goes at once, and the runtime stops in the background. */
  private async release(host: string): Promise<void> {
    const held = this.held.get(host);
    if (!held) return;
    this.held.delete(host);
    this.stopRuntime(host);
    await releaseLease(this.options.pool, held.lease);
    this.options.metrics.fleet.leaseTransitions.inc({ host, transition: 'released' });
    this.options.logger.info({ host, epoch: held.lease.epoch }, 'released the host lease to rebalance');
  }

  private lose(host: string): void {
    const held = this.held.get(host);
    if (!held) return;
    this.held.delete(host);
    this.options.metrics.fleet.leaseTransitions.inc({ host, transition: 'lost' });
    this.options.logger.warn({ host, epoch: held.lease.epoch }, 'lost the host lease; stopped working on the host');
    this.stopRuntime(host);
  }

  private stopRuntime(host: string): void {
    this.stopping = this.stopping
      .then(() => this.options.onLost(host))
      .catch((error) => this.options.logger.warn({ err: error, host }, 'stopping the host runtime failed'));
  }

  /**
   * A clean shutdown: Docker calls stop at once (the gates close with `held`), then every lease and
   * the replica's row are given up in two statements, so other replicas take the hosts within a tick.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    const hosts = [...this.held.keys()];
    this.held.clear();
    await removeReplica(this.options.pool, this.holder).catch(() => undefined);
    const released = await releaseAllLeases(this.options.pool, this.holder).catch(() => []);
    for (const host of released) this.options.metrics.fleet.leaseTransitions.inc({ host, transition: 'released' });
    if (released.length > 0) this.options.logger.info({ hosts: released }, 'released host leases');
    for (const host of hosts) this.stopRuntime(host);
    await this.stopping;
  }
}

function deadlineFrom(sentAt: number, lease: Lease): number {
  return sentAt + Math.min(RENEW_DEADLINE_MS, lease.validForMs);
}

/** Each replica starts looking at a different host, so that replicas starting together rarely race. */
function rotate(states: HostLeaseState[], holder: string): HostLeaseState[] {
  if (states.length === 0) return states;
  let hash = 0;
  for (const char of holder) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const start = hash % states.length;
  return [...states.slice(start), ...states.slice(0, start)];
}
