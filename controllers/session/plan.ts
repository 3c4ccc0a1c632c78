/**
 * The session planner: a pure function from (desired row, observed containers) to the actions that
 * move the second towards the first. No I/O, no clock, no randomness of its own: everything it needs
 * is in its input, so every branch is unit-tested without Docker.
 */
import type { SessionSpec, Validation } from '../../crds/session';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, containerName, isStuckContainerName, specHash } from '../../src/model/labels';
import type { AdmissionResult, UnschedulableReason } from './admission';
import { lifetimeCheck, type ExpireReason, type LifetimeInput } from './lifetime';
import {
  nextBackoff,
  restartCause,
  restartBudget,
  restartWait,
  shouldRestart,
  type CrashLoopRestart,
  type DeferralReason,
  type RestartHistory,
} from './plan-restarts';

export {
  CRASH_BACKOFF,
  CRASH_RESTART_DEFERRAL,
  crashBackoffMs,
  ranStably,
  type CrashLoopRestart,
  type DeferralReason,
  type RestartHistory,
} from './plan-restarts';

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
  /** The image comes from a registry the operator does not allow: nothing is created from it. */
  imageRefused?: { reason: 'ImageNotAllowed'; message: string };
  /** The access token as observed: whether one must be minted (and why) or the stored one revoked. */
  token?: TokenFacts;
  /** The session has had a container (remembered, or named in status): a missing one is drift. */
  hadContainer?: boolean;
  /**
   * The container the controller last reported stopped on purpose (idle timeout, spec.state):
   * when the session should run again it is started, whatever its restart policy, with no crash
   * backoff and no restart counted, as `docker compose start` would.
   */
  stoppedContainerId?: string;
  /** A drain asked to move the session off this host: its container goes, then so does its placement. */
  evicting?: { reason: string };
}

export type TokenMintReason = 'initial' | 'expired' | 'requested';

/**
 * mint: the session has no valid token (none yet, a writer deleted it to ask for a rotation, it
 * expired, or it belongs to an earlier row of the same name); revoke: the spec no longer asks for one.
 */
export interface TokenFacts {
  mint?: TokenMintReason;
  revoke?: boolean;
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

export type RemoveReason = 'orphan' | 'stale-uid' | 'duplicate' | 'spec-changed' | 'deleting' | 'dead' | 'evicting';
export type StopReason = 'Requested' | 'IdleTimeout' | 'RestartLimitExceeded';

export type Action =
  | { type: 'addFinalizer' }
  | { type: 'remove'; container: ObservedContainer; reason: RemoveReason }
  | { type: 'create'; start: boolean; replaced?: ObservedContainer; forImage?: boolean; missing?: boolean }
  | { type: 'start'; container: ObservedContainer }
  | {
      type: 'restart';
      container: ObservedContainer;
      exitCode?: number;
      oomKilled: boolean;
      unhealthy?: boolean;
      crashLoop?: CrashLoopRestart;
      /** The crash backoff this restart starts: the count it makes and the spread drawn for it. */
      backoff: { consecutive: number; jitter: number };
    }
  | { type: 'stop'; container: ObservedContainer; reason: StopReason }
  | { type: 'observePorts'; container: ObservedContainer }
  | { type: 'expire'; reason: ExpireReason; message: string }
  | { type: 'removeVolumes'; volumes: string[] }
  | { type: 'mintToken'; reason: TokenMintReason }
  | { type: 'revokeToken' }
  | { type: 'finalize' }
  /** Leave this host (after its containers are removed), so that the session is placed on another. */
  | { type: 'unplace'; reason: string };

export type Waiting =
  | { reason: 'BackOff' | 'Transitioning' | 'IdleTimeout' | 'Evicting'; message: string; deferred?: DeferralReason }
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

export const STOP_TIMEOUT_SECONDS = 10;
/** Far deadlines (lifetimes, token expiry) are looked at again at least this often. */
export const LONGEST_REQUEUE_MS = 3_600_000;

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

