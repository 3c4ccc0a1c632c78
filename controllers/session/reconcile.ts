/**
 * The session reconciler: read the row and the inventory, plan, execute the plan against Docker,
 * then write what was observed back as status, guarded by the generation that was read.
 * A failed step is reported in status and events first, then thrown so the queue backs off.
 */
import type { Logger } from 'pino';
import { validateSpec, type SessionSpec, type Validation } from '../../crds/session';
import type { SessionStatus } from '../../crds/status';
import { findCondition } from '../../crds/status';
import type { ContainerDefaults } from '../../src/docker/container-config';
import { effectiveMemoryBytes } from '../../src/docker/container-config';
import type { HostInventory } from '../../src/docker/inventory';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, canonicalJson, specHash, type ContainerRevision } from '../../src/model/labels';
import type { Metrics } from '../../src/metrics/registry';
import type { ReconcileContext, ReconcileOutcome } from '../../src/runtime/controller';
import type { Db } from '../../src/store/db';
import type { EventReason, EventType } from '../../src/store/events';
import {
  CONTAINER_FINALIZER,
  getSession,
  writeStatus,
  type SessionRow,
  type SessionTokenInfo,
} from '../../src/store/sessions';
import { deleteToken, mintToken } from '../../src/store/tokens';
import { ActionExecutor, emitEvent } from './actions';
import type { Admission } from './admission';
import type { ImageManager } from './image';
import {
  claimRollout,
  ensureImageForCreate,
  observeImage,
  rolloutFacts,
  type ImageFacts,
  type ImageOutcome,
} from './image-wiring';
import {
  CRASH_RESTART_DEFERRAL,
  plan,
  type DeferralReason,
  type DesiredSession,
  type HostFacts,
  type Plan,
  type RestartHistory,
} from './plan';
import { isLateOom } from './late-oom';
import { egressProblems, hostPolicyProblems } from './policy';
import { ceilingProblems, type Ceilings } from './ceilings';
import type { ImageRollout } from './rollout';
import { computeStatus } from './status';
import type { HostActivity } from './host-activity';
import type { StuckContainers } from './stuck';

export interface SessionReconcilerOptions {
  db: Db;
  inventory: HostInventory;
  metrics: Metrics;
  defaults: ContainerDefaults;
  admission: Admission;
  images: ImageManager;
  rollout: ImageRollout;
  stuck: StuckContainers;
  /** The host's create activity and crash-restart turns (pacing policy). */
  activity: HostActivity;
  /** Host directories spec.volumes[].hostPath may bind-mount. */
  allowedHostPaths?: string[];
  /** The operator's per-session maximums; none when unset (unit tests). */
  ceilings?: Ceilings;
  /** Registries images may come from (SESSIONCTL_ALLOWED_REGISTRIES); any when empty. */
  allowedRegistries?: string[];
  /** Written into status.endpoints. */
  advertiseAddress?: string;
  now?: () => number;
  random?: () => number;
}

/** A failure already written to status and events; thrown only so that the queue backs off. */
export class ReportedFailure extends Error {
  override readonly name = 'ReportedFailure';
}

type Row = SessionRow & { token?: SessionTokenInfo };

export class SessionReconciler {
  private readonly restarts = new Map<string, RestartHistory>();
  /** Uids that have had a container, so that a vanished one counts as drift even if status lost its id. */
  private readonly hadContainer = new Set<string>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly executor: ActionExecutor;

  constructor(private readonly options: SessionReconcilerOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.executor = new ActionExecutor({
      db: options.db,
      inventory: options.inventory,
      metrics: options.metrics,
      defaults: options.defaults,
      restarts: this.restarts,
      hadContainer: this.hadContainer,
      stuck: options.stuck,
      activity: options.activity,
      now: this.now,
      random: this.random,
    });
  }

