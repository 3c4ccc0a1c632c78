/**
 * The report step: from the plan and what its intents did, the session's memory, its status (written
 * once, guarded by the generation that was read), its events and metrics, and what the queue does
 * next. A failure is reported in status and events first, then thrown so that the queue backs off.
 */
import type { Logger } from 'pino';
import { findCondition, type SessionStatus } from '../../crds/status';
import type { HostInventory } from '../../src/docker/inventory';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, canonicalJson, specHash } from '../../src/model/labels';
import type { Metrics } from '../../src/metrics/registry';
import type { ReconcileOutcome } from '../../src/runtime/controller';
import type { Db } from '../../src/store/db';
import type { EventReason, EventType } from '../../src/store/events';
import { writeStatusFenced, type Fence } from '../../src/store/fencing';
import { writeStatus } from '../../src/store/sessions';
import type { Admission } from './admission';
import { emitEvent, type Execution } from './execute/executor';
import type { HostActivity } from './host-activity';
import type { ImageManager } from './image';
import type { ImageWaitReason } from './image-state';
import type { RolloutClaim } from './image-wiring';
import { isLateOom } from './late-oom';
import type { SessionMemory } from './memory';
import type { Observed, Row } from './observe';
import { CRASH_RESTART_DEFERRAL, LONGEST_REQUEUE_MS, type DeferralReason, type Plan } from './plan';
import { computeStatus } from './status';
import { transitionEvents } from './status-events';
import type { StuckContainers } from './stuck';

/** A failure already written to status and events; thrown only so that the queue backs off. */
export class ReportedFailure extends Error {
  override readonly name = 'ReportedFailure';
}

export interface ReportDeps {
  db: Db;
  inventory: HostInventory;
  metrics: Metrics;
  admission: Admission;
  images: ImageManager;
  activity: HostActivity;
  memory: SessionMemory;
  stuck: StuckContainers;
  /** Written into status.endpoints. */
  advertiseAddress?: string;
  /** This host's lease, in a fleet: status and events are written only while it is current. */
  fence?: Fence;
  /** Why the host is not answering, while it is not (HostUnreachable, HostLost). */
  hostProblem?: () => { reason: string; message: string } | undefined;
  now: () => number;
}

export interface Decision {
  plan: Plan;
  rollout: RolloutClaim;
}

type ImageReport = { waiting?: { reason: ImageWaitReason; message: string }; updatePending?: string };

export class SessionReport {
  constructor(private readonly deps: ReportDeps) {}

  async write(observed: Observed, decision: Decision, execution: Execution, logger: Logger): Promise<ReconcileOutcome> {
    const { key, row } = observed;
    this.remember(observed, decision.plan, execution);
    if (!row || execution.finalized || execution.unplaced) {
      this.deps.memory.forget(key);
      if (execution.failure) throw new ReportedFailure(execution.failure.message);
      return {};
    }
    if (execution.replan) return { requeue: true };
    // A restart that yielded to creates begun while it waited for its turn waits as if the plan had
    // seen them: told in status, counted once, woken when the host is quiet.
    const plan: Plan = execution.yieldedToCreates
      ? { ...decision.plan, waiting: execution.yieldedToCreates, requeueAfterMs: CRASH_RESTART_DEFERRAL.maxMs }
      : decision.plan;
    const own = this.deps.inventory.forSession(key).filter((container) => container.labels[LABELS.uid] === row.uid);
    if (own.length > 0) this.deps.memory.sawContainer(row.uid);
    const lateOom = execution.restartsDone === 0 ? await this.correctLateOom(observed, own, logger) : undefined;
    const image = imageReport(observed, decision, execution);
    const status = this.status(observed, plan, execution, { own, image, lateOom });
    if (canonicalJson(status) !== canonicalJson(row.status)) {
      if (!(await this.writeStatus(row, status))) return { requeue: true };
      this.observeReadiness(row, status);
      await transitionEvents(this.eventDeps(logger), row, status);
    }
    await this.throwFailure(observed, status, execution, image, logger);
    // A deferral that ended without a restart (the container recovered) is counted afresh next time.
    if (!(plan.waiting?.reason === 'BackOff' && plan.waiting.deferred)) this.deps.memory.clearDeferrals(row.uid);
    if (plan.waiting?.reason === 'BackOff') await this.backOffEvent(row, plan.waiting, logger);
    return nextLook(observed, { ...decision, plan }, execution, this.deps.now());
  }

