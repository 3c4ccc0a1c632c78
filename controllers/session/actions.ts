/**
 * Executes a plan's actions against Docker and the database, one after another, and records what
 * happened (events, logs, metrics, the inventory). The first failure stops the plan: it is turned
 * into words for status and left to the queue's backoff.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { SessionSpec } from '../../crds/session';
import type { ContainerDefaults } from '../../src/docker/container-config';
import { containerCreateOptions } from '../../src/docker/container-config';
import { ensureSessionNetwork, removeSessionNetwork } from '../../src/docker/networks';
import { TOKEN_DIRECTORY, TOKEN_VOLUME, tarWithFile } from '../../src/docker/token-file';
import { ownedVolumesToRemove, resolveVolume } from '../../src/docker/volumes';
import { dockerErrorMessage, dockerStatusCode } from '../../src/docker/host';
import type { HostInventory } from '../../src/docker/inventory';
import type { ObservedContainer } from '../../src/model/container';
import { portsFromInspect } from '../../src/docker/inventory';
import { LABELS, type ContainerRevision } from '../../src/model/labels';
import type { Metrics } from '../../src/metrics/registry';
import type { Db } from '../../src/store/db';
import { recordEvent, type EventReason, type EventType } from '../../src/store/events';
import {
  CONTAINER_FINALIZER,
  addFinalizer,
  deleteSessionAs,
  finishDeletion,
  type SessionRow,
} from '../../src/store/sessions';
import { readToken } from '../../src/store/tokens';
import {
  STOP_TIMEOUT_SECONDS,
  crashBackoffMs,
  ranStably,
  type Action,
  type ExpireReason,
  type RestartHistory,
} from './plan';
import { exitReason, type Failure } from './status';
import type { HostActivity } from './host-activity';
import {
  NameConflictError,
  StartError,
  conflictReason,
  describeFailure,
  nameHolderConflict,
  vanishedContainer,
} from './action-failures';
import { isRemovalRefused, type StuckContainers } from './stuck';

export interface Execution {
  restartsDone: number;
  lastExit?: { code?: number; oomKilled: boolean; unhealthy?: boolean };
  failure?: Failure;
  finalized: boolean;
  /** The row or the inventory moved under the plan: plan again rather than write status. */
  replan: boolean;
  /** A crash loop's restart was given up for creates that began meanwhile: plan again once the host is quiet. */
  yieldedToCreates?: boolean;
  expired?: { reason: ExpireReason; message: string };
}

export interface ExecutionContext {
  key: string;
  row?: SessionRow;
  spec?: SessionSpec;
  revision: ContainerRevision;
  /** Restarts already made at this generation. */
  restartCount: number;
  logger: Logger;
  /** The digest of the image a created container gets as its label. */
  imageDigest?: string;
  /** The image rollout batch a recreate for a moved tag belongs to. */
  imageBatch?: number;
}

export interface ActionExecutorOptions {
  db: Db;
  inventory: HostInventory;
  metrics: Metrics;
  defaults: ContainerDefaults;
  restarts: Map<string, RestartHistory>;
  hadContainer: Set<string>;
  stuck: StuckContainers;
  activity: HostActivity;
  now: () => number;
  random: () => number;
}

/** Events are a record, not the contract: failing to write one must not fail the reconcile. */
export async function emitEvent(
  db: Db,
  logger: Logger,
  session: string,
  uid: string | null,
  type: EventType,
  reason: EventReason,
  message: string,
): Promise<void> {
  try {
    await recordEvent(db, { sessionName: session, sessionUid: uid, type, reason, message });
  } catch (error) {
    logger.warn({ err: error, reason }, 'could not record event');
  }
}

export class ActionExecutor {
  constructor(private readonly options: ActionExecutorOptions) {}

