/**
 * Images on one Docker host: is the image a session needs there, and if not, one pull for everyone.
 *
 * - One pull per image per host: sessions that need the same image share the in-flight pull and are
 *   woken when it ends. Pulls have their own concurrency limit, apart from the host's API calls.
 * - A failed pull backs off per image (5 s doubling to 5 min: ./image-pull.ts), so that wrong
 *   credentials or a missing tag never make a hot loop, whatever the number of sessions waiting.
 * - Tag-to-digest checks (imagePullPolicy: Always, imageUpdatePolicy: Poll) are HEAD requests on the
 *   registry, shared per image, and a pull happens only when the digest differs from the local image.
 * - What is remembered per image (the local image, the registry's digest, failures, its token) goes
 *   when no session uses the image any more (`release`, or a session moving to another image).
 * - A pull error quotes the registry, which may be the attacker's: it reaches status escaped, on one
 *   line and cut short (registryText, in ./image-pull.ts).
 * Every promise started here is caught: a registry or daemon failure is data, never a crash.
 * What a waiting session is told is worded in ./image-state.ts.
 */
import PQueue from 'p-queue';
import { parseImageReference, pullReference, type ImageReference, type PullPolicy } from '../../crds/image-policy';
import { dockerStatusCode } from '../../src/docker/errors';
import type { PullProgress } from '../../src/docker/pull';
import { RegistryError, type RegistryClient } from '../../src/registry/client';
import { nextPullFailure, pullWithCredentials, type PullContext, type PullFailure } from './image-pull';
import { imageNotPresent, imagePullFailed, imagePulling, registryRateLimited, type ImageState } from './image-state';
import { ImageUsers } from './image-users';

export interface ImageManagerOptions extends PullContext {
  registry: RegistryClient;
  pullConcurrency: number;
  /** Queues sessions again: when a pull they wait for ends, or when a polled tag moved. */
  wake: (sessions: string[]) => void;
  now?: () => number;
}

/** How long a digest from a HEAD stays good for Always: sessions created together make one request. */
export const DIGEST_FRESH_MS = 10_000;

interface LocalImage {
  id: string;
  repoDigests: string[];
}

/** The repo digest the daemon recorded for this repository, else the image id: what the label holds. */
export function localDigest(image: LocalImage, reference: ImageReference): string {
  for (const entry of image.repoDigests) {
    const [name, digest] = entry.split('@');
    const parsed = parseImageReference(name);
    if (digest && parsed.registry === reference.registry && parsed.repository === reference.repository) return digest;
  }
  return image.id;
}

export class ImageManager {
  private readonly local = new Map<string, LocalImage>();
  private readonly pulls = new Map<string, { progress?: PullProgress; waiters: Set<string> }>();
  private readonly failures = new Map<string, PullFailure>();
  private readonly remote = new Map<string, { digest: string; at: number }>();
  private readonly checks = new Map<string, Promise<string>>();
  private readonly inspects = new Map<string, Promise<LocalImage | undefined>>();
  /** How many pulls of each image have ended, so that a look at the host can tell it is stale. */
  private readonly pullsEnded = new Map<string, number>();
  /** Polled images: when the next check is due, and which sessions follow the tag. */
  private readonly polls = new Map<string, { nextAt: number; sessions: Set<string> }>();
  private readonly users = new ImageUsers();
  private readonly pullQueue: PQueue;
  private readonly now: () => number;

  constructor(private readonly options: ImageManagerOptions) {
    this.pullQueue = new PQueue({ concurrency: options.pullConcurrency });
    this.now = options.now ?? Date.now;
  }