  readonly reconcile = async ({ key, logger }: ReconcileContext): Promise<ReconcileOutcome> => {
    const { db, inventory, admission } = this.options;
    const row = await getSession(db, key);
    // A spec change or a restart request starts a fresh crash backoff, as it renews the restart budget.
    if (row && this.restarts.get(key)?.generation !== row.generation) this.restarts.delete(key);
    const spec = row ? this.validate(row.spec) : undefined;
    const valid = spec?.ok ? spec.value : undefined;
    const revision: ContainerRevision = { restartRequestedAt: row?.restartRequestedAt?.toISOString() };
    if (row && !row.deletionRequestedAt) await this.syncToken(row, valid, revision, logger);
    const containerHash = valid ? specHash(valid, revision) : undefined;
    const memoryBytes = valid ? (effectiveMemoryBytes(valid, this.options.defaults) ?? 0) : 0;

    const desired = row && spec && this.desiredSession(row, spec, containerHash);
    const following = row !== undefined && valid !== undefined && !row.deletionRequestedAt;
    const imageFacts: ImageFacts = following
      ? await observeImage(this.options.images, this.options.rollout, {
          key,
          spec: valid,
          containers: inventory.forSession(key),
          allowedRegistries: this.options.allowedRegistries,
        })
      : this.unfollow(key);

    // From the snapshot to the claims, no await: what the plan was shown is still true when it is claimed.
    let result = plan({
      name: key,
      desired: desired && {
        ...desired,
        imageRollout: following
          ? rolloutFacts(this.options.rollout, { key, spec: valid, facts: imageFacts })
          : undefined,
      },
      containers: inventory.forSession(key),
      restarts: this.restarts.get(key) ?? { consecutive: 0 },
      now: this.now(),
      jitter: this.random(),
      host: this.hostFacts(key, row, memoryBytes),
    });
    this.claimWhatThePlanUses(key, row, result, memoryBytes);
    const claimed = following
      ? claimRollout(this.options.rollout, { key, spec: valid, plan: result, facts: imageFacts })
      : {};

    let image: ImageOutcome | undefined;
    if (following) {
      image = await ensureImageForCreate(this.options.images, {
        key,
        spec: valid,
        plan: result,
        facts: imageFacts,
        claimed,
        allowedRegistries: this.options.allowedRegistries,
      });
      result = image.plan;
    }

    // The whole spec at debug level, for "why did it do that?"; the logger redacts spec.env.
    logger.debug(
      {
        generation: row?.generation,
        spec: row?.spec,
        actions: result.actions.map((action) => action.type),
        waiting: result.waiting,
      },
      'planned',
    );
    const restartCount = row && row.status.observedGeneration === row.generation ? (row.status.restartCount ?? 0) : 0;
    const execution = await this.executor.execute(
      { key, row, spec: valid, revision, restartCount, logger, imageDigest: image?.digest, imageBatch: image?.batch },
      result.actions,
    );
    if (execution.failure?.reason === 'ImageNotPresent' && valid) this.options.images.forget(valid.image);
    const unschedulable = result.waiting && 'unschedulable' in result.waiting;
    if (result.holdsRoom && !execution.finalized) admission.hold(key, memoryBytes);
    else if (!unschedulable) admission.release(key);

    if (!row || execution.finalized) {
      this.restarts.delete(key);
      if (row) this.hadContainer.delete(row.uid);
      if (execution.failure) throw new ReportedFailure(execution.failure.message);
      return {};
    }
    if (execution.replan) return { requeue: true };
    if (execution.yieldedToCreates) {
      this.countDeferral(key, 'HostCreating');
      return { requeueAfterMs: CRASH_RESTART_DEFERRAL.maxMs };
    }

    const own = inventory.forSession(key).filter((container) => container.labels[LABELS.uid] === row.uid);
    if (own.length > 0) this.hadContainer.add(row.uid);
    const lateOom = execution.restartsDone === 0 ? await this.correctLateOom(key, row, own, logger) : undefined;
    const status = computeStatus({
      previous: row.status,
      generation: row.generation,
      spec: spec!,
      deletionRequested: row.deletionRequestedAt !== null,
      host: inventory.host.name,
      container: result.primary ? (own.find((container) => container.id === result.primary!.id) ?? own[0]) : own[0],
      waiting: result.waiting,
      failure: execution.failure,
      restartsDone: execution.restartsDone,
      lastExit: execution.lastExit ?? lateOom,
      containerHash,
      image: image && { waiting: image.waiting, updatePending: image.updatePending },
      restartLimitExceeded: result.restartLimitExceeded,
      advertiseAddress: this.options.advertiseAddress,
      stuck: this.options.stuck.forSession(key),
      now: new Date(this.now()),
    });
    if (canonicalJson(status) !== canonicalJson(row.status)) {
      const written = await writeStatus(db, row.name, row.generation, status, inventory.host.name);
      if (!written) return { requeue: true };
      this.observeReadiness(row, status);
      await this.transitionEvents(row, status, logger);
    }
    if (spec && !spec.ok) {
      await this.event(row, 'Warning', 'InvalidSpec', findCondition(status, 'Valid')!.message, logger);
      throw new ReportedFailure('the spec is invalid');
    }
    if (execution.failure) throw new ReportedFailure(execution.failure.message);
    // A failed pull (or an image that may not be pulled) is a failure like any other: the queue backs
    // off on top of the per-image pull back-off, and the error counts. A pull in progress is not.
    if (image?.waiting && image.waiting.reason !== 'ImagePulling') throw new ReportedFailure(image.waiting.message);
    // A deferral that ended without a restart (the container recovered) is counted afresh next time.
    if (!(result.waiting?.reason === 'BackOff' && result.waiting.deferred)) delete this.restarts.get(key)?.deferred;
    if (result.waiting?.reason === 'BackOff') await this.backOffEvent(key, row, result.waiting, logger);
    const timers = [result.requeueAfterMs, image?.requeueAfterMs].filter((ms): ms is number => ms !== undefined);
    return timers.length > 0 ? { requeueAfterMs: Math.min(...timers) } : {};
  };

