/**
 * The observe step: everything a decision about one session depends on, as plain data. Read in two
 * parts: what needs I/O (the row, the image's tag) first, then, in the same synchronous stretch as the
 * plan and its claims, the host's side (admission room, create activity, crash-restart turn, rollout
 * place), so that no other session's plan can be given what this one was shown.
 */
import { validateSpec, type SessionSpec, type Validation } from '../../crds/session';
import { findCondition, type SessionStatus } from '../../crds/status';
import type { ContainerDefaults } from '../../src/docker/container-config';
import { effectiveMemoryBytes } from '../../src/docker/container-config';
import type { HostInventory } from '../../src/docker/inventory';
import { specHash, type ContainerRevision } from '../../src/model/labels';
import type { Db } from '../../src/store/db';
import { CONTAINER_FINALIZER, getSession, type SessionRow, type SessionTokenInfo } from '../../src/store/sessions';
import type { Admission } from './admission';
import { ceilingProblems, type Ceilings } from './ceilings';
import type { HostActivity } from './host-activity';
import type { ImageManager } from './image';
import { imageNotAllowed, observeImage, rolloutFacts, type ImageFacts } from './image-wiring';
import type { SessionMemory } from './memory';
import type { DesiredSession, PlanInput, RestartHistory, TokenFacts } from './plan';
import { egressProblems, hostPolicyProblems } from './policy';
import type { ImageRollout } from './rollout';

export type Row = SessionRow & { token?: SessionTokenInfo };

export interface ObserveDeps {
  db: Db;
  inventory: HostInventory;
  defaults: ContainerDefaults;
  admission: Admission;
  images: ImageManager;
  rollout: ImageRollout;
  activity: HostActivity;
  memory: SessionMemory;
  /** Host directories spec.volumes[].hostPath may bind-mount. */
  allowedHostPaths?: string[];
  /** The operator's per-session maximums; none when unset (unit tests). */
  ceilings?: Ceilings;
  /** Registries images may come from (SESSIONCTL_ALLOWED_REGISTRIES); any when empty. */
  allowedRegistries?: string[];
  /**
   * The fleet host this reconciler runs: a row placed on another host (or on none yet) is not this
   * host's, and its containers here are strays. Absent: every row is this host's (one host, no fleet).
   */
  placement?: { host: string };
  now: () => number;
}

/** What observe read with I/O; snapshot() completes it into the plan's input. */
export interface Observed {
  key: string;
  /** The row, when it is this host's to run (see ObserveDeps.placement). */
  row?: Row;
  /** Where the row is placed, when it is not on this host: null = waiting for a host; absent = no row. */
  placedElsewhere?: string | null;
  spec?: Validation<SessionSpec>;
  /** The spec, when the session is to run it: a row that is valid and not being deleted. */
  following?: SessionSpec;
  revision: ContainerRevision;
  containerHash?: string;
  memoryBytes: number;
  restarts: RestartHistory;
  desired?: DesiredSession;
  image: ImageFacts;
}

export async function observe(deps: ObserveDeps, key: string): Promise<Observed> {
  const read = await getSession(deps.db, key);
  const ours = read !== undefined && (!deps.placement || read.placedHost === deps.placement.host);
  const row = ours ? read : undefined;
  const spec = row ? validate(deps, row.spec) : undefined;
  const valid = spec?.ok ? spec.value : undefined;
  const evicting = deps.placement !== undefined && row?.evictRequestedAt != null;
  const following = row && !row.deletionRequestedAt && !evicting ? valid : undefined;
  const memory = row ? deps.memory.read(key, row.uid, row.generation) : undefined;
  const token = row && following ? tokenFacts(row, following, deps.now()) : undefined;
  const revision: ContainerRevision = {
    restartRequestedAt: row?.restartRequestedAt?.toISOString(),
    tokenId: following?.auth && !token?.mint ? row?.token?.tokenId : undefined,
  };
  const containerHash = valid ? specHash(valid, revision) : undefined;
  const desired =
    row && spec && desiredSession(row, spec, { containerHash, token, hadContainer: memory?.hadContainer === true });
  if (desired && following) desired.imageRefused = imageNotAllowed(following.image, deps.allowedRegistries);
  if (desired && evicting) desired.evicting = { reason: row.evictReason ?? 'Drain' };
  return {
    key,
    row,
    ...(read && !ours ? { placedElsewhere: read.placedHost } : {}),
    spec,
    following,
    revision,
    containerHash,
    memoryBytes: valid ? (effectiveMemoryBytes(valid, deps.defaults) ?? 0) : 0,
    restarts: memory?.restarts ?? { consecutive: 0 },
    desired,
    image: following ? await followImage(deps, key, following) : unfollow(deps, key),
  };
}

