/**
 * The session planner: a pure function from (desired row, observed containers) to the actions that
 * move the second towards the first. No I/O, no clock, no randomness of its own: everything it needs
 * is in its input, so every branch is unit-tested without Docker.
 */
import type { SessionSpec, Validation } from '../../crds/session';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, containerName, isStuckContainerName, specHash } from '../../src/model/labels';
import type { AdmissionResult, UnschedulableReason } from './admission';
import type { RecordedExit } from './late-oom';
import { lifetimeCheck, type ExpireReason, type LifetimeInput } from './lifetime';

export type { ExpireReason };

export interface DesiredSession extends LifetimeInput {
  name: string;
  uid: string;
  generation: number;
  deletionRequested: boolean;
  hasFinalizer: boolean;
  spec: Validation<SessionSpec>;
  /** The spec hash the container must carry, token and restart revision included; specHash(spec) when absent. */
  containerHash?: string;
  /** Restarts already made at this generation: the restart budget's count. */
  restartCount?: number;
  /** When the access token expires (ms epoch), so that rotation is a timer. */
  tokenExpiresAt?: number;
  /**
   * The tag the session follows (imageUpdatePolicy: Poll) points at this digest on the host, and
   * whether the rollout would give the session its turn now: a container made from another digest
   * is then recreated for the image.
   */
  imageRollout?: { digest: string; granted: boolean };
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
  /** What the host can give this session, read before planning; absent: room, not busy, a free turn. */
  host?: HostFacts;
}

/**
 * The host's side of the snapshot. Each is read without changing anything; the reconciler claims
 * what the plan used (room, a restart turn) right after planning, before any await, so that no
 * other session's plan can be given the same.
 */
export interface HostFacts {
  /** Whether the session would be admitted if it asked for room now (used only for a session that holds none). */
  admission: AdmissionResult;
  /** The host is creating other sessions' containers: a crash loop's due restart waits (see restartWait). */
  busyCreating: boolean;
  /** 0, or how long until the host's next free crash-restart turn. */
  crashRestartTurnInMs: number;
}

export type RemoveReason = 'orphan' | 'stale-uid' | 'duplicate' | 'spec-changed' | 'deleting' | 'dead';
export type StopReason = 'Requested' | 'IdleTimeout' | 'RestartLimitExceeded';

export type Action =
  | { type: 'addFinalizer' }
  | { type: 'remove'; container: ObservedContainer; reason: RemoveReason }
  | { type: 'create'; start: boolean; replaced?: ObservedContainer; forImage?: boolean }
  | { type: 'start'; container: ObservedContainer }
  | {
      type: 'restart';
      container: ObservedContainer;
      exitCode?: number;
      oomKilled: boolean;
      unhealthy?: boolean;
      crashLoop?: CrashLoopRestart;
    }
  | { type: 'stop'; container: ObservedContainer; reason: StopReason }
  | { type: 'observePorts'; container: ObservedContainer }
  | { type: 'expire'; reason: ExpireReason; message: string }
  | { type: 'removeVolumes'; volumes: string[] }
  | { type: 'finalize' };

/**
 * A crash loop's restart goes behind other calls; 'yield' gives it up if creates begin before its
 * turn, 'overdue' (waited its longest for a busy host) does not.
 */
export type CrashLoopRestart = 'yield' | 'overdue';
/** Why a crash loop's due restart waits: the host is creating other sessions, or it waits for its turn. */
export type DeferralReason = 'HostCreating' | 'Paced';

export type Waiting =
  | { reason: 'BackOff' | 'Transitioning' | 'IdleTimeout'; message: string; deferred?: DeferralReason }
  | { reason: UnschedulableReason; message: string; unschedulable: true };

export interface Plan {
  actions: Action[];
  requeueAfterMs?: number;
  waiting?: Waiting;
  /** The container the session is using once the actions are done (absent if none). */
  primary?: ObservedContainer;
  /** Set when the restart budget is spent: the session is Failed until its spec changes or a restart is requested. */
  restartLimitExceeded?: { message: string };
  /** Whether the session runs, or is about to, and so holds room on its host. */
  holdsRoom: boolean;
}

export const CRASH_BACKOFF = { baseMs: 1_000, maxMs: 300_000, stableAfterMs: 600_000 };
/**
 * A crash loop's restart that is due waits while its host creates other sessions (the host wakes it
 * when it goes quiet), but never more than maxMs past its due time, so that a host that is always
 * busy still restarts it.
 */
export const CRASH_RESTART_DEFERRAL = { maxMs: 30_000 };
export const STOP_TIMEOUT_SECONDS = 10;
/** Far deadlines (lifetimes, token expiry) are looked at again at least this often. */
export const LONGEST_REQUEUE_MS = 3_600_000;

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

