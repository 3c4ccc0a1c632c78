/**
 * Where images meet the reconcile: before planning, whether a followed tag moved and whether the
 * rollout would give the session its turn (observeImage, rolloutFacts), and whether the registry is
 * allowed at all; right after planning, the rollout place claimed (claimRollout). The image itself is
 * made present by the create intent (execute/create.ts). Also the credentials lookup the image
 * manager is given.
 */
import type { Logger } from 'pino';
import type { SessionSpec } from '../../crds/session';
import {
  DEFAULT_POLL_INTERVAL_SECONDS,
  effectivePullPolicy,
  parseImageReference,
  pullReference,
} from '../../crds/image-policy';
import { LABELS } from '../../src/model/labels';
import type { RegistryCredentials } from '../../src/registry/auth-header';
import { pickCredentials, readDockerConfig } from '../../src/registry/credentials';
import type { Db } from '../../src/store/db';
import { readRegistryCredentials } from '../../src/store/registry-credentials';
import type { ImageManager } from './image';
import type { ObservedContainer } from '../../src/model/container';
import type { Plan } from './plan';
import type { ImageRollout } from './rollout';

/** What claimRollout took for the session: its batch place, or the wait of one not given its turn. */
export interface RolloutClaim {
  /** The rollout batch this recreate belongs to. */
  batch?: number;
  /** The tag moved and this session waits for its batch. */
  updatePending?: string;
}

/**
 * An image from a registry the operator did not allow is never pulled, never asked about, and never
 * started from, even when it is already on the host: credentials and digests go only where allowed.
 */
export function imageNotAllowed(
  image: string,
  allowed: readonly string[] | undefined,
): { reason: 'ImageNotAllowed'; message: string } | undefined {
  if (!allowed || allowed.length === 0) return undefined;
  const { registry } = parseImageReference(image);
  if (allowed.includes(registry.toLowerCase())) return undefined;
  return {
    reason: 'ImageNotAllowed',
    message: `image ${image} is from registry ${registry}, which this controller does not allow (SESSIONCTL_ALLOWED_REGISTRIES: ${allowed.join(', ')}); use an image from one of those`,
  };
}

/** What the image side knows before planning. */
export interface ImageFacts {
  /** The digest the followed tag points at on the host, when the session's container carries a digest to compare. */
  digest?: string;
  /** When to look at the tag again. */
  nextCheckInMs?: number;
}

/**
 * Observes, before planning, where the tag the session follows (imageUpdatePolicy: Poll) points now.
 * Whether the rollout would give the session its turn is asked later (rolloutFacts), in the same
 * synchronous stretch as the plan and the claim: across this function's await, other sessions' claims run.
 */
export async function observeImage(
  images: ImageManager,
  rollout: ImageRollout,
  input: { key: string; spec: SessionSpec; containers: ObservedContainer[]; allowedRegistries?: readonly string[] },
): Promise<ImageFacts> {
  const { key, spec } = input;
  if (
    spec.imageUpdatePolicy !== 'Poll' ||
    effectivePullPolicy(spec) === 'Never' ||
    imageNotAllowed(spec.image, input.allowedRegistries)
  ) {
    images.unfollow(key);
    rollout.forget(key);
    return {};
  }
  const { nextCheckInMs } = images.poll(
    key,
    spec.image,
    (spec.imagePollIntervalSeconds ?? DEFAULT_POLL_INTERVAL_SECONDS) * 1000,
  );
  if (!input.containers.some((container) => container.labels[LABELS.imageDigest] !== undefined))
    return { nextCheckInMs };
  return { nextCheckInMs, digest: await images.currentDigest(spec.image) };
}

/** For the plan's snapshot (DesiredSession.imageRollout): the tag's digest and the rollout's answer, claiming nothing. */
export function rolloutFacts(
  rollout: ImageRollout,
  input: { key: string; spec: SessionSpec; facts: ImageFacts },
): { digest: string; granted: boolean } | undefined {
  const { digest } = input.facts;
  return digest === undefined
    ? undefined
    : { digest, granted: rollout.peek(pullReference(input.spec.image), digest, input.key).granted };
}

/**
 * Claims what the plan decided about the rollout, right after planning and before any await: the
 * batch place of a recreate for the image, the wait of one that was not given its turn, or the end
 * of this session's update.
 */
export function claimRollout(
  rollout: ImageRollout,
  input: { key: string; spec: SessionSpec; plan: Plan; facts: ImageFacts },
): RolloutClaim {
  const { key, spec, plan, facts } = input;
  // A recreate for the image returns no primary: the container it replaces is the one on the old digest.
  const recreate = plan.actions.find((action) => action.type === 'create' && action.forImage);
  const container = recreate?.type === 'create' ? recreate.replaced : plan.primary;
  if (facts.digest === undefined || !container) return {};
  const ref = pullReference(spec.image);
  const label = container.labels[LABELS.imageDigest];
  const creatingAnyway = plan.actions.some((action) => action.type === 'create' && !action.forImage);
  if (label && label !== facts.digest && !creatingAnyway) {
    const decision = rollout.request(ref, facts.digest, key);
    return decision.granted ? { batch: decision.batch } : { updatePending: decision.message };
  }
  if (label && label === facts.digest && container.state === 'running') rollout.complete(ref, key);
  return {};
}

/**
 * Credentials for a registry host: the table first, then $DOCKER_CONFIG/config.json, read at each
 * lookup (lookups happen only for pulls and digest checks) so that edits need no restart. Each
 * warning about the file is logged once.
 */
export function credentialsLookup(
  db: Db,
  dockerConfigDir: string,
  logger: Logger,
): (registry: string) => Promise<RegistryCredentials | undefined> {
  const warned = new Set<string>();
  return async (registry) => {
    const table = await readRegistryCredentials(db);
    let file = new Map<string, RegistryCredentials>();
    try {
      const config = readDockerConfig(dockerConfigDir);
      file = config.auths;
      for (const warning of config.warnings) {
        if (warned.has(warning)) continue;
        warned.add(warning);
        logger.warn({ dockerConfig: dockerConfigDir }, warning);
      }
    } catch (error) {
      const message = (error as Error).message;
      if (!warned.has(message)) {
        warned.add(message);
        logger.warn({ dockerConfig: dockerConfigDir }, message);
      }
    }
    const picked = pickCredentials(registry, table, file);
    if (picked)
      logger.debug(
        { registry, source: picked.source, username: picked.credentials.username },
        'registry credentials found',
      );
    return picked?.credentials;
  };
}