/** The plan's whole input: what observe read, and the host's side read now, claiming nothing. */
export function snapshot(deps: ObserveDeps, observed: Observed, jitter: number): PlanInput {
  const { key, row, desired, following } = observed;
  const { admission, activity } = deps;
  const imageRollout = following
    ? rolloutFacts(deps.rollout, { key, spec: following, facts: observed.image })
    : undefined;
  return {
    name: key,
    desired: desired && { ...desired, imageRollout },
    containers: deps.inventory.forSession(key),
    restarts: observed.restarts,
    now: deps.now(),
    jitter,
    host: {
      admission: row ? admission.check(key, row.createdAt.getTime(), observed.memoryBytes) : { admitted: true },
      busyCreating: activity.creates.busyWithOthers(key),
      crashRestartTurnInMs: activity.crashRestarts.peek(key),
    },
  };
}

/** The schema, then what this controller's configuration allows. */
function validate(deps: ObserveDeps, raw: unknown): Validation<SessionSpec> {
  const spec = validateSpec(raw);
  if (!spec.ok) return spec;
  const problems = [
    ...hostPolicyProblems(spec.value, deps.allowedHostPaths ?? []),
    ...egressProblems(spec.value, deps.defaults.defaultEgress),
    ...(deps.ceilings ? ceilingProblems(raw, spec.value, deps.ceilings) : []),
  ];
  return problems.length > 0 ? { ok: false, problems } : spec;
}

/**
 * Whether the session's access token must be minted: it has none (first start, or a writer deleted
 * it to ask for a rotation), it expired, or it belongs to an earlier row of the same name. Or revoked:
 * the spec no longer asks for one.
 */
function tokenFacts(row: Row, spec: SessionSpec, now: number): TokenFacts | undefined {
  if (!spec.auth) return row.token ? { revoke: true } : undefined;
  const token = row.token?.sessionUid === row.uid ? row.token : undefined;
  if (!token) return { mint: row.status.containerId ? 'requested' : 'initial' };
  return token.expiresAt.getTime() <= now ? { mint: 'expired' } : undefined;
}

function desiredSession(
  row: Row,
  spec: Validation<SessionSpec>,
  extra: Pick<DesiredSession, 'containerHash' | 'token' | 'hadContainer'>,
): DesiredSession {
  const valid = spec.ok ? spec.value : undefined;
  return {
    name: row.name,
    uid: row.uid,
    generation: row.generation,
    deletionRequested: row.deletionRequestedAt !== null,
    hasFinalizer: row.finalizers.includes(CONTAINER_FINALIZER),
    spec,
    containerHash: extra.containerHash,
    restartCount: row.status.observedGeneration === row.generation ? (row.status.restartCount ?? 0) : 0,
    tokenExpiresAt: valid?.auth ? row.token?.expiresAt.getTime() : undefined,
    createdAt: row.createdAt.getTime(),
    generationChangedAt: row.generationChangedAt.getTime(),
    lastActivityAt: row.lastActivityAt?.getTime(),
    token: extra.token,
    hadContainer: extra.hadContainer || Boolean(row.status.containerId),
    stoppedContainerId: stoppedOnPurpose(row.status),
  };
}

/**
 * The container status last reported as stopped by the controller itself (its idle timeout, or
 * spec.state: Stopped). Status, not memory, so that another replica or a restarted controller
 * knows it too: starting that container again is a start, not the restart of a crash.
 */
function stoppedOnPurpose(status: Partial<SessionStatus>): string | undefined {
  const reason = findCondition(status, 'ContainerRunning')?.reason;
  return reason === 'IdleTimeout' || reason === 'Stopped' ? status.containerId : undefined;
}

function followImage(deps: ObserveDeps, key: string, spec: SessionSpec): Promise<ImageFacts> {
  return observeImage(deps.images, deps.rollout, {
    key,
    spec,
    containers: deps.inventory.forSession(key),
    allowedRegistries: deps.allowedRegistries,
  });
}

/** A deleted, deleting or invalid session follows no image and holds no rollout place. */
function unfollow(deps: ObserveDeps, key: string): ImageFacts {
  // Releasing also unfollows: per-image caches are pruned once no session uses the image.
  deps.images.release(key);
  deps.rollout.forget(key);
  return {};
}