  /**
   * Whether `image` can be used for a new container now. Never blocks on a pull: the session waits
   * with ImagePulling and is woken when the pull ends.
   */
  async ensure(session: string, image: string, policy: PullPolicy): Promise<ImageState> {
    const ref = pullReference(image);
    const reference = parseImageReference(ref);
    this.use(session, ref);
    // A running pull of an image not known to be here is its first pull (an update pull starts only
    // after the local image was looked at, and so remembered): join it without asking the daemon, so
    // that sessions arriving during the pull see it, as many do when they are created together.
    if (policy !== 'Never' && this.pulls.has(ref) && !this.local.has(ref)) return this.joinPull(ref, session);
    // Otherwise the local image and the policy decide first: a failed or running pull of the same tag
    // (a Poll update, say) must not hold up a session that can start from the image already here.
    const local = await this.inspectSettled(ref);
    if (policy === 'Never') {
      return local
        ? { ready: true, digest: localDigest(local, reference) }
        : imageNotPresent(image, this.options.host.name);
    }
    if (local && (policy === 'IfNotPresent' || reference.digest))
      return { ready: true, digest: localDigest(local, reference) };
    if (local) {
      // Always: a running pull fetches the tag's newest image anyway, so join it without asking.
      if (this.pulls.has(ref)) return this.joinPull(ref, session);
      // Otherwise pull only when the registry's digest differs from the local image's.
      const remote = await this.remoteDigest(ref, reference, DIGEST_FRESH_MS).catch((error: unknown) => {
        this.options.logger.warn(
          { image: ref, err: { message: (error as Error).message } },
          'could not resolve the image digest; using the local image',
        );
        return undefined;
      });
      if (remote === undefined || remote === localDigest(local, reference))
        return { ready: true, digest: localDigest(local, reference) };
    }
    // Synchronous from here on: the pull and failure maps are read after the last await, so that a
    // pull that ended (or failed) while we looked is joined or backed off from, never started again.
    return this.pullNeeded(ref, reference, session);
  }

  /** A pull is needed: join the running one, wait out a recent failure, or start one. */
  private pullNeeded(ref: string, reference: ImageReference, session: string): ImageState {
    if (this.pulls.has(ref)) return this.joinPull(ref, session);
    const failure = this.failures.get(ref);
    if (failure && failure.retryAt > this.now()) return imagePullFailed(ref, failure, this.now);
    // The registry rate-limited a pull (of any of its images) or a digest check: no pull there yet.
    const blocked = this.options.registry.blockedFor(reference.registry);
    if (blocked !== undefined) return registryRateLimited(reference.registry, ref, blocked);
    this.startPull(ref, reference);
    return this.joinPull(ref, session);
  }

  /**
   * imageUpdatePolicy: Poll. Starts a digest check of the tag when one is due (in the background,
   * shared by every session on the image) and says when the next is due. A moved tag is pulled and
   * the sessions on it are woken, to be recreated in batches.
   */
  poll(session: string, image: string, intervalMs: number): { nextCheckInMs: number } {
    const ref = pullReference(image);
    this.use(session, ref);
    this.unfollow(session, ref);
    const entry = this.polls.get(ref) ?? { nextAt: this.now() + intervalMs, sessions: new Set<string>() };
    entry.sessions.add(session);
    this.polls.set(ref, entry);
    // A failing pull of the tag: no check (and so no pull) before its back-off ends.
    const failure = this.failures.get(ref);
    if (failure && failure.retryAt > entry.nextAt) entry.nextAt = failure.retryAt;
    const busy = this.checks.has(ref) || this.pulls.has(ref);
    if (entry.nextAt <= this.now() && !busy) {
      entry.nextAt = this.now() + intervalMs;
      this.checkForUpdate(ref).catch((error: unknown) =>
        this.options.logger.warn(
          { image: ref, err: { message: (error as Error).message } },
          'image update check failed',
        ),
      );
    }
    // Due, but a check or pull of the tag is running: the pull's end wakes every follower, so asking
    // again every second would only rewrite each follower's status once a second for nothing.
    if (busy && entry.nextAt <= this.now()) return { nextCheckInMs: intervalMs };
    return { nextCheckInMs: Math.max(1_000, entry.nextAt - this.now()) };
  }