  private desiredSession(row: Row, spec: Validation<SessionSpec>, containerHash: string | undefined): DesiredSession {
    const valid = spec.ok ? spec.value : undefined;
    return {
      name: row.name,
      uid: row.uid,
      generation: row.generation,
      deletionRequested: row.deletionRequestedAt !== null,
      hasFinalizer: row.finalizers.includes(CONTAINER_FINALIZER),
      spec,
      containerHash,
      restartCount: row.status.observedGeneration === row.generation ? (row.status.restartCount ?? 0) : 0,
      tokenExpiresAt: valid?.auth ? row.token?.expiresAt.getTime() : undefined,
      createdAt: row.createdAt.getTime(),
      generationChangedAt: row.generationChangedAt.getTime(),
      lastActivityAt: row.lastActivityAt?.getTime(),
    };
  }

  /** The host's side of the snapshot, read without claiming anything (see claimWhatThePlanUses). */
  private hostFacts(key: string, row: Row | undefined, memoryBytes: number): HostFacts {
    const { admission, activity } = this.options;
    return {
      admission: row ? admission.check(key, row.createdAt.getTime(), memoryBytes) : { admitted: true },
      busyCreating: activity.creates.busyWithOthers(key),
      crashRestartTurnInMs: activity.crashRestarts.peek(key),
    };
  }

  /** A deleted, deleting or invalid session follows no image and holds no rollout place. */
  private unfollow(key: string): ImageFacts {
    this.options.images.release(key);
    this.options.rollout.forget(key);
    return {};
  }