  if (desired.deletionRequested || desired.evicting) return planLeaving(desired, own, actions);
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
  // A token about to be minted has its own expiry; the old one's would only wake the session at once.
  const tokenExpiresAt = desired.token?.mint ? undefined : desired.tokenExpiresAt;
  const timers = [lifetime.nextCheckAt, tokenExpiresAt].filter((at): at is number => at !== undefined);
  // The token comes first, before any removal can fail: its id is part of the container's hash, so a
  // new one replaces the container.
  if (desired.token?.mint) actions.unshift({ type: 'mintToken', reason: desired.token.mint });
  if (desired.token?.revoke) actions.unshift({ type: 'revokeToken' });
  // A dead container can be neither started nor kept: it goes (or is set aside), and a fresh one
  // follows. So does one a list shows stuck in removal (a removal a daemon restart cut short).
  const dead = own.filter((container) => container.state === 'dead' || container.state === 'removing');
  actions.push(...dead.map((container) => ({ type: 'remove' as const, container, reason: 'dead' as const })));
  const alive = own.filter((container) => container.state !== 'dead' && container.state !== 'removing');
  const result = planContainer({ input, spec, actions, idle: lifetime.idle }, alive);
  // Far deadlines are looked at again hourly, so that a clock step or a lost timer heals by itself.
  const nextTimer =
    timers.length > 0 ? Math.min(LONGEST_REQUEUE_MS, Math.max(0, Math.min(...timers) - input.now)) : undefined;
  if (nextTimer !== undefined && (result.requeueAfterMs === undefined || nextTimer < result.requeueAfterMs))
    result.requeueAfterMs = nextTimer;
  return result;
}

/** Deleted, or moving to another host: the containers go (and, for a deletion, what the spec says goes with them). */
function planLeaving(desired: DesiredSession, own: ObservedContainer[], actions: Action[]): Plan {
  if (!desired.deletionRequested && desired.evicting) {
    // The old copy is gone before the session can be placed anywhere else: never two at once.
    actions.push(...own.map((container) => ({ type: 'remove' as const, container, reason: 'evicting' as const })));
    actions.push({ type: 'unplace', reason: desired.evicting.reason });
    const message = `moving to another host (${desired.evicting.reason}): the container here is removed first`;
    return { actions, holdsRoom: false, waiting: { reason: 'Evicting', message } };
  }
  actions.push(...own.map((container) => ({ type: 'remove' as const, container, reason: 'deleting' as const })));
  // Only a valid spec can say Delete: with an unreadable one, the data is kept.
  const spec = desired.spec.ok ? desired.spec.value : undefined;
  const named = (spec?.volumes ?? []).filter((volume) => volume.hostPath === undefined).map((volume) => volume.name);
  if (spec?.volumeReclaimPolicy === 'Delete' && named.length > 0)
    actions.push({ type: 'removeVolumes', volumes: named });
  if (desired.hasFinalizer) actions.push({ type: 'finalize' });
  return { actions, holdsRoom: false };
}

/** What every branch of the container's plan shares: the input, the valid spec, the actions so far. */
interface Planning {
  input: PlanInput;
  spec: SessionSpec;
  actions: Action[];
  /** The idle timeout fired: the session is stopped, not running. */
  idle?: { message: string };
}

function planContainer(planning: Planning, own: ObservedContainer[]): Plan {
  const { input, spec, actions, idle } = planning;
  const desired = input.desired!;
  const name = containerName(input.name);
  const [primary, ...duplicates] = [...own].sort(
    (a, b) => Number(b.name === name) - Number(a.name === name) || rank(b) - rank(a),
  );
  actions.push(
    ...duplicates.map((container) => ({ type: 'remove' as const, container, reason: 'duplicate' as const })),
  );
  const hash = desired.containerHash ?? specHash(spec);
  const forImage =
    primary !== undefined &&
    primary.labels[LABELS.specHash] === hash &&
    imageMoved(primary, desired) &&
    desired.imageRollout?.granted === true;
  const outdated = desired.token?.mint !== undefined || primary?.labels[LABELS.specHash] !== hash;
  if (!primary || outdated || forImage) return planCreate(planning, primary, forImage);
  const wantRunning = spec.state === 'Running' && idle === undefined;
  switch (primary.state) {
    case 'running':
    case 'paused':
      return wantRunning ? planRunning(planning, primary) : planStop(planning, primary);
    case 'created':
      return wantRunning
        ? planStart(planning, primary)
        : { actions, primary, holdsRoom: false, waiting: idleWaiting(idle) };
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
    case 'dead':
      // (planContainer never sees a dead container; the case keeps the switch exhaustive.)
      return planExited(planning, primary, wantRunning);
  }
}

function idleWaiting(idle: { message: string } | undefined): Waiting | undefined {
  return idle ? { reason: 'IdleTimeout', message: idle.message } : undefined;
}