function shouldRestart(spec: SessionSpec, container: ObservedContainer): boolean {
  if (spec.restartPolicy === 'Always') return true;
  if (spec.restartPolicy === 'OnFailure') return (container.exitCode ?? 1) !== 0 || container.oomKilled === true;
  return false;
}

/**
 * Only containers labelled with an installation may be removed for not matching a row: the
 * inventory holds no other installation's, and one made before the label existed may belong to
 * another installation sharing the daemon. Such a container is still adopted by the row whose uid it carries.
 */
function removable(container: ObservedContainer): boolean {
  return container.labels[LABELS.installation] !== undefined;
}

export function plan(input: PlanInput): Plan {
  const { desired } = input;
  // Containers set aside as stuck are no longer the session's: their removal is retried on its own.
  const containers = input.containers.filter((container) => !isStuckContainerName(container.name));
  if (!desired) {
    return {
      actions: containers.filter(removable).map((container) => ({ type: 'remove', container, reason: 'orphan' })),
      holdsRoom: false,
    };
  }
  // A container of an earlier row that had the same name is not ours to keep, whatever else holds.
  const stale = containers.filter((container) => container.labels[LABELS.uid] !== desired.uid);
  const own = containers.filter((container) => container.labels[LABELS.uid] === desired.uid);
  const actions: Action[] = stale
    .filter(removable)
    .map((container) => ({ type: 'remove', container, reason: 'stale-uid' }));

  if (desired.deletionRequested) {
    actions.push(...own.map((container) => ({ type: 'remove' as const, container, reason: 'deleting' as const })));
    // Only a valid spec can say Delete: with an unreadable one, the data is kept.
    const spec = desired.spec.ok ? desired.spec.value : undefined;
    const named = (spec?.volumes ?? []).filter((volume) => volume.hostPath === undefined).map((volume) => volume.name);
    if (spec?.volumeReclaimPolicy === 'Delete' && named.length > 0)
      actions.push({ type: 'removeVolumes', volumes: named });
    if (desired.hasFinalizer) actions.push({ type: 'finalize' });
    return { actions, holdsRoom: false };
  }
  // An invalid spec changes nothing: the last good container keeps running until the spec is fixed.
  if (!desired.spec.ok) {
    const primary = own[0];
    return { actions, primary, holdsRoom: primary?.state === 'running' };
  }
  const spec = desired.spec.value;
  const lifetime = lifetimeCheck(spec, desired, input.now);
  if (lifetime.expire) {
    actions.push({ type: 'expire', ...lifetime.expire });
    return { actions, primary: own[0], holdsRoom: false };
  }
  const timers = [lifetime.nextCheckAt, desired.tokenExpiresAt].filter((at): at is number => at !== undefined);
  // A dead container can be neither started nor kept: it goes (or is set aside), and a fresh one
  // follows. So does one a list shows stuck in removal (a removal a daemon restart cut short).
  const dead = own.filter((container) => container.state === 'dead' || container.state === 'removing');
  actions.push(...dead.map((container) => ({ type: 'remove' as const, container, reason: 'dead' as const })));
  const alive = own.filter((container) => container.state !== 'dead' && container.state !== 'removing');
  const result = planContainer(input, spec, alive, actions, lifetime.idle);
  // Far deadlines are looked at again hourly, so that a clock step or a lost timer heals by itself.
  const nextTimer =
    timers.length > 0 ? Math.min(LONGEST_REQUEUE_MS, Math.max(0, Math.min(...timers) - input.now)) : undefined;
  if (nextTimer !== undefined && (result.requeueAfterMs === undefined || nextTimer < result.requeueAfterMs))
    result.requeueAfterMs = nextTimer;
  return result;
}

