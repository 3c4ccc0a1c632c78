/**
 * Idle timeout and maximum lifetime, as pure deadlines. The controller never scans rows for them:
 * each reconcile returns the next deadline as a requeue-after timer, and the timer re-reads the row
 * (so a touch made since simply moves the deadline on).
 */
import type { SessionSpec } from '../../crds/session';

/** Why a session is ended by its lifetimes: a delete (MaxLifetimeExceeded, or IdleTimeout with idleAction Delete). */
export type ExpireReason = 'MaxLifetimeExceeded' | 'IdleTimeout';

export interface LifetimeInput {
  /** ms epoch. Absent in planner tests that do not exercise lifetimes. */
  createdAt?: number;
  generationChangedAt?: number;
  lastActivityAt?: number;
}

export interface LifetimeCheck {
  /** Delete the session now. */
  expire?: { reason: ExpireReason; message: string };
  /** Keep the container stopped: nobody used the session for idleTimeoutSeconds. */
  idle?: { message: string };
  /** When to look again (ms epoch). */
  nextCheckAt?: number;
}

function duration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

export function lifetimeCheck(spec: SessionSpec, session: LifetimeInput, now: number): LifetimeCheck {
  const check: LifetimeCheck = {};
  const deadlines: number[] = [];
  if (spec.maxLifetimeSeconds !== undefined && session.createdAt !== undefined) {
    const end = session.createdAt + spec.maxLifetimeSeconds * 1000;
    if (now >= end) {
      return {
        expire: {
          reason: 'MaxLifetimeExceeded',
          message: `the session reached its maximum lifetime of ${duration(spec.maxLifetimeSeconds)} (spec.maxLifetimeSeconds) and is deleted`,
        },
      };
    }
    deadlines.push(end);
  }
  if (spec.idleTimeoutSeconds !== undefined) {
    // A spec change (or a restart request) counts as activity: a session just edited is not idle.
    const since = Math.max(session.lastActivityAt ?? 0, session.generationChangedAt ?? session.createdAt ?? now);
    const end = since + spec.idleTimeoutSeconds * 1000;
    if (now >= end) {
      const message = `no activity for ${duration(spec.idleTimeoutSeconds)} (spec.idleTimeoutSeconds)`;
      if (spec.idleAction === 'Delete')
        return {
          expire: { reason: 'IdleTimeout', message: `${message}: the session is deleted (idleAction: Delete)` },
        };
      check.idle = { message: `${message}: the container is stopped until the next touch` };
    } else {
      deadlines.push(end);
    }
  }
  if (deadlines.length > 0) check.nextCheckAt = Math.min(...deadlines);
  return check;
}
