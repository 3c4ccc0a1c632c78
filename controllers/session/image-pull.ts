/**
 * One pull of an image onto a Docker host, and the back-off after a failed one.
 *
 * - The pull carries the registry's credentials, if it has any, and is timed.
 * - Its error quotes the registry, which may be the attacker's: it is redacted of the credentials and
 *   made safe for status (escaped, one line, cut short: registryText) before anyone sees it.
 * - A failure backs off per image (5 s doubling to 5 min); a registry's rate limit holds back the
 *   retry until the registry may be asked again.
 */
import type { Logger } from 'pino';
import type { ImageReference } from '../../crds/image-policy';
import type { DockerHost } from '../../src/docker/host';
import { pullImage, type PullProgress } from '../../src/docker/pull';
import type { Metrics } from '../../src/metrics/registry';
import { encodeRegistryAuth, type RegistryCredentials } from '../../src/registry/auth-header';
import { redactSecrets, serverAddressOf } from '../../src/registry/credentials';
import { registryText } from '../../src/registry/error-text';

export const PULL_BACKOFF = { baseMs: 5_000, maxMs: 300_000 };

/** How the daemon words a registry's 429 (Docker Hub: "toomanyrequests: You have reached your pull rate limit"). */
export const RATE_LIMITED_PULL = /toomanyrequests|too many requests|\b429\b/i;

/** The failed pulls of one image in a row: how many, when the next may start, and the last error. */
export interface PullFailure {
  attempts: number;
  retryAt: number;
  message: string;
}

/** What a pull needs of the image manager's options. */
export interface PullContext {
  host: DockerHost;
  /** Credentials for a registry host, or undefined for anonymous access. */
  credentials: (registry: string) => Promise<RegistryCredentials | undefined>;
  metrics: Metrics;
  logger: Logger;
}

export function pullBackoffMs(attempts: number): number {
  return Math.min(PULL_BACKOFF.maxMs, PULL_BACKOFF.baseMs * 2 ** Math.max(0, attempts - 1));
}

/**
 * Pulls `ref` onto the host. Throws an error whose message is fit for status: the credentials
 * redacted and the registry's words made safe (registryText).
 */
export async function pullWithCredentials(
  context: PullContext,
  ref: string,
  reference: ImageReference,
  onProgress: (progress: PullProgress) => void,
): Promise<void> {
  const credentials = await context.credentials(reference.registry);
  const header = credentials ? encodeRegistryAuth(credentials, serverAddressOf(reference.registry)) : undefined;
  const stop = context.metrics.imagePullDuration.startTimer();
  context.logger.info({ image: ref, authenticated: credentials !== undefined }, 'pulling image');
  try {
    await pullImage(context.host, ref, header, onProgress);
  } catch (error) {
    const message = redactSecrets((error as Error).message ?? String(error), [credentials?.password, header]);
    throw new Error(registryText(message));
  } finally {
    stop();
  }
}

/**
 * The failure after one more failed pull of an image: the back-off doubles with each attempt.
 * `rateLimited` tells the registry it refused us and says for how long it is to be left alone.
 */
export function nextPullFailure(
  previous: PullFailure | undefined,
  message: string,
  now: () => number,
  rateLimited: () => number,
): PullFailure {
  const attempts = (previous?.attempts ?? 0) + 1;
  let retryAt = now() + pullBackoffMs(attempts);
  // A rate limit is the registry's: its other images must wait too, and the digest checks.
  if (RATE_LIMITED_PULL.test(message)) retryAt = Math.max(retryAt, now() + rateLimited());
  return { attempts, retryAt, message };
}