  /**
   * What the intents did, into the controller's memory: the restart made, the room the session no
   * longer holds (claimed room is kept through execution: a stopping container still uses its
   * memory), an image the daemon turned out not to have.
   */
  private remember(observed: Observed, plan: Plan, execution: Execution): void {
    const { key, row, following } = observed;
    if (row && execution.restarted) this.deps.memory.restarted(row.uid, execution.restarted);
    if (execution.failure?.reason === 'ImageNotPresent' && following) this.deps.images.forget(following.image);
    const unschedulable = plan.waiting && 'unschedulable' in plan.waiting;
    if (plan.holdsRoom && !execution.finalized) this.deps.admission.hold(key, observed.memoryBytes);
    else if (!unschedulable) this.deps.admission.release(key);
  }

  private status(
    observed: Observed,
    plan: Plan,
    execution: Execution,
    seen: { own: ObservedContainer[]; image: ImageReport; lateOom?: { code?: number; oomKilled: boolean } },
  ): SessionStatus {
    const row = observed.row!;
    const { own } = seen;
    return computeStatus({
      previous: row.status,
      generation: row.generation,
      spec: observed.spec!,
      deletionRequested: row.deletionRequestedAt !== null,
      host: this.deps.inventory.host.name,
      container: plan.primary ? (own.find((container) => container.id === plan.primary!.id) ?? own[0]) : own[0],
      waiting: plan.waiting,
      failure: execution.failure,
      restartsDone: execution.restartsDone,
      lastExit: execution.lastExit ?? seen.lateOom,
      containerHash: containerHash(observed, execution),
      image: seen.image,
      restartLimitExceeded: plan.restartLimitExceeded,
      advertiseAddress: this.deps.advertiseAddress,
      stuck: this.deps.stuck.forSession(observed.key),
      hostProblem: this.deps.hostProblem?.(),
      now: new Date(this.deps.now()),
    });
  }

  /** An invalid spec, a failed intent, a failed pull: reported above, thrown so that the queue backs off. */
  private async throwFailure(
    observed: Observed,
    status: SessionStatus,
    execution: Execution,
    image: ImageReport,
    logger: Logger,
  ): Promise<void> {
    const row = observed.row!;
    if (observed.spec && !observed.spec.ok) {
      const message = findCondition(status, 'Valid')!.message;
      await this.event(row, 'Warning', 'InvalidSpec', message, logger);
      throw new ReportedFailure('the spec is invalid');
    }
    if (execution.failure) throw new ReportedFailure(execution.failure.message);
    // A failed pull (or an image that may not be pulled) is a failure like any other: the queue backs
    // off on top of the per-image pull back-off, and the error counts. A pull in progress is not.
    if (image.waiting && image.waiting.reason !== 'ImagePulling') throw new ReportedFailure(image.waiting.message);
  }

  /**
   * One event per backoff: a due restart deferred for a busy host or for its turn is the same wait,
   * told in status.
   */
  private async backOffEvent(
    row: Row,
    waiting: { message: string; deferred?: DeferralReason },
    logger: Logger,
  ): Promise<void> {
    if (!waiting.deferred) return this.event(row, 'Warning', 'BackOff', waiting.message, logger);
    this.countDeferral(row, waiting.deferred);
  }

  /**
   * Counts a deferral once per restart and reason, however often the session is looked at while it
   * waits, and has the host wake a session that waits for it to go quiet.
   */
  private countDeferral(row: Row, reason: DeferralReason): void {
    if (reason === 'HostCreating') this.deps.activity.creates.wakeWhenQuiet(row.name);
    if (this.deps.memory.deferred(row.uid, reason)) this.deps.metrics.crashRestartsDeferred.inc({ reason });
  }

