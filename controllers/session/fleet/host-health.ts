/**
 * What the leaseholder of a host tells everyone about it (docs/fleet.md, "Host failure"): the host's
 * state (Pending, Ready, Unreachable, Lost) and, while it does not answer, its sessions' Ready=False.
 *
 * - The inventory's event stream and the host's calls decide (the stream is itself checked for liveness
 *   every 5 s, and reconnects with backoff), so that watching a host makes no Docker call of its own.
 *   Down for 6 s: Unreachable, and every session placed on it shows Ready=False, HostUnreachable.
 *   Reconciles go on (an invalid spec is still reported), their status naming HostUnreachable first.
 * - Silent for the lost-after time: Lost. Sessions without volumes leave it (unplaced, then placed
 *   elsewhere); sessions with volumes wait for it, HostLost.
 * - Answering again: the host's reconciles pause while it is listed and containers of sessions that
 *   moved away are removed; only then are its own sessions reconciled (they start again if they had
 *   stopped).
 * Every write is fenced by the lease, like the reconciler's.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from '../../../src/metrics/registry';
import { sleep } from '../../../src/runtime/backoff';
import { unplaceSessionFenced, writeHostStateFenced, writeStatusFenced } from '../../../src/store/fencing';
import type { HostState } from '../../../src/store/hosts';
import { countOtherAvailableHosts, listPlacedSessionNames, listPlacedSessions } from '../../../src/store/placement';
import { recordEvent } from '../../../src/store/events';
import type { HostRuntime } from '../host-runtime';
import { hostProblemStatus, type HostProblem } from './fleet-status';

const LOOK_EVERY_MS = 1_000;
export const UNREACHABLE_AFTER_MS = 6_000;

export interface HostHealthOptions {
  runtime: HostRuntime;
  pool: Pool;
  logger: Logger;
  metrics: Metrics;
  lostAfterMs: number;
  /** Queues sessions on the replica's work queue. */
  wake(sessions: string[]): void;
  /** The host answers again (or for the first time) and its sessions were queued. */
  onReady?(): void;
  /** What the host's row says (another replica may have seen it go down before this one took it over). */
  initial?: { state: HostState; since: Date };
}

export class HostHealth {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private state: HostState = 'Pending';
  private silentSince: number | undefined;

  constructor(private readonly options: HostHealthOptions) {
    const { initial } = options;
    // Down before the takeover: the lost-after time counts from when it went down, not from now.
    if (initial && (initial.state === 'Unreachable' || initial.state === 'Lost')) {
      // Lost is reached again (not inherited), so that what the previous holder had not finished moving moves.
      this.state = 'Unreachable';
      this.silentSince = initial.since.getTime();
    }
  }

  get current(): HostState {
    return this.state;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    // The first list decides Pending -> Ready at once; a host that does not answer is Unreachable after the usual time.
    await Promise.race([
      this.options.runtime.waitSynced(this.abort.signal),
      sleep(UNREACHABLE_AFTER_MS, this.abort.signal),
    ]);
    while (!this.abort.signal.aborted) {
      try {
        await this.check();
      } catch (error) {
        this.options.logger.warn({ err: error, host: this.options.runtime.name }, 'host health check failed');
      }
      await sleep(LOOK_EVERY_MS, this.abort.signal);
    }
  }

  /** Listed, its event stream up, and its last call answered (a daemon shutting down drops calls before the stream). */
  private answers(): boolean {
    const { inventory, host } = this.options.runtime;
    return inventory.synced && inventory.connected && host.answering;
  }

  /** One look: a state change is written, and acted on, once. */
  async check(): Promise<void> {
    const now = Date.now();
    if (this.answers()) {
      this.silentSince = undefined;
      if (this.state !== 'Ready') await this.recover();
      return;
    }
    this.silentSince ??= now;
    const silentFor = now - this.silentSince;
    if (silentFor >= this.options.lostAfterMs && this.state !== 'Lost') await this.lost(silentFor);
    else if (silentFor >= UNREACHABLE_AFTER_MS && this.state !== 'Unreachable' && this.state !== 'Lost')
      await this.unreachable(silentFor);
  }