  async execute(context: ExecutionContext, actions: Action[]): Promise<Execution> {
    const execution: Execution = { restartsDone: 0, finalized: false, replan: false };
    for (const action of actions) {
      try {
        const proceed = await this.apply(context, action, execution);
        if (!proceed) break;
      } catch (error) {
        const vanished = vanishedContainer(action, error);
        if (vanished) {
          // The inventory named a container the daemon no longer has (removed behind our back before
          // its events arrived): forget it and plan again instead of retrying a dead id forever.
          this.options.inventory.forget(vanished);
          context.logger.info({ action: action.type, containerId: vanished }, 'container vanished; planning again');
          execution.replan = true;
          break;
        }
        if (await this.foundDead(context, action, error)) {
          execution.replan = true;
          break;
        }
        execution.failure = describeFailure(action, error, context.spec, this.options.inventory.host.name);
        context.logger.warn(
          { action: action.type, err: { message: dockerErrorMessage(error), statusCode: dockerStatusCode(error) } },
          'action failed',
        );
        await this.event(context, 'Warning', conflictReason(execution.failure.reason), execution.failure.message);
        break;
      }
    }
    return execution;
  }

  private event(
    context: ExecutionContext,
    type: EventType,
    reason: EventReason,
    message: string,
    uid = context.row?.uid ?? null,
  ): Promise<void> {
    return emitEvent(this.options.db, context.logger, context.key, uid, type, reason, message);
  }

  /** Runs one action; returns false when the rest of the plan must wait for the next reconcile. */
  private async apply(context: ExecutionContext, action: Action, execution: Execution): Promise<boolean> {
    const { db, inventory, metrics } = this.options;
    const { key, row, logger } = context;
    const host = inventory.host;
    switch (action.type) {
      case 'addFinalizer':
        if (!(await addFinalizer(db, key, row!.uid))) {
          execution.replan = true;
          return false;
        }
        row!.finalizers.push(CONTAINER_FINALIZER);
        return true;
      case 'remove': {
        if (!(await this.removeOrSetAside(context, action.container))) return true;
        if (action.reason === 'orphan' || action.reason === 'stale-uid')
          metrics.driftCorrections.inc({ kind: 'orphan_removed' });
        if (action.reason === 'duplicate') metrics.driftCorrections.inc({ kind: 'duplicate_removed' });
        await this.event(
          context,
          'Normal',
          'Removed',
          `removed ${action.reason} container ${short(action.container.id)}`,
          action.container.labels[LABELS.uid] ?? row?.uid ?? null,
        );
        logger.info({ containerId: action.container.id, reason: action.reason }, 'container removed');
        return true;
      }
      case 'create':
        return this.createContainer(context, action, execution);
      case 'start':
        await this.start(context, action.container.id, 'Started', `started container ${short(action.container.id)}`);
        return true;
      case 'restart':
        return this.restartContainer(context, action, execution);
      case 'stop': {
        await host.stop(action.container.id, STOP_TIMEOUT_SECONDS);
        inventory.update(action.container.id, { state: 'exited', finishedAt: this.options.now(), ports: undefined });
        const why = {
          Requested: 'spec.state: Stopped',
          IdleTimeout: 'idle timeout',
          RestartLimitExceeded: 'restart limit exceeded',
        }[action.reason];
        await this.event(
          context,
          'Normal',
          action.reason === 'IdleTimeout' ? 'IdleTimeout' : 'Stopped',
          `stopped container ${short(action.container.id)} (${why})`,
        );
        if (action.reason === 'IdleTimeout') metrics.lifetimeActions.inc({ reason: 'IdleTimeout', action: 'stop' });
        logger.info({ containerId: action.container.id, reason: action.reason }, 'container stopped');
        return true;
      }
      case 'observePorts':
        await this.observePorts(context, action.container.id);
        return true;
      case 'expire':
        await this.event(
          context,
          'Normal',
          action.reason === 'IdleTimeout' ? 'IdleTimeout' : 'Expired',
          action.message,
        );
        await deleteSessionAs(db, key, row!.uid);
        metrics.lifetimeActions.inc({ reason: action.reason, action: 'delete' });
        logger.info({ reason: action.reason }, 'session expired; deleting');
        execution.expired = { reason: action.reason, message: action.message };
        execution.replan = true;
        return false;
      case 'removeVolumes':
        await this.removeVolumes(context, action.volumes);
        return true;
      case 'finalize':
        await this.removeSessionResources(context);
        execution.finalized = await finishDeletion(db, key, row!.uid);
        if (execution.finalized) logger.info('session deleted');
        return true;
    }
  }