  /**
   * The oom event of the exit the last restart followed came after the restart: record that exit as
   * OOMKilled after all (status, an event, the restart counter by reason).
   */
  private async correctLateOom(
    observed: Observed,
    own: ObservedContainer[],
    logger: Logger,
  ): Promise<{ code?: number; oomKilled: boolean } | undefined> {
    const row = observed.row!;
    const lastExit = observed.restarts.lastExit;
    const container = own.find((candidate) => candidate.state === 'running');
    if (!lastExit || !container || !isLateOom(container, lastExit)) return undefined;
    this.deps.memory.correctLastExit(row.uid, { ...lastExit, reason: 'OOMKilled' });
    this.deps.inventory.update(container.id, { oomKilled: false, oomAt: undefined });
    this.deps.metrics.containerRestarts.inc({ reason: 'OOMKilled' });
    const message = `Docker reported after the restart that container ${container.id.slice(0, 12)} had been killed for exceeding its memory limit; its last exit is recorded as OOMKilled`;
    await this.event(row, 'Warning', 'OOMKilled', message, logger);
    logger.info({ containerId: container.id }, 'late oom event; exit recorded as OOMKilled');
    return { code: lastExit.code, oomKilled: true };
  }

  private observeReadiness(row: Row, status: SessionStatus): void {
    const ready = findCondition(status, 'Ready');
    const before = findCondition(row.status, 'Ready');
    const wasReadyAtGeneration = before?.status === 'True' && row.status.observedGeneration === row.generation;
    if (ready?.status === 'True' && !wasReadyAtGeneration) {
      const seconds = (this.deps.now() - row.generationChangedAt.getTime()) / 1000;
      this.deps.metrics.sessionReady.observe(Math.max(0, seconds));
    }
  }

  private eventDeps(logger: Logger) {
    return {
      metrics: this.deps.metrics,
      host: this.deps.inventory.host.name,
      event: (row: Row, type: EventType, reason: EventReason, message: string) =>
        this.event(row, type, reason, message, logger),
    };
  }

  private event(row: Row, type: EventType, reason: EventReason, message: string, logger: Logger): Promise<void> {
    return emitEvent(this.deps.db, logger, row.name, row.uid, type, reason, message, this.deps.fence);
  }

  /** At the generation acted on; in a fleet also only on the placed host, under this host's lease. */
  private writeStatus(row: Row, status: SessionStatus): Promise<boolean> {
    const { db, fence, inventory } = this.deps;
    if (fence) return writeStatusFenced(db, fence, { name: row.name, generation: row.generation, status });
    return writeStatus(db, row.name, row.generation, status, inventory.host.name);
  }
}

/** The hash the session's container must carry, with the token minted just now, if one was. */
function containerHash(observed: Observed, execution: Execution): string | undefined {
  if (!execution.minted || !observed.following) return observed.containerHash;
  return specHash(observed.following, { ...observed.revision, tokenId: execution.minted.tokenId });
}

/** The image side of status: why a create waits for its image, and a rollout turn not given yet. */
function imageReport(observed: Observed, decision: Decision, execution: Execution): ImageReport {
  if (!observed.following) return {};
  const refused = observed.desired?.imageRefused;
  if (refused) return { waiting: refused };
  const waiting = execution.imageWaiting && {
    reason: execution.imageWaiting.reason,
    message: execution.imageWaiting.message,
  };
  return { waiting, updatePending: decision.rollout.updatePending };
}

/** When to look at the session again: the plan's timer, the image's, a new token's expiry. */
function nextLook(observed: Observed, decision: Decision, execution: Execution, now: number): ReconcileOutcome {
  const timers = [decision.plan.requeueAfterMs];
  if (observed.following && !observed.desired?.imageRefused) {
    timers.push(observed.image.nextCheckInMs, execution.imageWaiting?.requeueAfterMs);
    if (decision.rollout.updatePending) timers.push(10_000);
  }
  if (execution.minted) timers.push(Math.min(LONGEST_REQUEUE_MS, execution.minted.expiresAt.getTime() - now));
  const due = timers.filter((ms): ms is number => ms !== undefined);
  return due.length > 0 ? { requeueAfterMs: Math.max(0, Math.min(...due)) } : {};
}
