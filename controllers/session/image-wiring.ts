/**
 * Where images meet the reconcile: before a plan's create runs, the image must be on the host (or
 * the session waits with ImagePulling, ImagePullFailed...); a session that follows its tag
 * (imageUpdatePolicy: Poll) whose container runs an older digest is recreated when the rollout
 * gives it a place in a batch. Also the credentials lookup the image manager is given.
 */
import type { Logger } from 'pino';
import type { SessionSpec } from '../../crds/session';
import { DEFAULT_POLL_INTERVAL_SECONDS, effectivePullPolicy, pullReference } from '../../crds/image-policy';
import { LABELS } from '../../src/model/labels';
import type { RegistryCredentials } from '../../src/registry/auth-header';
import { pickCredentials, readDockerConfig } from '../../src/registry/credentials';
import type { Db } from '../../src/store/db';
import { readRegistryCredentials } from '../../src/store/registry-credentials';
import type { ImageManager, ImageWaitReason } from './image';
import type { Plan } from './plan';
import type { ImageRollout } from './rollout';

export interface ImageOutcome {
  plan: Plan;
  /** The digest a container created now gets as its label. */
  digest?: string;
  /** Why the create waits for the image. */
  waiting?: { reason: ImageWaitReason; message: string };
  /** The tag moved and this session waits for its batch. */
  updatePending?: string;
  /** The rollout batch this recreate belongs to. */
  batch?: number;
  requeueAfterMs?: number;
}

export interface ImageStepInput {
  key: string;
  spec: SessionSpec;
  plan: Plan;
  /** Plans again, this time recreating the container for the new image. */
  replanForImage: () => Plan;
}

export async function imageStep(images: ImageManager, rollout: ImageRollout, input: ImageStepInput): Promise<ImageOutcome> {
  const { key, spec } = input;
  const policy = effectivePullPolicy(spec);
  const ref = pullReference(spec.image);
  const outcome: ImageOutcome = { plan: input.plan };
  const timers: number[] = [];
  const container = input.plan.primary;
  const creating = input.plan.actions.some((action) => action.type === 'create');

  if (spec.imageUpdatePolicy === 'Poll' && policy !== 'Never') {
    timers.push(images.poll(key, spec.image, (spec.imagePollIntervalSeconds ?? DEFAULT_POLL_INTERVAL_SECONDS) * 1000).nextCheckInMs);
    const label = container?.labels[LABELS.imageDigest];
    const current = container && label ? await images.currentDigest(spec.image) : undefined;
    if (container && label && current && label !== current && !creating) {
      const decision = rollout.request(ref, current, key);
      if (decision.granted) {
        outcome.plan = input.replanForImage();
        outcome.batch = decision.batch;
      } else {
        outcome.updatePending = decision.message;
        timers.push(10_000);
      }
    } else if (container && label && label === current && container.state === 'running') {
      rollout.complete(ref, key);
    }
  } else {
    images.unfollow(key);
    rollout.forget(key);
  }

  const create = outcome.plan.actions.find((action) => action.type === 'create');
  if (create) {
    const state = await images.ensure(key, spec.image, policy);
    if (state.ready) {
      outcome.digest = state.digest;
    } else {
      // The old container (if any) keeps running until the new image is there.
      outcome.plan = { ...outcome.plan, actions: outcome.plan.actions.filter((action) => action !== create) };
      outcome.waiting = { reason: state.reason, message: state.message };
      if (state.requeueAfterMs !== undefined) timers.push(state.requeueAfterMs);
    }
  }
  if (timers.length > 0) outcome.requeueAfterMs = Math.min(...timers);
  return outcome;
}

/**
 * Credentials for a registry host: the table first, then $DOCKER_CONFIG/config.json, read at each
 * lookup (lookups happen only for pulls and digest checks) so that edits need no restart. Each
 * warning about the file is logged once.
 */
export function credentialsLookup(db: Db, dockerConfigDir: string, logger: Logger): (registry: string) => Promise<RegistryCredentials | undefined> {
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
    if (picked) logger.debug({ registry, source: picked.source, username: picked.credentials.username }, 'registry credentials found');
    return picked?.credentials;
  };
}