  /**
   * Restarts a container that exited or turned unhealthy, and records it: the restart memory (backoff,
   * the exit it followed), the event, the metrics. A crash loop's restart goes behind other calls and
   * may be given up for creates that began meanwhile (false: plan again once the host is quiet).
   */
  private async restartContainer(
    context: ExecutionContext,
    action: Extract<Action, { type: 'restart' }>,
    execution: Execution,
  ): Promise<boolean> {
    const { inventory, metrics } = this.options;
    const { key, row, logger } = context;
    const host = inventory.host;
    const now = this.options.now();
    const history = this.options.restarts.get(key) ?? { consecutive: 0 };
    const reason = exitReason(action.exitCode, action.oomKilled, action.unhealthy);
    const unhealthyEvent = () =>
      this.event(
        context,
        'Warning',
        'Unhealthy',
        `health check failed ${context.spec?.healthCheck?.failureThreshold ?? 'several'} times in a row; restarting container ${short(action.container.id)}`,
      );
    const mark = inventory.eventMark(action.container.id);
    // The first restart after a failure is as urgent as any create; a crash loop's later ones yield.
    if (action.crashLoop) {
      const { creates } = this.options.activity;
      const stillWanted = action.crashLoop === 'yield' ? () => !creates.busyWithOthers(key) : undefined;
      if (
        !(await host.restartBehindOthers(action.container.id, {
          unhealthy: action.unhealthy === true,
          timeoutSeconds: STOP_TIMEOUT_SECONDS,
          stillWanted,
        }))
      ) {
        logger.debug(
          { containerId: action.container.id },
          'crash-loop restart given up: the host began creating other sessions',
        );
        execution.yieldedToCreates = true;
        return false;
      }
      // Told after the fact here, so that a restart given up for a busy host tells it once.
      if (action.unhealthy) await unhealthyEvent();
    } else if (action.unhealthy) {
      await unhealthyEvent();
      await host.restart(action.container.id, STOP_TIMEOUT_SECONDS);
    } else {
      await host.start(action.container.id);
    }
    inventory.markStarted(action.container.id, mark, this.options.now());
    const consecutive = ranStably(action.container, now) ? 1 : history.consecutive + 1;
    const jitter = this.options.random();
    const lastExit = { finishedAt: action.container.finishedAt, code: action.exitCode, reason };
    this.options.restarts.set(key, {
      consecutive,
      lastRestartAt: this.options.now(),
      generation: row?.generation,
      jitter,
      lastExit,
    });
    execution.restartsDone++;
    execution.lastExit = { code: action.exitCode, oomKilled: action.oomKilled, unhealthy: action.unhealthy };
    metrics.containerRestarts.inc({ reason });
    metrics.driftCorrections.inc({ kind: 'container_exited' });
    const why = action.unhealthy ? 'its health check failed' : `it exited with code ${action.exitCode ?? 'unknown'}`;
    const next = Math.round(crashBackoffMs(consecutive, jitter) / 100) / 10;
    await this.event(
      context,
      'Normal',
      'Restarted',
      `restart ${context.restartCount + execution.restartsDone}: restarted container after ${why} (${reason}); a failure within 10 minutes backs off about ${next}s`,
    );
    logger.info({ containerId: action.container.id, exitCode: action.exitCode, reason }, 'container restarted');
    await this.observePorts(context, action.container.id);
    return true;
  }