  private async setState(state: HostState, message: string | null): Promise<void> {
    const { runtime, pool, logger } = this.options;
    this.state = state;
    await writeHostStateFenced(pool, runtime.fence!, state, message);
    logger.info({ host: runtime.name, state, message }, 'host state');
  }

  private async unreachable(silentForMs: number): Promise<void> {
    const message = `the Docker API has not answered for ${Math.round(silentForMs / 1000)} s`;
    const told = `host ${this.options.runtime.name} is unreachable: ${message}`;
    // Reconciles go on (what needs no Docker call is still reported), but their status says this first.
    this.options.runtime.problem = { reason: 'HostUnreachable', message: told };
    await this.setState('Unreachable', message);
    await this.tellSessions('HostUnreachable', told);
    // Their keys come back (and count as looked at) while the host is down; they are reconciled when it returns.
    this.options.wake(await listPlacedSessionNames(this.options.pool, this.options.runtime.name));
  }

  /** Sessions that keep no data on the host leave it; the others wait for it. */
  private async lost(silentForMs: number): Promise<void> {
    const { runtime, pool, metrics, logger } = this.options;
    const message = `the Docker API has not answered for ${Math.round(silentForMs / 1000)} s`;
    runtime.problem = {
      reason: 'HostLost',
      message: `host ${runtime.name} is lost (${message}); the session waits for it`,
    };
    await this.setState('Lost', message);
    // With nowhere else to go, a session is better off waiting for its host, where its container is.
    const elsewhere = (await countOtherAvailableHosts(pool, runtime.name)) > 0;
    for (const session of await listPlacedSessions(pool, runtime.name)) {
      if (!elsewhere || (session.keepsDataOnHost && !session.evicting)) continue;
      if (!(await unplaceSessionFenced(pool, runtime.fence!, session))) continue;
      metrics.fleet.reschedules.inc({ reason: 'HostLost' });
      await this.event(session, 'Rescheduled', `host ${runtime.name} is lost (${message}): placed again elsewhere`);
    }
    logger.warn({ host: runtime.name, elsewhere }, 'host lost: sessions without volumes are placed elsewhere');
    await this.tellSessions('HostLost', `host ${runtime.name} is lost (${message}); the session waits for it`);
  }

  /** Strays first (sessions that moved away while the host was gone), then the host's own sessions. */
  private async recover(): Promise<void> {
    const { runtime, pool, wake } = this.options;
    // Nothing of the host's own starts before the strays (sessions that moved away meanwhile) are gone.
    runtime.paused = true;
    if (this.state === 'Unreachable' || this.state === 'Lost') await runtime.relist();
    await runtime.removeStrays();
    runtime.paused = false;
    runtime.problem = undefined;
    await this.setState('Ready', null);
    wake(await listPlacedSessionNames(pool, runtime.name));
    this.options.onReady?.();
  }

  private async tellSessions(reason: HostProblem, message: string): Promise<void> {
    const { runtime, pool } = this.options;
    const now = new Date();
    for (const session of await listPlacedSessions(pool, runtime.name)) {
      const status = hostProblemStatus(session.status, session.generation, { reason, message }, now);
      if (await writeStatusFenced(pool, runtime.fence!, { name: session.name, generation: session.generation, status }))
        await this.event(session, reason, message);
    }
  }

  private async event(
    session: { name: string; uid: string },
    reason: 'HostUnreachable' | 'HostLost' | 'Rescheduled',
    message: string,
  ): Promise<void> {
    await recordEvent(
      this.options.pool,
      { sessionName: session.name, sessionUid: session.uid, type: 'Warning', reason, message },
      undefined,
      this.options.runtime.fence,
    ).catch((error) => this.options.logger.warn({ err: error, reason }, 'could not record event'));
  }
}
