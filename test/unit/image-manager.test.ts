/**
 * ImageManager's decisions: when a session can start from the local image, when it waits for a
 * pull, and when it backs off. The Docker host here is a real DockerHost over a fake Engine API
 * (image inspect and the pull stream, each held open until the test lets it go), and time is the
 * test's, so that back-off windows are exact and nothing sleeps.
 */
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import pino from 'pino';
import { ImageManager } from '../../controllers/session/image';
import { PULL_BACKOFF } from '../../controllers/session/image-pull';
import { parseImageReference } from '../../crds/image-policy';
import { DockerHost } from '../../src/docker/host';
import { createMetrics } from '../../src/metrics/registry';
import { RegistryClient } from '../../src/registry/client';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const REF = '127.0.0.1:5999/team/app:v1';
const IMAGE = { Id: 'sha256:local', RepoDigests: ['127.0.0.1:5999/team/app@sha256:old'] };

/** A fake Engine API: which images exist, and pulls the test ends by hand. */
class FakeEngine {
  present = true;
  inspects = 0;
  /** When set, inspects wait for it (to end a pull while a session looks). */
  inspectGate?: Deferred<void>;
  readonly pulls: PassThrough[] = [];

  readonly docker = {
    getImage: () => ({
      inspect: async () => {
        this.inspects++;
        // What the daemon would have answered when asked, even if the answer arrives later.
        const present = this.present;
        if (this.inspectGate) await this.inspectGate.promise;
        if (!present) throw Object.assign(new Error('(HTTP code 404) no such image'), { statusCode: 404 });
        return IMAGE;
      },
    }),
    createImage: async () => {
      const stream = new PassThrough();
      this.pulls.push(stream);
      return stream;
    },
  } as unknown as Dockerode;

  /** Ends the latest pull: with the daemon's error line, or as a success. */
  finishPull(error?: string): void {
    const stream = this.pulls[this.pulls.length - 1];
    if (error) stream.write(`${JSON.stringify({ errorDetail: { message: error }, error })}\n`);
    else stream.write(`${JSON.stringify({ id: 'layer1', status: 'Pull complete' })}\n`);
    stream.end();
  }
}

function setup(options: { digest?: string; headGate?: Promise<void> } = {}) {
  const engine = new FakeEngine();
  const metrics = createMetrics();
  const host = new DockerHost({
    name: 'test-host',
    docker: engine.docker,
    streams: engine.docker,
    metrics,
    concurrency: 8,
    timeoutMs: 30_000,
  });
  let now = 1_000_000;
  const heads: string[] = [];
  // The real client, on a scripted loopback registry that answers manifest HEADs with a digest.
  const registry = new RegistryClient({
    metrics,
    tokenTtlMs: 3_600_000,
    now: () => now,
    fetch: (async (url: string | URL) => {
      heads.push(String(url));
      if (options.headGate) await options.headGate;
      return new Response(null, { status: 200, headers: { 'Docker-Content-Digest': options.digest ?? 'sha256:old' } });
    }) as typeof fetch,
  });
  const woken: string[][] = [];
  const images = new ImageManager({
    host,
    registry,
    credentials: async () => undefined,
    metrics,
    logger: pino({ level: 'silent' }),
    pullConcurrency: 2,
    wake: (sessions) => woken.push(sessions),
    now: () => now,
  });
  return { engine, images, heads, woken, registry, advance: (ms: number) => (now += ms), metrics };
}

/** Lets promise chains (the pull queue, its bookkeeping) run to their end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A failed pull of REF: the image is absent, one session asks, the daemon refuses. */
/** A follower polls, its interval passes, and it polls again: the check of the tag is due. */
async function pollPastInterval(env: ReturnType<typeof setup>, intervalMs: number): Promise<void> {
  env.images.poll('follower', REF, intervalMs);
  env.advance(intervalMs);
  env.images.poll('follower', REF, intervalMs);
  await settle();
}