  /** The digest the image has on the host now, from the cache; undefined when not known yet. */
  async currentDigest(image: string): Promise<string | undefined> {
    const ref = pullReference(image);
    const local = await this.inspect(ref);
    return local && localDigest(local, parseImageReference(ref));
  }

  /** A session that no longer follows any image (deleted, or moved to another image). */
  unfollow(session: string, exceptRef?: string): void {
    for (const [ref, entry] of this.polls) {
      if (ref === exceptRef) continue;
      entry.sessions.delete(session);
      if (entry.sessions.size === 0) this.polls.delete(ref);
    }
  }

  /**
   * The session uses no image any more (deleted, or its spec invalid): what is remembered of an image
   * no other session uses is forgotten.
   */
  release(session: string): void {
    this.unfollow(session);
    const orphaned = this.users.release(session);
    if (orphaned !== undefined) this.prune(orphaned);
  }

  /** How many images something is remembered of; for tests of the pruning. */
  cachedImageCount(): number {
    const maps = [this.local, this.failures, this.remote, this.pullsEnded, this.polls];
    return new Set([...maps.flatMap((map) => [...map.keys()]), ...this.users.images()]).size;
  }

  private use(session: string, ref: string): void {
    const orphaned = this.users.use(session, ref);
    if (orphaned === undefined) return;
    this.unfollow(session, ref);
    this.prune(orphaned);
  }

  /**
   * Forgets an image no session uses. One still being pulled, checked or inspected is pruned when that
   * ends (the pull's bookkeeping calls this again), so that nothing in flight writes into a pruned entry.
   */
  private prune(ref: string): void {
    if (this.users.inUse(ref) || this.pulls.has(ref) || this.checks.has(ref) || this.inspects.has(ref)) return;
    for (const map of [this.local, this.failures, this.remote, this.pullsEnded, this.polls]) map.delete(ref);
    const { registry, repository } = parseImageReference(ref);
    const inUse = this.users.images().map((other) => parseImageReference(other));
    if (inUse.some((other) => other.registry === registry && other.repository === repository)) return;
    this.options.registry.forgetRepository(
      registry,
      repository,
      inUse.some((other) => other.registry === registry),
    );
  }

  /** The daemon said the image is gone (removed behind our back): look again next time. */
  forget(image: string): void {
    this.local.delete(pullReference(image));
  }

  private async checkForUpdate(ref: string): Promise<void> {
    const reference = parseImageReference(ref);
    const remote = await this.remoteDigest(ref, reference, 0).catch((error: unknown) => {
      if (error instanceof RegistryError && error.retryAfterMs !== undefined) {
        const entry = this.polls.get(ref);
        if (entry) entry.nextAt = Math.max(entry.nextAt, this.now() + error.retryAfterMs);
      }
      throw error;
    });
    const local = await this.inspectSettled(ref);
    if (local && localDigest(local, reference) === remote) return;
    if (this.pulls.has(ref)) return;
    // A pull of the tag failed lately: retrying now, every interval, would be the hot loop the
    // back-off exists to prevent, and would wake every follower each time.
    const failure = this.failures.get(ref);
    if (failure && failure.retryAt > this.now()) {
      const entry = this.polls.get(ref);
      if (entry) entry.nextAt = Math.max(entry.nextAt, failure.retryAt);
      return;
    }
    this.options.logger.info({ image: ref, digest: remote }, 'image tag moved; pulling');
    this.startPull(ref, reference);
  }

  /** One HEAD per image at a time; a digest younger than maxAgeMs is reused. */
  private remoteDigest(ref: string, reference: ImageReference, maxAgeMs: number): Promise<string> {
    const cached = this.remote.get(ref);
    if (cached && this.now() - cached.at < maxAgeMs) return Promise.resolve(cached.digest);
    let check = this.checks.get(ref);
    if (!check) {
      check = (async () => {
        const credentials = await this.options.credentials(reference.registry);
        const digest = await this.options.registry.resolveDigest(reference, credentials);
        this.remote.set(ref, { digest, at: this.now() });
        return digest;
      })().finally(() => {
        this.checks.delete(ref);
        this.prune(ref);
      });
      this.checks.set(ref, check);
    }
    return check;
  }

