/**
 * What the image manager answers a session about its image (ImageManager.ensure): ready, with the
 * digest to record, or the reason it waits, the message its status shows, and when to look again.
 * People read these messages in `sessionctl get`: each says what is happening, and a failure what to check.
 */
import { describeProgress, type PullProgress } from '../../src/docker/pull';
import type { PullFailure } from './image-pull';

export type ImageWaitReason =
  'ImagePulling' | 'ImagePullFailed' | 'ImagePullBackOff' | 'ImageNotPresent' | 'ImageNotAllowed';

export type ImageState =
  { ready: true; digest: string } | { ready: false; reason: ImageWaitReason; message: string; requeueAfterMs?: number };

/** While a pull runs, waiting sessions refresh their status this often, to show its progress. */
export const PROGRESS_REFRESH_MS = 2_000;

/** imagePullPolicy: Never, and the image is not on the host. */
export function imageNotPresent(image: string, host: string): ImageState {
  return {
    ready: false,
    reason: 'ImageNotPresent',
    message: `image ${image} is not present on host ${host}, and imagePullPolicy is Never`,
    requeueAfterMs: 60_000,
  };
}

/** The registry asked us to wait (HTTP 429) for `blockedMs` more: no pull from it starts until then. */
export function registryRateLimited(registry: string, ref: string, blockedMs: number): ImageState {
  const seconds = Math.ceil(blockedMs / 1000);
  return {
    ready: false,
    reason: 'ImagePullBackOff',
    message: `registry ${registry} is rate limiting us: pull of image ${ref} waits; next attempt in ${seconds}s`,
    requeueAfterMs: Math.max(1_000, blockedMs),
  };
}

/** A pull of `ref` runs on `host` (progress so far), or, without a host, is about to. */
export function imagePulling(ref: string, running?: { host: string; progress?: PullProgress }): ImageState {
  return {
    ready: false,
    reason: 'ImagePulling',
    message: running
      ? `pulling image ${ref} on host ${running.host}: ${describeProgress(running.progress)}`
      : `pulling image ${ref}`,
    requeueAfterMs: PROGRESS_REFRESH_MS,
  };
}

/** The last pull of `ref` failed: the first failure is ImagePullFailed, later ones ImagePullBackOff. */
export function imagePullFailed(ref: string, failure: PullFailure, now: () => number): ImageState {
  const seconds = Math.max(1, Math.ceil((failure.retryAt - now()) / 1000));
  return {
    ready: false,
    reason: failure.attempts <= 1 ? 'ImagePullFailed' : 'ImagePullBackOff',
    message: `${failure.attempts <= 1 ? 'pull' : `back-off ${seconds}s pulling`} image ${ref} failed (attempt ${failure.attempts}): ${failure.message}; next attempt in ${seconds}s. Check that spec.image names an image that exists and the registry's credentials (sessionctl registry list)`,
    requeueAfterMs: Math.max(1_000, failure.retryAt - now()),
  };
}