  /**
   * Room on the host and a crash-restart turn, as the plan used them, claimed at once: the snapshot
   * read them without claiming, and no await may come between the two.
   */
  private claimWhatThePlanUses(key: string, row: Row | undefined, result: Plan, memoryBytes: number): void {
    const { admission, activity } = this.options;
    if (row && result.waiting && 'unschedulable' in result.waiting)
      admission.tryAdmit(key, row.createdAt.getTime(), memoryBytes);
    else if (result.holdsRoom) admission.hold(key, memoryBytes);
    const restartsCrashLoop = result.actions.some(
      (action) => action.type === 'restart' && action.crashLoop !== undefined,
    );
    if (restartsCrashLoop || (result.waiting && 'deferred' in result.waiting && result.waiting.deferred === 'Paced'))
      activity.crashRestarts.turnIn(key);
  }

  /** The schema, then what this controller's configuration allows. */
  private validate(raw: unknown): Validation<SessionSpec> {
    const spec = validateSpec(raw);
    if (!spec.ok) return spec;
    const problems = [
      ...hostPolicyProblems(spec.value, this.options.allowedHostPaths ?? []),
      ...egressProblems(spec.value, this.options.defaults.defaultEgress),
      ...(this.options.ceilings ? ceilingProblems(raw, spec.value, this.options.ceilings) : []),
    ];
    return problems.length > 0 ? { ok: false, problems } : spec;
  }

  /**
   * Mints the session's access token when it has none (first start, or a writer deleted it to ask for
   * a rotation), when it expired, or when it belongs to an earlier row of the same name. The token id
   * goes into the container's hash, so a new token recreates the container and the old one stops working.
   */
  private async syncToken(
    row: Row,
    spec: SessionSpec | undefined,
    revision: ContainerRevision,
    logger: Logger,
  ): Promise<void> {
    if (!spec) return;
    if (!spec.auth) {
      if (row.token) await deleteToken(this.options.db, row.name);
      row.token = undefined;
      return;
    }
    const token = row.token?.sessionUid === row.uid ? row.token : undefined;
    const reason = !token
      ? row.status.containerId
        ? 'requested'
        : 'initial'
      : token.expiresAt.getTime() <= this.now()
        ? 'expired'
        : undefined;
    if (reason) {
      const minted = await mintToken(this.options.db, row.name, row.uid, spec.auth.tokenTtlSeconds);
      if (!minted) return;
      row.token = minted;
      this.options.metrics.tokenRotations.inc({ reason });
      const what = {
        initial: 'minted the access token',
        expired: 'rotated the access token: it expired',
        requested: 'rotated the access token, as requested',
      }[reason];
      await this.event(row, 'Normal', 'TokenRotated', `${what}; valid until ${minted.expiresAt.toISOString()}`, logger);
      logger.info({ reason, tokenId: minted.tokenId }, 'access token minted');
    }
    revision.tokenId = row.token?.tokenId;
  }

  /**
   * One event per backoff: a due restart deferred for a busy host or for its turn is the same wait,
   * told in status.
   */
  private async backOffEvent(
    key: string,
    row: Row,
    waiting: { message: string; deferred?: DeferralReason },
    logger: Logger,
  ): Promise<void> {
    if (!waiting.deferred) return this.event(row, 'Warning', 'BackOff', waiting.message, logger);
    this.countDeferral(key, waiting.deferred);
  }

  /**
   * Counts a deferral once per restart and reason, however often the session is looked at while it
   * waits, and has the host wake a session that waits for it to go quiet.
   */
  private countDeferral(key: string, reason: DeferralReason): void {
    if (reason === 'HostCreating') this.options.activity.creates.wakeWhenQuiet(key);
    const history = this.restarts.get(key);
    if (!history || history.deferred?.includes(reason)) return;
    history.deferred = [...(history.deferred ?? []), reason];
    this.options.metrics.crashRestartsDeferred.inc({ reason });
  }

