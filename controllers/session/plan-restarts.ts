/**
 * The plan's restart decisions: whether an exited container is restarted at all, the restart
 * budget, the crash backoff and the waits of a crash loop's due restart (a host busy creating other
 * sessions, the host's pace of crash-loop restarts), and the backoff a restart starts. Pure.
 */
import type { SessionSpec } from '../../crds/session';
import type { ObservedContainer } from '../../src/model/container';
import type { RecordedExit } from './late-oom';

/** What a restart decision reads: the session's restart memory, the clock, and the host's side. */
export interface RestartFacts {
  restarts: RestartHistory;
  now: number;
  /** A number in [0, 1) that spreads crash backoff delays. */
  jitter: number;
  host?: { busyCreating: boolean; crashRestartTurnInMs: number };
}

/** Why a restart waits, for the plan's result. */
export interface RestartWait {
  requeueAfterMs: number;
  waiting: { reason: 'BackOff'; message: string; deferred?: DeferralReason };
}

export interface RestartHistory {
  /** Restarts since the container last ran long enough to count as stable. */
  consecutive: number;
  lastRestartAt?: number;
  /** The generation the restarts were made at: a new one starts a fresh backoff. */
  generation?: number;
  /** The spread of the next backoff, drawn once at the restart so that every look agrees on the due time. */
  jitter?: number;
  /** Why the due restart has waited so far (so that each reason is counted once). */
  deferred?: DeferralReason[];
  /** The exit the last restart followed, as recorded (a late oom event corrects its reason). */
  lastExit?: RecordedExit;
}

/**
 * A crash loop's restart goes behind other calls; 'yield' gives it up if creates begin before its
 * turn, 'overdue' (waited its longest for a busy host) does not.
 */
export type CrashLoopRestart = 'yield' | 'overdue';
/** Why a crash loop's due restart waits: the host is creating other sessions, or it waits for its turn. */
export type DeferralReason = 'HostCreating' | 'Paced';

export const CRASH_BACKOFF = { baseMs: 1_000, maxMs: 300_000, stableAfterMs: 600_000 };
/**
 * A crash loop's restart that is due waits while its host creates other sessions (the host wakes it
 * when it goes quiet), but never more than maxMs past its due time, so that a host that is always
 * busy still restarts it.
 */
export const CRASH_RESTART_DEFERRAL = { maxMs: 30_000 };
/** 0 for the first restart after a crash, then 1 s doubling to 5 min, spread by ±20%. */
export function crashBackoffMs(consecutive: number, jitter: number): number {
  if (consecutive <= 0) return 0;
  const exponential = Math.min(CRASH_BACKOFF.maxMs, CRASH_BACKOFF.baseMs * 2 ** (consecutive - 1));
  return Math.round(Math.min(CRASH_BACKOFF.maxMs, exponential * (0.8 + 0.4 * jitter)));
}

/**
 * A container that ran for ten minutes before exiting (or turning unhealthy, while still running)
 * was stable: its failure starts a fresh backoff.
 */
export function ranStably(container: ObservedContainer, now: number): boolean {
  if (container.startedAt === undefined) return false;
  const end = container.finishedAt ?? (container.state === 'running' ? now : undefined);
  return end !== undefined && end - container.startedAt >= CRASH_BACKOFF.stableAfterMs;
}

export function shouldRestart(spec: SessionSpec, container: ObservedContainer): boolean {
  if (spec.restartPolicy === 'Always') return true;
  if (spec.restartPolicy === 'OnFailure') return (container.exitCode ?? 1) !== 0 || container.oomKilled === true;
  return false;
}

/** The backoff a restart starts: a stable run before the failure counts from one again. */
export function nextBackoff(
  input: RestartFacts,
  container: ObservedContainer,
): { consecutive: number; jitter: number } {
  return { consecutive: ranStably(container, input.now) ? 1 : input.restarts.consecutive + 1, jitter: input.jitter };
}

export function restartBudget(
  spec: SessionSpec,
  restartCount: number,
  session: string,
): { spent: boolean; message: string } {
  if (spec.maxRestarts === undefined || restartCount < spec.maxRestarts) return { spent: false, message: '' };
  return {
    spent: true,
    message: `restarted ${restartCount} times, the most spec.maxRestarts allows (${spec.maxRestarts}); change the spec or run \`sessionctl restart ${session}\` to try again`,
  };
}

/**
 * Why this container's restart must wait, if it must: the crash backoff still running, or, for a
 * crash loop whose backoff is over, a host busy creating other sessions' containers, or the host's
 * pace of crash-loop restarts. The first restart after a failure never waits for the host: only a
 * container that keeps crashing yields.
 */
export function restartWait(
  input: RestartFacts,
  primary: ObservedContainer,
  why: string,
): { wait: RestartWait } | { go: { crashLoop?: CrashLoopRestart } } {
  const consecutive = ranStably(primary, input.now) ? 0 : input.restarts.consecutive;
  const delay = crashBackoffMs(consecutive, input.restarts.jitter ?? input.jitter);
  if (delay <= 0) return { go: {} };
  const readyAt = (input.restarts.lastRestartAt ?? 0) + delay;
  if (readyAt > input.now) {
    const seconds = Math.ceil((readyAt - input.now) / 1000);
    return {
      wait: {
        requeueAfterMs: readyAt - input.now,
        waiting: { reason: 'BackOff', message: `back-off ${seconds}s restarting: ${why}` },
      },
    };
  }
  const overdue = input.now - readyAt >= CRASH_RESTART_DEFERRAL.maxMs;
  if (!overdue && input.host?.busyCreating) {
    return {
      wait: {
        requeueAfterMs: CRASH_RESTART_DEFERRAL.maxMs - (input.now - readyAt),
        waiting: hostCreatingWait(why),
      },
    };
  }
  const turnInMs = input.host?.crashRestartTurnInMs ?? 0;
  if (turnInMs > 0) {
    return {
      wait: {
        requeueAfterMs: turnInMs,
        waiting: {
          reason: 'BackOff',
          message: `back-off restarting: ${why}; the host paces crash-loop restarts, and this one's turn comes in ${Math.ceil(turnInMs / 100) / 10}s`,
          deferred: 'Paced',
        },
      },
    };
  }
  return { go: { crashLoop: overdue ? 'overdue' : 'yield' } };
}

/** Why a restart is wanted, in the words status uses. */
export function restartCause(exitCode: number | undefined, unhealthy: boolean | undefined): string {
  return unhealthy ? 'the container is unhealthy' : `the container exited with code ${exitCode ?? 'unknown'}`;
}

/**
 * A crash loop's due restart waits for the host's creates: seen by the plan (the host was creating),
 * or by the restart itself (creates began while it waited for its turn in the host's queue).
 */
export function hostCreatingWait(why: string): RestartWait['waiting'] {
  return {
    reason: 'BackOff',
    message: `back-off restarting: ${why}; the restart waits while the host creates other sessions`,
    deferred: 'HostCreating',
  };
}