async function failOnePull(env: ReturnType<typeof setup>): Promise<void> {
  env.engine.present = false;
  expect(await env.images.ensure('first', REF, 'IfNotPresent')).toMatchObject({ ready: false, reason: 'ImagePulling' });
  await settle();
  env.engine.finishPull('manifest unknown');
  await settle();
}

describe('ImageManager.ensure', () => {
  test('a present image is ready for IfNotPresent and Never despite a recent pull failure', async () => {
    const env = setup();
    await failOnePull(env);
    expect(await env.images.ensure('other', REF, 'Always')).toMatchObject({ ready: false, reason: 'ImagePullFailed' });
    env.engine.present = true;
    for (const policy of ['IfNotPresent', 'Never'] as const) {
      expect(await env.images.ensure(`s-${policy}`, REF, policy)).toEqual({ ready: true, digest: 'sha256:old' });
    }
    expect(env.engine.pulls).toHaveLength(1);
  });

  test('a present image is ready for IfNotPresent while an update pull of its tag runs', async () => {
    const moved = setup({ digest: 'sha256:new' });
    expect(await moved.images.ensure('warm', REF, 'IfNotPresent')).toMatchObject({ ready: true });
    moved.images.poll('follower', REF, 60_000);
    moved.advance(61_000);
    moved.images.poll('follower', REF, 60_000);
    await settle();
    expect(moved.engine.pulls).toHaveLength(1);
    expect(await moved.images.ensure('new-session', REF, 'IfNotPresent')).toEqual({
      ready: true,
      digest: 'sha256:old',
    });
    // Always does wait for the running pull: it fetches the newest image of the tag.
    expect(await moved.images.ensure('always', REF, 'Always')).toMatchObject({ ready: false, reason: 'ImagePulling' });
    moved.engine.finishPull();
    await settle();
    expect(moved.woken.flat().sort()).toEqual(['always', 'follower']);
  });

  test('20 sessions asking at once make one inspect and one pull, and all are woken', async () => {
    const env = setup();
    env.engine.present = false;
    const names = Array.from({ length: 20 }, (_, i) => `s${i}`);
    const states = await Promise.all(names.map((name) => env.images.ensure(name, REF, 'IfNotPresent')));
    expect(states.every((state) => !state.ready && state.reason === 'ImagePulling')).toBe(true);
    await settle();
    expect(env.engine.inspects).toBe(1);
    expect(env.engine.pulls).toHaveLength(1);
    env.engine.present = true;
    env.engine.finishPull();
    await settle();
    expect(env.woken.flat().sort()).toEqual([...names].sort());
    expect(await env.images.ensure('s0', REF, 'IfNotPresent')).toEqual({ ready: true, digest: 'sha256:old' });
  });

  test('sessions arriving while the first pull runs join it without asking the daemon again', async () => {
    const env = setup();
    env.engine.present = false;
    await env.images.ensure('first', REF, 'IfNotPresent');
    await settle();
    const inspects = env.engine.inspects;
    for (const name of ['late-1', 'late-2'])
      expect(await env.images.ensure(name, REF, 'IfNotPresent')).toMatchObject({ reason: 'ImagePulling' });
    expect(env.engine.inspects).toBe(inspects);
    env.engine.finishPull();
    await settle();
    expect(env.woken.flat().sort()).toEqual(['first', 'late-1', 'late-2']);
  });

  test('a pull that fails while a session waits on the registry is backed off from, not retried at once', async () => {
    const head = deferred<void>();
    const env = setup({ digest: 'sha256:new', headGate: head.promise });
    expect(await env.images.ensure('warm', REF, 'IfNotPresent')).toMatchObject({ ready: true });
    // An Always session asks the registry; the tag moved, but its answer is slow.
    const asking = env.images.ensure('always', REF, 'Always');
    await settle();
    expect(env.heads).toHaveLength(1);
    // Meanwhile the image vanished from the host, and another session's pull of it fails.
    env.engine.present = false;
    env.images.forget(REF);
    expect(await env.images.ensure('other', REF, 'IfNotPresent')).toMatchObject({ reason: 'ImagePulling' });
    await settle();
    env.engine.finishPull('unauthorized: authentication required');
    await settle();
    head.resolve();
    expect(await asking).toMatchObject({
      ready: false,
      reason: 'ImagePullFailed',
      requeueAfterMs: PULL_BACKOFF.baseMs,
    });
    expect(env.engine.pulls).toHaveLength(1);
    // After the back-off, the next ask pulls again.
    env.advance(PULL_BACKOFF.baseMs);
    expect(await env.images.ensure('always', REF, 'Always')).toMatchObject({ reason: 'ImagePulling' });
    await settle();
    expect(env.engine.pulls).toHaveLength(2);
  });

  test('a look at the host that began before a pull ended is taken again, not believed', async () => {
    const env = setup();
    env.engine.present = false;
    await env.images.ensure('first', REF, 'IfNotPresent');
    await settle();
    // Never never joins a pull: it looks at the host, and the pull ends while it looks.
    env.engine.inspectGate = deferred<void>();
    const looking = env.images.ensure('never', REF, 'Never');
    await settle();
    env.engine.present = true;
    env.engine.finishPull();
    await settle();
    env.engine.inspectGate.resolve();
    env.engine.inspectGate = undefined;
    expect(await looking).toEqual({ ready: true, digest: 'sha256:old' });
    expect(env.engine.pulls).toHaveLength(1);
  });
});