/** The host has no room for the session (the plan waits, Scheduled=False), or undefined when it has. */
function admissionRefusal({ input, actions }: Planning, primary: ObservedContainer | undefined): Plan | undefined {
  const decision = input.host?.admission ?? { admitted: true };
  if (decision.admitted) return undefined;
  return {
    actions,
    primary,
    holdsRoom: false,
    waiting: { reason: decision.reason, message: decision.message, unschedulable: true },
  };
}

/** No container, or one made from another spec, token or image: make the one the spec describes. */
function planCreate(planning: Planning, primary: ObservedContainer | undefined, forImage: boolean): Plan {
  const { input, spec, actions, idle } = planning;
  const desired = input.desired!;
  const wantRunning = spec.state === 'Running' && idle === undefined;
  // Credentials and digests go only to allowed registries: the old container (if any) runs on.
  if (desired.imageRefused)
    return { actions, primary, holdsRoom: primary?.state === 'running' && !idle, waiting: idleWaiting(idle) };
  // A session that runs keeps its room across a recreate; only a new one waits for room.
  if (wantRunning && primary?.state !== 'running') {
    const refused = admissionRefusal(planning, primary);
    if (refused) return refused;
  }
  if (!desired.hasFinalizer) actions.push({ type: 'addFinalizer' });
  const missing = !primary && desired.hadContainer === true;
  actions.push({
    type: 'create',
    start: wantRunning,
    replaced: primary,
    ...(forImage ? { forImage } : {}),
    ...(missing ? { missing } : {}),
  });
  return { actions, holdsRoom: wantRunning, waiting: idleWaiting(idle) };
}

/** Stopped by spec.state or by the idle timeout. */
function planStop({ actions, idle }: Planning, primary: ObservedContainer): Plan {
  actions.push({ type: 'stop', container: primary, reason: idle ? 'IdleTimeout' : 'Requested' });
  return { actions, primary, holdsRoom: false, waiting: idleWaiting(idle) };
}

/** A running container that should run: restart it when unhealthy, learn its ports when unknown. */
function planRunning(planning: Planning, primary: ObservedContainer): Plan {
  const { input, spec, actions } = planning;
  if (primary.health === 'unhealthy' && primary.state === 'running') {
    const budget = restartBudget(spec, input.desired!.restartCount ?? 0, input.name);
    if (budget.spent) {
      actions.push({ type: 'stop', container: primary, reason: 'RestartLimitExceeded' });
      return { actions, primary, holdsRoom: false, restartLimitExceeded: { message: budget.message } };
    }
    const decision = restartWait(input, primary, restartCause(undefined, true));
    if ('wait' in decision) return { ...decision.wait, actions, primary, holdsRoom: true };
    actions.push({
      type: 'restart',
      container: primary,
      oomKilled: false,
      unhealthy: true,
      ...decision.go,
      backoff: nextBackoff(input, primary),
    });
    return { actions, primary, holdsRoom: true };
  }
  if (primary.state === 'running' && spec.ports.length > 0 && primary.ports === undefined)
    actions.push({ type: 'observePorts', container: primary });
  return { actions, primary, holdsRoom: true };
}

/** A container never started, or stopped on purpose: start it once the host has room. */
function planStart(planning: Planning, primary: ObservedContainer): Plan {
  const refused = admissionRefusal(planning, primary);
  if (refused) return refused;
  planning.actions.push({ type: 'start', container: primary });
  return { actions: planning.actions, primary, holdsRoom: true };
}

/** An exited container: restarted when its policy says so, within its budget and backoff. */
function planExited(planning: Planning, primary: ObservedContainer, wantRunning: boolean): Plan {
  const { input, spec, actions, idle } = planning;
  if (wantRunning && primary.id === input.desired!.stoppedContainerId) return planStart(planning, primary);
  if (!wantRunning || !shouldRestart(spec, primary))
    return { actions, primary, holdsRoom: false, waiting: idleWaiting(idle) };
  const budget = restartBudget(spec, input.desired!.restartCount ?? 0, input.name);
  if (budget.spent) return { actions, primary, holdsRoom: false, restartLimitExceeded: { message: budget.message } };
  const decision = restartWait(input, primary, restartCause(primary.exitCode, false));
  if ('wait' in decision) return { ...decision.wait, actions, primary, holdsRoom: true };
  const refused = admissionRefusal(planning, primary);
  if (refused) return refused;
  actions.push({
    type: 'restart',
    container: primary,
    exitCode: primary.exitCode,
    oomKilled: primary.oomKilled === true,
    ...decision.go,
    backoff: nextBackoff(input, primary),
  });
  return { actions, primary, holdsRoom: true };
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