  private async createContainer(
    context: ExecutionContext,
    action: Extract<Action, { type: 'create' }>,
    execution: Execution,
  ): Promise<boolean> {
    const { db, inventory, metrics } = this.options;
    const { key, row, spec, logger } = context;
    if (action.replaced) {
      await this.removeOrSetAside(context, action.replaced);
      if (!action.forImage) metrics.driftCorrections.inc({ kind: 'spec_changed' });
    } else if (this.options.hadContainer.has(row!.uid) || row!.status.containerId) {
      metrics.driftCorrections.inc({ kind: 'container_missing' });
    }
    const network =
      this.options.defaults.networkMode === 'PerSession'
        ? await ensureSessionNetwork(
            inventory.host,
            key,
            row!.uid,
            spec!.network?.egress ?? this.options.defaults.defaultEgress ?? 'Internet',
            this.options.defaults.installation,
          )
        : undefined;
    // Before anything is mounted: a volume that is not this session's refuses the create (VolumeConflict).
    const installation: Record<string, string> = this.options.defaults.installation
      ? { [LABELS.installation]: this.options.defaults.installation }
      : {};
    const volumes: Record<string, string> = {};
    for (const volume of spec!.volumes ?? []) {
      if (volume.hostPath === undefined)
        volumes[volume.name] = await resolveVolume(inventory.host, key, row!.uid, volume.name, installation);
    }
    const tokenFile = spec!.auth !== undefined && spec!.auth.delivery !== 'Env';
    if (tokenFile)
      volumes[TOKEN_VOLUME] = await resolveVolume(inventory.host, key, row!.uid, TOKEN_VOLUME, installation);
    const token = spec!.auth ? await readToken(db, key) : undefined;
    if (spec!.auth && token?.tokenId !== context.revision.tokenId) {
      // Rotated or requested since this reconcile read it: the hash would not match the token.
      execution.replan = true;
      return false;
    }
    const options = containerCreateOptions(
      { name: key, uid: row!.uid, generation: row!.generation },
      spec!,
      this.options.defaults,
      { revision: context.revision, token: token?.token, imageDigest: context.imageDigest, volumes, network },
    );
    const prepare = tokenFile && token ? writeTokenFile(token.token, spec!) : undefined;
    const created = await this.create(context, options, action.start, prepare);
    if (!created) {
      execution.replan = true;
      return false;
    }
    const started = action.start && created.startError === undefined;
    inventory.record({
      id: created.id,
      name: options.name!,
      labels: options.Labels!,
      state: started ? 'running' : 'created',
      startedAt: started ? this.options.now() : undefined,
    });
    const verb: EventReason = action.replaced ? 'Recreated' : 'Created';
    const why = action.forImage
      ? `image ${spec!.image} moved to ${context.imageDigest?.slice(0, 19)} (update batch ${context.imageBatch ?? 1})`
      : 'container changed';
    await this.event(
      context,
      'Normal',
      verb,
      action.replaced
        ? `${why}: replaced ${short(action.replaced.id)} with ${short(created.id)}`
        : `created container ${short(created.id)}`,
    );
    logger.info(
      { containerId: created.id, replaced: action.replaced?.id },
      action.replaced ? 'container recreated' : 'container created',
    );
    if (created.startError !== undefined) throw new StartError(created.id, created.startError);
    if (started) {
      await this.event(context, 'Normal', 'Started', `started container ${short(created.id)}`);
      logger.info({ containerId: created.id }, 'container started');
      await this.observePorts(context, created.id);
    }
    return true;
  }

  /**
   * What the session had besides its containers and spec volumes: its network and its token volume.
   * Best effort: either left behind costs little, a deletion held up by one would cost more.
   */
  private async removeSessionResources(context: ExecutionContext): Promise<void> {
    const host = this.options.inventory.host;
    try {
      if (this.options.defaults.networkMode === 'PerSession') await removeSessionNetwork(host, context.key);
      for (const name of (
        await ownedVolumesToRemove(host, context.key, TOKEN_VOLUME, this.options.defaults.installation)
      ).remove)
        await host.removeVolume(name);
    } catch (error) {
      context.logger.warn(
        { err: { message: dockerErrorMessage(error) } },
        'could not remove the session network or token volume',
      );
    }
  }

  /** volumeReclaimPolicy: Delete, for volumes whose labels say they are this session's only. */
  private async removeVolumes(context: ExecutionContext, volumes: string[]): Promise<void> {
    const host = this.options.inventory.host;
    for (const volume of volumes) {
      const { remove, refused } = await ownedVolumesToRemove(
        host,
        context.key,
        volume,
        this.options.defaults.installation,
      );
      for (const name of remove) {
        await host.removeVolume(name);
        await this.event(context, 'Normal', 'VolumeRemoved', `removed volume ${name} (volumeReclaimPolicy: Delete)`);
      }
      for (const name of refused) {
        await this.event(
          context,
          'Warning',
          'VolumeConflict',
          `left volume ${name} alone: it does not belong to this session`,
        );
      }
    }
  }