describe('a rate-limited pull', () => {
  const OTHER = '127.0.0.1:5999/team/other:v1';

  test('blocks pulls of every image of that registry, and its digest checks, for the back-off', async () => {
    const env = setup();
    env.engine.present = false;
    await env.images.ensure('first', REF, 'IfNotPresent');
    await settle();
    env.engine.finishPull('toomanyrequests: You have reached your pull rate limit.');
    await settle();
    const other = await env.images.ensure('second', OTHER, 'IfNotPresent');
    expect(other).toEqual({
      ready: false,
      reason: 'ImagePullBackOff',
      message: `registry 127.0.0.1:5999 is rate limiting us: pull of image ${OTHER} waits; next attempt in 5s`,
      requeueAfterMs: 5_000,
    });
    expect(env.engine.pulls).toHaveLength(1);
    await expect(env.registry.resolveDigest(parseImageReference(OTHER))).rejects.toMatchObject({ code: 'RateLimited' });
    expect(env.heads).toEqual([]);
    env.advance(5_000);
    expect(await env.images.ensure('second', OTHER, 'IfNotPresent')).toMatchObject({ reason: 'ImagePulling' });
    await settle();
    expect(env.engine.pulls).toHaveLength(2);
  });

  test('any other failure stays with its image', async () => {
    const env = setup();
    await failOnePull(env);
    expect(await env.images.ensure('second', OTHER, 'IfNotPresent')).toMatchObject({ reason: 'ImagePulling' });
    await settle();
    expect(env.engine.pulls).toHaveLength(2);
  });
});

describe('ImageManager.poll', () => {
  test('a moved tag whose pull keeps failing is retried after the back-off, not every interval', async () => {
    const env = setup({ digest: 'sha256:new' });
    await pollPastInterval(env, 1_000);
    expect(env.engine.pulls).toHaveLength(1);
    env.engine.finishPull('manifest unknown');
    await settle();
    expect(env.woken).toHaveLength(1);
    // Polls every second of the 5 s back-off: no check, no pull, no wake.
    for (let second = 1; second < PULL_BACKOFF.baseMs / 1000; second++) {
      env.advance(1_000);
      const { nextCheckInMs } = env.images.poll('follower', REF, 1_000);
      expect(nextCheckInMs).toBeGreaterThanOrEqual(PULL_BACKOFF.baseMs - second * 1_000);
      await settle();
    }
    expect(env.engine.pulls).toHaveLength(1);
    expect(env.woken).toHaveLength(1);
    env.advance(1_000);
    env.images.poll('follower', REF, 1_000);
    await settle();
    expect(env.engine.pulls).toHaveLength(2);
  });

  test('a check whose HEAD ends inside a back-off does not pull, and moves the next check past it', async () => {
    const head = deferred<void>();
    const env = setup({ digest: 'sha256:new', headGate: head.promise });
    await pollPastInterval(env, 1_000);
    expect(env.heads).toHaveLength(1);
    // While the HEAD is out, a new session's pull of the same tag fails.
    await failOnePull(env);
    head.resolve();
    await settle();
    expect(env.engine.pulls).toHaveLength(1);
    expect(env.images.poll('follower', REF, 1_000).nextCheckInMs).toBe(PULL_BACKOFF.baseMs);
  });

  test('while the pull of a moved tag runs, followers are not asked back every second', async () => {
    const env = setup({ digest: 'sha256:new' });
    await pollPastInterval(env, 30_000);
    expect(env.engine.pulls).toHaveLength(1);
    env.advance(31_000);
    expect(env.images.poll('follower', REF, 30_000)).toEqual({ nextCheckInMs: 30_000 });
    expect(env.images.poll('other', REF, 30_000)).toEqual({ nextCheckInMs: 30_000 });
    env.engine.finishPull();
    await settle();
    expect(env.woken.flat().sort()).toEqual(['follower', 'other']);
  });
});