  /**
   * The local image, looked at again when a pull of it ended while we looked: a "not present" read
   * before a successful pull must not start a second one.
   */
  private async inspectSettled(ref: string): Promise<LocalImage | undefined> {
    for (let attempt = 0; ; attempt++) {
      const before = this.pullsEnded.get(ref) ?? 0;
      const local = await this.inspect(ref);
      if ((this.pullsEnded.get(ref) ?? 0) === before || attempt >= 2) return local;
    }
  }

  /** One image inspect per image at a time, shared by every session that asks meanwhile. */
  private inspect(ref: string): Promise<LocalImage | undefined> {
    const cached = this.local.get(ref);
    if (cached) return Promise.resolve(cached);
    let running = this.inspects.get(ref);
    if (!running) {
      const before = this.pullsEnded.get(ref) ?? 0;
      running = (async () => {
        try {
          const info = await this.options.host.call('image_inspect', () =>
            this.options.host.docker.getImage(ref).inspect(),
          );
          const image = { id: info.Id, repoDigests: info.RepoDigests ?? [] };
          // An answer from before a pull ended may name the old image: not worth remembering.
          if ((this.pullsEnded.get(ref) ?? 0) === before) this.local.set(ref, image);
          return image;
        } catch (error) {
          if (dockerStatusCode(error) === 404) return undefined;
          throw error;
        }
      })().finally(() => {
        this.inspects.delete(ref);
        this.prune(ref);
      });
      this.inspects.set(ref, running);
    }
    return running;
  }

  private joinPull(ref: string, session: string): ImageState {
    const pull = this.pulls.get(ref);
    if (!pull) {
      const failure = this.failures.get(ref);
      return failure ? imagePullFailed(ref, failure, this.now) : imagePulling(ref);
    }
    pull.waiters.add(session);
    return imagePulling(ref, { host: this.options.host.name, progress: pull.progress });
  }

  /** Starts the one pull of `ref` on this host; waiters are woken when it ends, either way. */
  private startPull(ref: string, reference: ImageReference): void {
    if (this.pulls.has(ref)) return;
    const pull: { progress?: PullProgress; waiters: Set<string> } = { waiters: new Set() };
    this.pulls.set(ref, pull);
    const { metrics, logger } = this.options;
    void this.pullQueue
      .add(() => pullWithCredentials(this.options, ref, reference, (progress) => (pull.progress = progress)))
      .then(
        () => {
          metrics.imagePulls.inc({ result: 'success' });
          this.failures.delete(ref);
          this.local.delete(ref);
          this.remote.delete(ref);
          logger.info({ image: ref }, 'image pulled');
        },
        (error: unknown) => {
          metrics.imagePulls.inc({ result: 'failure' });
          const failure = nextPullFailure(this.failures.get(ref), (error as Error).message, this.now, () =>
            this.options.registry.rateLimited(reference.registry),
          );
          this.failures.set(ref, failure);
          logger.warn(
            { image: ref, attempts: failure.attempts, err: { message: failure.message } },
            'image pull failed',
          );
        },
      )
      .finally(() => {
        this.pulls.delete(ref);
        this.pullsEnded.set(ref, (this.pullsEnded.get(ref) ?? 0) + 1);
        const woken = new Set([...pull.waiters, ...(this.polls.get(ref)?.sessions ?? [])]);
        if (woken.size > 0) this.options.wake([...woken]);
        // Every session that wanted the image went away during the pull.
        this.prune(ref);
      })
      .catch((error: unknown) => logger.error({ image: ref, err: error }, 'image pull bookkeeping failed'));
  }
}
