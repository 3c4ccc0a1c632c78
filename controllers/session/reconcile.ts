/**
 * The session reconciler: read the row and the inventory, plan, execute the plan against Docker,
 * then write what was observed back as status, guarded by the generation that was read.
 * A failed step is reported in status and events first, then thrown so the queue backs off.
 */
import type { Logger } from 'pino';
import { validateSpec, type SessionSpec } from '../../crds/session';
import type { ContainerDefaults } from '../../src/docker/container-config';
import { containerCreateOptions } from '../../src/docker/container-config';
import { dockerErrorMessage, dockerStatusCode } from '../../src/docker/host';
import type { HostInventory, ObservedContainer } from '../../src/docker/inventory';
import { LABELS, MANAGED_BY, canonicalJson } from '../../src/docker/labels';
import type { Metrics } from '../../src/metrics/registry';
import type { ReconcileContext, ReconcileOutcome } from '../../src/runtime/controller';
import type { Db } from '../../src/store/db';
import { recordEvent, type EventReason, type EventType } from '../../src/store/events';
import { CONTAINER_FINALIZER, addFinalizer, finishDeletion, getSession, writeStatus, type SessionRow } from '../../src/store/sessions';
import { STOP_TIMEOUT_SECONDS, plan, ranStably, type Action, type RestartHistory } from './plan';
import { computeStatus, exitReason, type Failure } from './status';

export interface SessionReconcilerOptions {
  db: Db;
  inventory: HostInventory;
  metrics: Metrics;
  defaults: ContainerDefaults;
  now?: () => number;
  random?: () => number;
}

/** A failure already written to status and events; thrown only so that the queue backs off. */
export class ReportedFailure extends Error {
  override readonly name = 'ReportedFailure';
}

interface Execution {
  restartsDone: number;
  lastExit?: { code?: number; oomKilled: boolean };
  failure?: Failure;
  finalized: boolean;
  /** The row or the inventory moved under the plan: plan again rather than write status. */
  replan: boolean;
}

