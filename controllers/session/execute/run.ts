/**
 * The shapes the executor and its handlers share: what the intents did (Execution), what they act
 * for (ExecutionContext), what they act with (ExecutorDeps), and the handler's signature.
 */
import type { Logger } from 'pino';
import type { SessionSpec } from '../../../crds/session';
import type { ContainerDefaults } from '../../../src/docker/container-config';
import type { HostInventory } from '../../../src/docker/inventory';
import type { ContainerRevision } from '../../../src/model/labels';
import type { Metrics } from '../../../src/metrics/registry';
import type { Db } from '../../../src/store/db';
import type { EventReason, EventType } from '../../../src/store/events';
import type { Fence } from '../../../src/store/fencing';
import type { SessionRow, SessionTokenInfo } from '../../../src/store/sessions';
import type { HostActivity } from '../host-activity';
import type { ImageManager } from '../image';
import type { ImageWaitReason } from '../image-state';
import type { RestartRecord } from '../memory';
import type { Action, ExpireReason, TokenMintReason } from '../plan';
import type { RestartWait } from '../plan-restarts';
import type { Failure } from '../status';
import type { StuckContainers } from '../stuck';

/** What the intents did: the report step writes status, events and the session's memory from it. */
export interface Execution {
  restartsDone: number;
  lastExit?: { code?: number; oomKilled: boolean; unhealthy?: boolean };
  /** The restart made, for the session's memory (backoff, the exit it followed). */
  restarted?: RestartRecord;
  failure?: Failure;
  finalized: boolean;
  /** The row or the inventory moved under the plan: plan again rather than write status. */
  replan: boolean;
  /**
   * A crash loop's restart was given up for creates that began while it waited for its turn: the
   * session waits (told in status) and is planned again once the host is quiet.
   */
  yieldedToCreates?: RestartWait['waiting'];
  expired?: { reason: ExpireReason; message: string };
  /** The token minted for the session, and why. */
  minted?: SessionTokenInfo & { reason: TokenMintReason };
  /** The session left this host (unplace): the placer gives it another. */
  unplaced?: boolean;
  /** The create waits for its image (pulling, backing off, not allowed on the host). */
  imageWaiting?: { reason: ImageWaitReason; message: string; requeueAfterMs?: number };
}

export interface ExecutionContext {
  key: string;
  row?: SessionRow;
  spec?: SessionSpec;
  /** The container's revision; a minted token's id joins it before any create. */
  revision: ContainerRevision;
  /** Restarts already made at this generation. */
  restartCount: number;
  logger: Logger;
  /** The image rollout batch a recreate for a moved tag belongs to. */
  imageBatch?: number;
}

export interface ExecutorDeps {
  db: Db;
  /** This host's lease, in a fleet: writes made for the host hold only while it is current. */
  fence?: Fence;
  inventory: HostInventory;
  metrics: Metrics;
  defaults: ContainerDefaults;
  images: ImageManager;
  stuck: StuckContainers;
  activity: HostActivity;
  now: () => number;
}

/** One intent being carried out: its dependencies, its context, and the execution it adds to. */
export interface ActionRun {
  deps: ExecutorDeps;
  context: ExecutionContext;
  execution: Execution;
  event(type: EventType, reason: EventReason, message: string, uid?: string | null): Promise<void>;
}

/** A handler carries out one kind of intent; false: the rest of the plan waits for the next reconcile. */
export type Handler<T extends Action['type']> = (
  run: ActionRun,
  action: Extract<Action, { type: T }>,
) => Promise<boolean>;