describe('ImageManager pruning', () => {
  const OTHER = '127.0.0.1:5999/team/other:v1';

  test('what is remembered of an image goes when its last session is released, not before', async () => {
    const env = setup();
    expect(await env.images.ensure('a', REF, 'IfNotPresent')).toMatchObject({ ready: true });
    expect(await env.images.ensure('b', REF, 'IfNotPresent')).toMatchObject({ ready: true });
    expect(env.images.cachedImageCount()).toBe(1);
    env.images.release('a');
    expect(env.images.cachedImageCount()).toBe(1);
    // Still remembered for b: no second inspect.
    expect(await env.images.ensure('b', REF, 'IfNotPresent')).toMatchObject({ ready: true });
    expect(env.engine.inspects).toBe(1);
    env.images.release('b');
    expect(env.images.cachedImageCount()).toBe(0);
  });

  test('a session moving to another image releases the old one; a failure is forgotten with it', async () => {
    const env = setup();
    await failOnePull(env);
    expect(env.images.cachedImageCount()).toBe(1);
    env.engine.present = true;
    expect(await env.images.ensure('first', OTHER, 'IfNotPresent')).toMatchObject({ ready: true });
    expect(env.images.cachedImageCount()).toBe(1);
    // REF's failure is gone: a new session on it pulls at once instead of waiting out the back-off.
    env.engine.present = false;
    expect(await env.images.ensure('again', REF, 'IfNotPresent')).toMatchObject({ reason: 'ImagePulling' });
    expect(env.engine.pulls).toHaveLength(2);
  });

  test('an image released during its pull is forgotten when the pull ends', async () => {
    const env = setup();
    env.engine.present = false;
    expect(await env.images.ensure('a', REF, 'IfNotPresent')).toMatchObject({ reason: 'ImagePulling' });
    await settle();
    env.images.release('a');
    expect(env.images.cachedImageCount()).toBe(0);
    env.engine.finishPull('manifest unknown');
    await settle();
    expect(env.images.cachedImageCount()).toBe(0);
  });

  test("a registry's pull error reaches the status message escaped, cut, and with what to do", async () => {
    const env = setup();
    env.engine.present = false;
    await env.images.ensure('a', REF, 'IfNotPresent');
    await settle();
    env.engine.finishPull(`denied: \u001b[2J\u001b]0;pwned\u0007${'A'.repeat(2000)}`);
    await settle();
    const state = await env.images.ensure('a', REF, 'IfNotPresent');
    expect(state).toMatchObject({ ready: false, reason: 'ImagePullFailed' });
    const message = (state as { message: string }).message;
    expect(message).not.toMatch(/[\u0000-\u001f]/);
    expect(message).toContain('denied: \\x1b[2J\\x1b]0;pwned\\x07AAA');
    expect(message).toMatch(/more characters cut\); next attempt in 5s\. Check that spec\.image names an image/);
    expect(message.length).toBeLessThan(600);
  });
});