export class SessionReconciler {
  private readonly restarts = new Map<string, RestartHistory>();
  /** Uids that have had a container, so that a vanished one counts as drift even if status lost its id. */
  private readonly hadContainer = new Set<string>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: SessionReconcilerOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  readonly reconcile = async ({ key, logger }: ReconcileContext): Promise<ReconcileOutcome> => {
    const { db, inventory } = this.options;
    const row = await getSession(db, key);
    const spec = row ? validateSpec(row.spec) : undefined;
    const result = plan({
      name: key,
      desired: row && spec && {
        name: row.name,
        uid: row.uid,
        generation: row.generation,
        deletionRequested: row.deletionRequestedAt !== null,
        hasFinalizer: row.finalizers.includes(CONTAINER_FINALIZER),
        spec,
      },
      containers: inventory.forSession(key),
      restarts: this.restarts.get(key) ?? { consecutive: 0 },
      now: this.now(),
      jitter: this.random(),
    });

    const execution = await this.execute(key, row, spec?.ok ? spec.value : undefined, result.actions, logger);
    if (!row || execution.finalized) {
      this.restarts.delete(key);
      if (row) this.hadContainer.delete(row.uid);
      if (execution.failure) throw new ReportedFailure(execution.failure.message);
      return {};
    }
    if (execution.replan) return { requeue: true };

    const own = inventory.forSession(key).filter((container) => container.labels[LABELS.uid] === row.uid);
    if (own.length > 0) this.hadContainer.add(row.uid);
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
      lastExit: execution.lastExit,
      now: new Date(this.now()),
    });
    if (canonicalJson(status) !== canonicalJson(row.status)) {
      const written = await writeStatus(db, row.name, row.generation, status, inventory.host.name);
      if (!written) return { requeue: true };
      this.observeReadiness(row, status);
    }
    if (spec && !spec.ok) {
      await this.event(row.name, row.uid, 'Warning', 'InvalidSpec', status.conditions.find((c) => c.type === 'Valid')!.message, logger);
      throw new ReportedFailure('the spec is invalid');
    }
    if (execution.failure) throw new ReportedFailure(execution.failure.message);
    if (result.waiting?.reason === 'BackOff') await this.event(row.name, row.uid, 'Warning', 'BackOff', result.waiting.message, logger);
    return result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : {};
  };

  private observeReadiness(row: SessionRow, status: ReturnType<typeof computeStatus>): void {
    const ready = status.conditions.find((condition) => condition.type === 'Ready');
    const before = row.status.conditions?.find((condition) => condition.type === 'Ready');
    const wasReadyAtGeneration = before?.status === 'True' && row.status.observedGeneration === row.generation;
    if (ready?.status === 'True' && !wasReadyAtGeneration) {
      this.options.metrics.sessionReady.observe(Math.max(0, (this.now() - row.generationChangedAt.getTime()) / 1000));
    }
  }

  private async execute(key: string, row: SessionRow | undefined, spec: SessionSpec | undefined, actions: Action[], logger: Logger): Promise<Execution> {
    const execution: Execution = { restartsDone: 0, finalized: false, replan: false };
    for (const action of actions) {
      try {
        const proceed = await this.apply(key, row, spec, action, execution, logger);
        if (!proceed) break;
      } catch (error) {
        const vanished = this.vanishedContainer(action, error);
        if (vanished) {
          // The inventory named a container the daemon no longer has (removed behind our back before
          // its events arrived): forget it and plan again instead of retrying a dead id forever.
          this.options.inventory.forget(vanished);
          logger.info({ action: action.type, containerId: vanished }, 'container vanished; planning again');
          execution.replan = true;
          break;
        }
        execution.failure = this.describeFailure(action, error, spec);
        logger.warn({ action: action.type, err: { message: dockerErrorMessage(error), statusCode: dockerStatusCode(error) } }, 'action failed');
        await this.event(key, row?.uid ?? null, 'Warning', execution.failure.reason === 'NameConflict' ? 'NameConflict' : 'Failed', execution.failure.message, logger);
        break;
      }
    }
    return execution;
  }

  /** Runs one action; returns false when the rest of the plan must wait for the next reconcile. */
  private async apply(key: string, row: SessionRow | undefined, spec: SessionSpec | undefined, action: Action, execution: Execution, logger: Logger): Promise<boolean> {
    const { db, inventory, metrics } = this.options;
    const host = inventory.host;
    const uid = row?.uid ?? null;
    switch (action.type) {
      case 'addFinalizer':
        if (!(await addFinalizer(db, key, row!.uid))) {
          execution.replan = true;
          return false;
        }
        row!.finalizers.push(CONTAINER_FINALIZER);
        return true;
      case 'remove': {
        await host.remove(action.container.id);
        inventory.forget(action.container.id);
        if (action.reason === 'orphan' || action.reason === 'stale-uid') metrics.driftCorrections.inc({ kind: 'orphan_removed' });
        if (action.reason === 'duplicate') metrics.driftCorrections.inc({ kind: 'duplicate_removed' });
        const owner = action.container.labels[LABELS.uid] ?? uid;
        await this.event(key, owner, 'Normal', 'Removed', `removed ${action.reason} container ${short(action.container.id)}`, logger);
        logger.info({ containerId: action.container.id, reason: action.reason }, 'container removed');
        return true;
      }
      case 'create': {
        if (action.replaced) {
          await host.remove(action.replaced.id);
          inventory.forget(action.replaced.id);
          metrics.driftCorrections.inc({ kind: 'spec_changed' });
        } else if (this.hadContainer.has(row!.uid) || row!.status.containerId) {
          metrics.driftCorrections.inc({ kind: 'container_missing' });
        }
        const options = containerCreateOptions({ name: key, uid: row!.uid, generation: row!.generation }, spec!, this.options.defaults);
        const created = await this.create(key, options, action.start, logger);
        if (!created) {
          execution.replan = true;
          return false;
        }
        const started = action.start && created.startError === undefined;
        inventory.record({ id: created.id, name: options.name!, labels: options.Labels!, state: started ? 'running' : 'created', startedAt: started ? this.now() : undefined });
        const verb: EventReason = action.replaced ? 'Recreated' : 'Created';
        await this.event(key, uid, 'Normal', verb, action.replaced ? `spec changed: replaced container ${short(action.replaced.id)} with ${short(created.id)}` : `created container ${short(created.id)}`, logger);
        logger.info({ containerId: created.id, replaced: action.replaced?.id }, action.replaced ? 'container recreated' : 'container created');
        if (created.startError !== undefined) throw new StartError(created.id, created.startError);
        if (started) {
          await this.event(key, uid, 'Normal', 'Started', `started container ${short(created.id)}`, logger);
          logger.info({ containerId: created.id }, 'container started');
        }
        return true;
      }
      case 'start':
        await this.start(key, uid, action.container.id, logger);
        return true;
      case 'restart': {
        const history = this.restarts.get(key) ?? { consecutive: 0 };
        await host.start(action.container.id);
        inventory.update(action.container.id, { state: 'running', startedAt: this.now(), exitCode: undefined, oomKilled: false });
        this.restarts.set(key, { consecutive: ranStably(action.container) ? 1 : history.consecutive + 1, lastRestartAt: this.now() });
        execution.restartsDone++;
        execution.lastExit = { code: action.exitCode, oomKilled: action.oomKilled };
        const reason = exitReason(action.exitCode, action.oomKilled);
        metrics.containerRestarts.inc({ reason });
        metrics.driftCorrections.inc({ kind: 'container_exited' });
        await this.event(key, uid, 'Normal', 'Restarted', `restarted container after it exited with code ${action.exitCode ?? 'unknown'} (${reason})`, logger);
        logger.info({ containerId: action.container.id, exitCode: action.exitCode, reason }, 'container restarted');
        return true;
      }
      case 'stop':
        await host.stop(action.container.id, STOP_TIMEOUT_SECONDS);
        inventory.update(action.container.id, { state: 'exited', finishedAt: this.now() });
        await this.event(key, uid, 'Normal', 'Stopped', `stopped container ${short(action.container.id)} (spec.state: Stopped)`, logger);
        logger.info({ containerId: action.container.id }, 'container stopped');
        return true;
      case 'finalize':
        execution.finalized = await finishDeletion(db, key, row!.uid);
        if (execution.finalized) logger.info('session deleted');
        return true;
    }
  }

  private async start(key: string, uid: string | null, id: string, logger: Logger): Promise<void> {
    await this.options.inventory.host.start(id);
    this.options.inventory.update(id, { state: 'running', startedAt: this.now(), exitCode: undefined, oomKilled: false });
    await this.event(key, uid, 'Normal', 'Started', `started container ${short(id)}`, logger);
    logger.info({ containerId: id }, 'container started');
  }

  /**
   * Creates the container. A 409 means the name is taken: by our own container that the inventory
   * has not seen yet (record it and plan again), or by a container we do not manage (a conflict).
   */
  private async create(key: string, options: ReturnType<typeof containerCreateOptions>, start: boolean, logger: Logger): Promise<{ id: string; startError?: unknown } | undefined> {
    const { inventory } = this.options;
    try {
      return await inventory.host.createAndStart(options, start);
    } catch (error) {
      if (dockerStatusCode(error) !== 409) throw error;
      const existing = await inventory.host.inspect(options.name!);
      if (existing.Config.Labels?.[LABELS.managedBy] !== MANAGED_BY || existing.Config.Labels?.[LABELS.session] !== key) {
        throw new NameConflictError(`a container named ${options.name} exists but is not managed by sessionctl; it is left alone. Rename or remove it to let this session start`);
      }
      inventory.record({
        id: existing.Id,
        name: options.name!,
        labels: existing.Config.Labels,
        state: existing.State.Status as ObservedContainer['state'],
        exitCode: existing.State.Running ? undefined : existing.State.ExitCode,
        oomKilled: existing.State.OOMKilled,
      });
      logger.info({ containerId: existing.Id }, 'found own container the inventory had not seen yet');
      return undefined;
    }
  }

  private vanishedContainer(action: Action, error: unknown): string | undefined {
    if (error instanceof StartError && dockerStatusCode(error.cause) === 404) return error.containerId;
    if (dockerStatusCode(error) !== 404) return undefined;
    return action.type === 'start' || action.type === 'restart' || action.type === 'stop' ? action.container.id : undefined;
  }

  private describeFailure(action: Action, error: unknown, spec: SessionSpec | undefined): Failure {
    if (error instanceof NameConflictError) return { reason: 'NameConflict', message: error.message };
    if (error instanceof StartError) return { reason: 'StartFailed', message: `start failed: ${dockerErrorMessage(error.cause)}` };
    const message = dockerErrorMessage(error);
    const code = dockerStatusCode(error);
    if (code === undefined) return { reason: 'DockerUnavailable', message: `Docker host ${this.options.inventory.host.name} did not answer: ${message}` };
    if (action.type === 'create' && code === 404) {
      return { reason: 'ImageNotPresent', message: `image ${spec?.image} is not present on host ${this.options.inventory.host.name}: ${message}` };
    }
    const reason = action.type === 'create' ? 'CreateFailed' : action.type === 'stop' ? 'StopFailed' : action.type === 'remove' ? 'RemoveFailed' : 'StartFailed';
    return { reason, message: `${action.type} failed: ${message}` };
  }

  private async event(session: string, uid: string | null, type: EventType, reason: EventReason, message: string, logger: Logger): Promise<void> {
    try {
      await recordEvent(this.options.db, { sessionName: session, sessionUid: uid, type, reason, message });
    } catch (error) {
      // Events are a record, not the contract: failing to write one must not fail the reconcile.
      logger.warn({ err: error, reason }, 'could not record event');
    }
  }
}

class NameConflictError extends Error {
  override readonly name = 'NameConflictError';
}

/** A start that failed right after a successful create: the container exists, reported as StartFailed. */
class StartError extends Error {
  override readonly name = 'StartError';
  constructor(
    readonly containerId: string,
    cause: unknown,
  ) {
    super(dockerErrorMessage(cause), { cause });
  }
}

function short(id: string): string {
  return id.slice(0, 12);
}