  /**
   * Removes the container; if Docker refuses (a dead container, a busy root filesystem), renames it
   * out of the session's way instead, so that a fresh container can take its name. Returns whether
   * it is gone; throws only when it could be neither removed nor renamed.
   */
  private async removeOrSetAside(context: ExecutionContext, container: ObservedContainer): Promise<boolean> {
    const { inventory } = this.options;
    try {
      await inventory.host.remove(container.id);
      inventory.forget(container.id);
      return true;
    } catch (error) {
      if (!isRemovalRefused(error)) throw error;
      const cause = dockerErrorMessage(error);
      const stuck = await this.options.stuck.setAside(container, cause).catch(() => Promise.reject(error));
      inventory.update(container.id, { name: stuck.name, state: 'dead' });
      await this.event(
        context,
        'Warning',
        'ContainerStuck',
        `Docker could not remove container ${short(container.id)} (${cause}); renamed it ${stuck.name} and retries its removal`,
        container.labels[LABELS.uid] ?? null,
      );
      return false;
    }
  }

  /**
   * A start or restart that Docker refused because the container cannot run again: it is dead
   * ("marked for removal"), or its containerd task outlived a daemon restart ("task ...: already
   * exists"). The inventory learns it as dead, and the next plan removes or sets the container aside
   * and makes a fresh one.
   */
  private async foundDead(context: ExecutionContext, action: Action, error: unknown): Promise<boolean> {
    const id =
      action.type === 'start' || action.type === 'restart'
        ? action.container.id
        : error instanceof StartError
          ? error.containerId
          : undefined;
    const refused = error instanceof StartError ? error.cause : error;
    if (!id || !isRemovalRefused(refused)) return false;
    const taskLeftOver = /task [0-9a-f]+: already exists/.test(dockerErrorMessage(refused));
    if (!taskLeftOver) {
      const info = await this.options.inventory.host.inspect(id).catch(() => undefined);
      if (info?.State.Status !== 'dead' && info?.State.Dead !== true) return false;
    }
    this.options.inventory.update(id, { state: 'dead' });
    context.logger.warn(
      { containerId: id, err: { message: dockerErrorMessage(refused) } },
      'container cannot be started again; planning again',
    );
    return true;
  }

  private async start(context: ExecutionContext, id: string, reason: EventReason, message: string): Promise<void> {
    const mark = this.options.inventory.eventMark(id);
    await this.options.inventory.host.start(id);
    this.options.inventory.markStarted(id, mark, this.options.now());
    await this.event(context, 'Normal', reason, message);
    context.logger.info({ containerId: id }, 'container started');
    await this.observePorts(context, id);
  }

  /** Docker picks ephemeral host ports at each start: read them, for status.endpoints. */
  private async observePorts(context: ExecutionContext, id: string): Promise<void> {
    if (!context.spec || context.spec.ports.length === 0) return;
    const { inventory } = this.options;
    const info = await inventory.host.measure('inspect', () => inventory.host.docker.getContainer(id).inspect());
    if (!info.State.Running) return;
    inventory.update(id, {
      ports: portsFromInspect(info.NetworkSettings.Ports as Parameters<typeof portsFromInspect>[0]),
    });
  }

  /**
   * Creates the container. A 409 means the name is taken: by our own container that the inventory
   * has not seen yet (record it and plan again), or by a container we do not manage (a conflict).
   */
  private async create(
    context: ExecutionContext,
    options: ReturnType<typeof containerCreateOptions>,
    start: boolean,
    prepare?: (container: Dockerode.Container) => Promise<void>,
  ): Promise<{ id: string; startError?: unknown } | undefined> {
    const { inventory } = this.options;
    const { key, logger } = context;
    try {
      // A create that starts counts as the host's create activity, which crash-loop restarts wait for.
      const work = () => inventory.host.createAndStart(options, start, prepare);
      return await (start ? this.options.activity.creates.track(key, work) : work());
    } catch (error) {
      if (dockerStatusCode(error) !== 409) throw error;
      const existing = await inventory.host.inspect(options.name!);
      const conflict = nameHolderConflict(
        existing.Config.Labels ?? {},
        options.name!,
        key,
        context.row?.uid,
        this.options.defaults.installation,
      );
      if (conflict) throw new NameConflictError(conflict);
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
}

/** Uploads the token file into the created container, owned by the session's user and readable by it only. */
function writeTokenFile(token: string, spec: SessionSpec): (container: Dockerode.Container) => Promise<void> {
  const uid = spec.securityContext?.runAsUser ?? 0;
  const gid = spec.securityContext?.runAsGroup ?? uid;
  const archive = tarWithFile('token', token, { uid, gid });
  return async (container) => {
    await container.putArchive(archive, { path: TOKEN_DIRECTORY });
  };
}

function short(id: string): string {
  return id.slice(0, 12);
}