  /**
   * The oom event of the exit the last restart followed came after the restart: record that exit as
   * OOMKilled after all (status, an event, the restart counter by reason).
   */
  private async correctLateOom(
    key: string,
    row: Row,
    own: ObservedContainer[],
    logger: Logger,
  ): Promise<{ code?: number; oomKilled: boolean } | undefined> {
    const history = this.restarts.get(key);
    const container = own.find((candidate) => candidate.state === 'running');
    if (!history?.lastExit || !container || !isLateOom(container, history.lastExit)) return undefined;
    history.lastExit = { ...history.lastExit, reason: 'OOMKilled' };
    this.options.inventory.update(container.id, { oomKilled: false, oomAt: undefined });
    this.options.metrics.containerRestarts.inc({ reason: 'OOMKilled' });
    const message = `Docker reported after the restart that container ${container.id.slice(0, 12)} had been killed for exceeding its memory limit; its last exit is recorded as OOMKilled`;
    await this.event(row, 'Warning', 'OOMKilled', message, logger);
    logger.info({ containerId: container.id }, 'late oom event; exit recorded as OOMKilled');
    return { code: history.lastExit.code, oomKilled: true };
  }

  /** Events for conditions that just changed: scheduling and the restart budget. */
  private async transitionEvents(row: Row, status: SessionStatus, logger: Logger): Promise<void> {
    const scheduled = findCondition(status, 'Scheduled');
    const before = findCondition(row.status, 'Scheduled');
    if (scheduled?.status === 'False' && (before?.status !== 'False' || before.reason !== scheduled.reason)) {
      this.options.metrics.admissionRefusals.inc({ host: this.options.inventory.host.name, reason: scheduled.reason });
      await this.event(row, 'Warning', 'FailedScheduling', scheduled.message, logger);
    } else if (scheduled?.status === 'True' && before?.status === 'False') {
      await this.event(
        row,
        'Normal',
        'Scheduled',
        `room freed on Docker host ${this.options.inventory.host.name}`,
        logger,
      );
    }
    await this.imageEvents(row, status, logger);
    const ready = findCondition(status, 'Ready');
    if (
      ready?.reason === 'RestartLimitExceeded' &&
      findCondition(row.status, 'Ready')?.reason !== 'RestartLimitExceeded'
    ) {
      this.options.metrics.restartLimitExceeded.inc();
      await this.event(row, 'Warning', 'RestartLimitExceeded', ready.message, logger);
    }
  }

  /** Pulling, Pulled, and pull failures, once per change of the ImageReady reason. */
  private async imageEvents(row: Row, status: SessionStatus, logger: Logger): Promise<void> {
    const now = findCondition(status, 'ImageReady');
    const before = findCondition(row.status, 'ImageReady');
    if (!now || now.reason === before?.reason) return;
    const image = (row.spec as { image?: string }).image;
    if (now.reason === 'ImagePulling') await this.event(row, 'Normal', 'Pulling', `pulling image ${image}`, logger);
    else if (now.reason === 'ImagePullFailed' || now.reason === 'ImagePullBackOff')
      await this.event(row, 'Warning', now.reason, now.message, logger);
    else if (now.reason === 'ImageNotPresent') await this.event(row, 'Warning', 'ImageNotPresent', now.message, logger);
    else if (now.reason === 'ImageUpdatePending')
      await this.event(row, 'Normal', 'ImageUpdatePending', now.message, logger);
    else if (now.status === 'True' && before?.reason === 'ImagePulling')
      await this.event(
        row,
        'Normal',
        'Pulled',
        `image ${image} is on host ${this.options.inventory.host.name}`,
        logger,
      );
  }

  private observeReadiness(row: Row, status: SessionStatus): void {
    const ready = findCondition(status, 'Ready');
    const before = findCondition(row.status, 'Ready');
    const wasReadyAtGeneration = before?.status === 'True' && row.status.observedGeneration === row.generation;
    if (ready?.status === 'True' && !wasReadyAtGeneration) {
      this.options.metrics.sessionReady.observe(Math.max(0, (this.now() - row.generationChangedAt.getTime()) / 1000));
    }
  }

  private event(row: Row, type: EventType, reason: EventReason, message: string, logger: Logger): Promise<void> {
    return emitEvent(this.options.db, logger, row.name, row.uid, type, reason, message);
  }
}
