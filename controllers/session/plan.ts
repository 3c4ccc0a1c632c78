/**
 * The session planner: a pure function from (desired row, observed containers) to the actions that
 * move the second towards the first. No I/O, no clock, no randomness of its own: everything it needs
 * is in its input, so every branch is unit-tested without Docker.
 */
import type { SessionSpec, Validation } from '../../crds/session';
import type { ObservedContainer } from '../../src/docker/inventory';
import { LABELS, containerName, specHash } from '../../src/docker/labels';

export interface DesiredSession {
  name: string;
  uid: string;
  generation: number;
  deletionRequested: boolean;
  hasFinalizer: boolean;
  spec: Validation<SessionSpec>;
}

export interface RestartHistory {
  /** Restarts since the container last ran long enough to count as stable. */
  consecutive: number;
  lastRestartAt?: number;
}

export interface PlanInput {
  name: string;
  /** Undefined when no row exists: every container of the session is an orphan. */
  desired?: DesiredSession;
  /** Managed containers labelled with this session name, whatever their uid. */
  containers: ObservedContainer[];
  restarts: RestartHistory;
  now: number;
  /** A number in [0, 1) that spreads crash backoff delays. */
  jitter: number;
}

export type RemoveReason = 'orphan' | 'stale-uid' | 'duplicate' | 'spec-changed' | 'deleting';

export type Action =
  | { type: 'addFinalizer' }
  | { type: 'remove'; container: ObservedContainer; reason: RemoveReason }
  | { type: 'create'; start: boolean; replaced?: ObservedContainer }
  | { type: 'start'; container: ObservedContainer }
  | { type: 'restart'; container: ObservedContainer; exitCode?: number; oomKilled: boolean }
  | { type: 'stop'; container: ObservedContainer }
  | { type: 'finalize' };

export type Waiting = { reason: 'BackOff' | 'Transitioning'; message: string };

export interface Plan {
  actions: Action[];
  requeueAfterMs?: number;
  waiting?: Waiting;
  /** The container the session is using once the actions are done (absent if none). */
  primary?: ObservedContainer;
}

export const CRASH_BACKOFF = { baseMs: 1_000, maxMs: 300_000, stableAfterMs: 600_000 };
export const STOP_TIMEOUT_SECONDS = 10;

/** 0 for the first restart after a crash, then 1 s doubling to 5 min, spread by ±20%. */
export function crashBackoffMs(consecutive: number, jitter: number): number {
  if (consecutive <= 0) return 0;
  const exponential = Math.min(CRASH_BACKOFF.maxMs, CRASH_BACKOFF.baseMs * 2 ** (consecutive - 1));
  return Math.round(Math.min(CRASH_BACKOFF.maxMs, exponential * (0.8 + 0.4 * jitter)));
}

/** A container that ran for ten minutes before exiting was stable: its crash starts a fresh backoff. */
export function ranStably(container: ObservedContainer): boolean {
  return container.startedAt !== undefined && container.finishedAt !== undefined && container.finishedAt - container.startedAt >= CRASH_BACKOFF.stableAfterMs;
}

function shouldRestart(spec: SessionSpec, container: ObservedContainer): boolean {
  if (spec.restartPolicy === 'Always') return true;
  if (spec.restartPolicy === 'OnFailure') return (container.exitCode ?? 1) !== 0 || container.oomKilled === true;
  return false;
}

export function plan(input: PlanInput): Plan {
  const { desired, containers } = input;
  if (!desired) {
    return { actions: containers.map((container) => ({ type: 'remove', container, reason: 'orphan' })) };
  }
  // A container of an earlier row that had the same name is not ours to keep, whatever else holds.
  const stale = containers.filter((container) => container.labels[LABELS.uid] !== desired.uid);
  const own = containers.filter((container) => container.labels[LABELS.uid] === desired.uid);
  const actions: Action[] = stale.map((container) => ({ type: 'remove', container, reason: 'stale-uid' }));

  if (desired.deletionRequested) {
    actions.push(...own.map((container) => ({ type: 'remove' as const, container, reason: 'deleting' as const })));
    if (desired.hasFinalizer) actions.push({ type: 'finalize' });
    return { actions };
  }
  // An invalid spec changes nothing: the last good container keeps running until the spec is fixed.
  if (!desired.spec.ok) {
    return { actions, primary: own[0] };
  }
  const spec = desired.spec.value;
  const name = containerName(input.name);
  const [primary, ...duplicates] = [...own].sort((a, b) => Number(b.name === name) - Number(a.name === name) || rank(b) - rank(a));
  actions.push(...duplicates.map((container) => ({ type: 'remove' as const, container, reason: 'duplicate' as const })));

  const wantRunning = spec.state === 'Running';
  if (!primary || primary.labels[LABELS.specHash] !== specHash(spec)) {
    if (!desired.hasFinalizer) actions.push({ type: 'addFinalizer' });
    actions.push({ type: 'create', start: wantRunning, replaced: primary });
    return { actions };
  }

  switch (primary.state) {
    case 'running':
    case 'paused':
      if (!wantRunning) actions.push({ type: 'stop', container: primary });
      return { actions, primary };
    case 'created':
      if (wantRunning) actions.push({ type: 'start', container: primary });
      return { actions, primary };
    case 'restarting':
    case 'removing':
      return { actions, primary, requeueAfterMs: 1_000, waiting: { reason: 'Transitioning', message: `container is ${primary.state}` } };
    case 'exited':
    case 'dead': {
      if (!wantRunning || !shouldRestart(spec, primary)) return { actions, primary };
      const consecutive = ranStably(primary) ? 0 : input.restarts.consecutive;
      const delay = crashBackoffMs(consecutive, input.jitter);
      const readyAt = (input.restarts.lastRestartAt ?? 0) + delay;
      if (delay > 0 && readyAt > input.now) {
        const seconds = Math.ceil((readyAt - input.now) / 1000);
        return {
          actions,
          primary,
          requeueAfterMs: readyAt - input.now,
          waiting: { reason: 'BackOff', message: `back-off ${seconds}s restarting container that exited with code ${primary.exitCode ?? 'unknown'}` },
        };
      }
      actions.push({ type: 'restart', container: primary, exitCode: primary.exitCode, oomKilled: primary.oomKilled === true });
      return { actions, primary };
    }
  }
}

/** When several own containers exist, keep the one that is furthest along. */
function rank(container: ObservedContainer): number {
  return container.state === 'running' ? 2 : container.state === 'created' ? 1 : 0;
}
