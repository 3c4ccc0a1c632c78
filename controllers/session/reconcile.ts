/**
 * The session reconciler, in four steps, the way kubelet syncs a pod:
 * - observe: one plain data snapshot of the row, the session's containers, its memory and the host;
 * - plan: `plan(snapshot)`, pure, called once; what it uses from the host is claimed at once;
 * - execute: one handler per intent, the only place that calls Docker;
 * - report: memory, status, events and metrics written once, from the intents' results.
 */
import type { ContainerDefaults } from '../../src/docker/container-config';
import type { HostInventory } from '../../src/docker/inventory';
import type { Metrics } from '../../src/metrics/registry';
import type { ReconcileContext, ReconcileOutcome } from '../../src/runtime/controller';
import type { Db } from '../../src/store/db';
import type { Fence } from '../../src/store/fencing';
import type { Admission } from './admission';
import type { Ceilings } from './ceilings';
import { ActionExecutor } from './execute/executor';
import type { HostActivity } from './host-activity';
import type { ImageManager } from './image';
import { claimRollout } from './image-wiring';
import { SessionMemory } from './memory';
import { observe, snapshot, type ObserveDeps, type Observed } from './observe';
import { plan, type Plan } from './plan';
import { SessionReport, type Decision } from './report';
import type { ImageRollout } from './rollout';
import type { StuckContainers } from './stuck';

export { ReportedFailure } from './report';

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
  /** This host's lease, in a fleet: status, events and evictions are written only while it is current. */
  fence?: Fence;
  /** The fleet host reconciled here: rows placed on others are not its own (see ObserveDeps). */
  placement?: { host: string };
  /** Why the host is not answering, while it is not: status says so first. */
  hostProblem?: () => { reason: string; message: string } | undefined;
  now?: () => number;
  random?: () => number;
}

export class SessionReconciler {
  /** The one owner of what is remembered about sessions between reconciles. */
  private readonly memory = new SessionMemory();
  private readonly random: () => number;
  private readonly observeDeps: ObserveDeps;
  private readonly executor: ActionExecutor;
  private readonly report: SessionReport;

  constructor(private readonly options: SessionReconcilerOptions) {
    const now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const memory = this.memory;
    this.observeDeps = { ...options, memory, now };
    this.executor = new ActionExecutor({ ...options, now });
    this.report = new SessionReport({ ...options, memory, now });
  }

  readonly reconcile = async ({
    key,
    logger,
  }: ReconcileContext): Promise<ReconcileOutcome & { placedElsewhere?: string | null }> => {
    const observed = await observe(this.observeDeps, key);
    // Waiting for a host: no host acts on it, not even to remove a container, which may be the one it
    // keeps running on from before placement existed (the placer puts it back there).
    if (observed.placedElsewhere === null) return { placedElsewhere: null };
    const decision = this.decide(observed);
    const { row } = observed;
    // The whole spec at debug level, for "why did it do that?"; the logger redacts spec.env.
    logger.debug(
      {
        generation: row?.generation,
        spec: row?.spec,
        actions: decision.plan.actions.map((action) => action.type),
        waiting: decision.plan.waiting,
      },
      'planned',
    );
    // On a host that is down, or answering again before its strays are removed (HostHealth.recover),
    // only strays (sessions placed elsewhere) are acted on: status still reports (an invalid spec,
    // HostUnreachable), and the host's own sessions are woken once it has recovered. Without this a
    // requeued key could start a container there before the container of a session that moved away
    // is removed.
    const held = this.options.hostProblem?.() !== undefined && observed.placedElsewhere === undefined;
    const actions = held ? [] : decision.plan.actions;
    const execution = await this.executor.execute(
      {
        key,
        row,
        spec: observed.spec?.ok ? observed.spec.value : undefined,
        revision: { ...observed.revision },
        restartCount: observed.desired?.restartCount ?? 0,
        logger,
        imageBatch: decision.rollout.batch,
      },
      actions,
    );
    const outcome = await this.report.write(observed, decision, execution, logger);
    return observed.placedElsewhere === undefined ? outcome : { ...outcome, placedElsewhere: observed.placedElsewhere };
  };

  /**
   * The host's side of the snapshot, the plan, and the claims of what it used, with no await
   * between them: what the plan was shown is still true when it is claimed.
   */
  private decide(observed: Observed): Decision {
    const result = plan(snapshot(this.observeDeps, observed, this.random()));
    this.claim(observed, result);
    const rollout = observed.following
      ? claimRollout(this.options.rollout, {
          key: observed.key,
          spec: observed.following,
          plan: result,
          facts: observed.image,
        })
      : {};
    return { plan: result, rollout };
  }

  /** Room on the host and a crash-restart turn, as the plan used them. */
  private claim({ key, row, memoryBytes }: Observed, result: Plan): void {
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
}