function planContainer(
  input: PlanInput,
  spec: SessionSpec,
  own: ObservedContainer[],
  actions: Action[],
  idle: { message: string } | undefined,
): Plan {
  const desired = input.desired!;
  const name = containerName(input.name);
  const [primary, ...duplicates] = [...own].sort(
    (a, b) => Number(b.name === name) - Number(a.name === name) || rank(b) - rank(a),
  );
  actions.push(
    ...duplicates.map((container) => ({ type: 'remove' as const, container, reason: 'duplicate' as const })),
  );

  const wantRunning = spec.state === 'Running' && idle === undefined;
  const idleWaiting: Waiting | undefined = idle ? { reason: 'IdleTimeout', message: idle.message } : undefined;
  const admit = (): Plan | undefined => {
    const decision = input.host?.admission ?? { admitted: true };
    if (decision.admitted) return undefined;
    return {
      actions,
      primary,
      holdsRoom: false,
      waiting: { reason: decision.reason, message: decision.message, unschedulable: true },
    };
  };

  const hash = desired.containerHash ?? specHash(spec);
  const forImage =
    primary !== undefined &&
    primary.labels[LABELS.specHash] === hash &&
    imageMoved(primary, desired) &&
    desired.imageRollout?.granted === true;
  if (!primary || primary.labels[LABELS.specHash] !== hash || forImage) {
    // A session that runs keeps its room across a recreate; only a new one waits for room.
    if (wantRunning && primary?.state !== 'running') {
      const refused = admit();
      if (refused) return refused;
    }
    if (!desired.hasFinalizer) actions.push({ type: 'addFinalizer' });
    actions.push({ type: 'create', start: wantRunning, replaced: primary, ...(forImage ? { forImage } : {}) });
    return { actions, holdsRoom: wantRunning, waiting: idleWaiting };
  }

  const budget = restartBudget(spec, desired.restartCount ?? 0, input.name);
  switch (primary.state) {
    case 'running':
    case 'paused':
      if (!wantRunning) {
        actions.push({ type: 'stop', container: primary, reason: idle ? 'IdleTimeout' : 'Requested' });
        return { actions, primary, holdsRoom: false, waiting: idleWaiting };
      }
      if (primary.health === 'unhealthy' && primary.state === 'running') {
        if (budget.spent) {
          actions.push({ type: 'stop', container: primary, reason: 'RestartLimitExceeded' });
          return { actions, primary, holdsRoom: false, restartLimitExceeded: { message: budget.message } };
        }
        const decision = restartWait(input, primary, 'the container is unhealthy');
        if ('wait' in decision) return { ...decision.wait, actions, primary, holdsRoom: true };
        actions.push({ type: 'restart', container: primary, oomKilled: false, unhealthy: true, ...decision.go });
        return { actions, primary, holdsRoom: true };
      }
      if (primary.state === 'running' && spec.ports.length > 0 && primary.ports === undefined)
        actions.push({ type: 'observePorts', container: primary });
      return { actions, primary, holdsRoom: true };
    case 'created': {
      if (!wantRunning) return { actions, primary, holdsRoom: false, waiting: idleWaiting };
      const refused = admit();
      if (refused) return refused;
      actions.push({ type: 'start', container: primary });
      return { actions, primary, holdsRoom: true };
    }
    case 'restarting':
    case 'removing':
      return {
        actions,
        primary,
        holdsRoom: true,
        requeueAfterMs: 1_000,
        waiting: { reason: 'Transitioning', message: `container is ${primary.state}` },
      };
    case 'exited':
    case 'dead': {
      // (planContainer never sees a dead container; the case keeps the switch exhaustive.)
      if (!wantRunning || !shouldRestart(spec, primary))
        return { actions, primary, holdsRoom: false, waiting: idleWaiting };
      if (budget.spent)
        return { actions, primary, holdsRoom: false, restartLimitExceeded: { message: budget.message } };
      const decision = restartWait(input, primary, `the container exited with code ${primary.exitCode ?? 'unknown'}`);
      if ('wait' in decision) return { ...decision.wait, actions, primary, holdsRoom: true };
      const refused = admit();
      if (refused) return refused;
      actions.push({
        type: 'restart',
        container: primary,
        exitCode: primary.exitCode,
        oomKilled: primary.oomKilled === true,
        ...decision.go,
      });
      return { actions, primary, holdsRoom: true };
    }
  }
}

function restartBudget(spec: SessionSpec, restartCount: number, session: string): { spent: boolean; message: string } {
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
function restartWait(
  input: PlanInput,
  primary: ObservedContainer,
  why: string,
): { wait: Pick<Plan, 'requeueAfterMs' | 'waiting'> } | { go: { crashLoop?: CrashLoopRestart } } {
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
        waiting: {
          reason: 'BackOff',
          message: `back-off restarting: ${why}; the restart waits while the host creates other sessions`,
          deferred: 'HostCreating',
        },
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

/** The container was made from another digest than the one the followed tag points at now. */
export function imageMoved(container: ObservedContainer, desired: DesiredSession): boolean {
  const label = container.labels[LABELS.imageDigest];
  return label !== undefined && desired.imageRollout !== undefined && label !== desired.imageRollout.digest;
}

/** When several own containers exist, keep the one that is furthest along. */
function rank(container: ObservedContainer): number {
  return container.state === 'running' ? 2 : container.state === 'created' ? 1 : 0;
}
