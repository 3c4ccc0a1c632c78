/** Image references, pull policies, pull back-off, local digests, rollout batches, and the planner's image recreate. */
import { claimRollout } from '../../controllers/session/image-wiring';
import { effectivePullPolicy, parseImageReference, pullReference } from '../../crds/image-policy';
import { validateSpec } from '../../crds/session';
import { localDigest } from '../../controllers/session/image';
import { pullBackoffMs } from '../../controllers/session/image-pull';
import { ImageRollout } from '../../controllers/session/rollout';
import { plan } from '../../controllers/session/plan';
import { LABELS, specHash } from '../../src/model/labels';

describe('image references', () => {
  test.each([
    ['busybox', { registry: 'docker.io', repository: 'library/busybox' }],
    ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['team/app:v1', { registry: 'docker.io', repository: 'team/app', tag: 'v1' }],
    ['127.0.0.1:5000/team/app:v1', { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    [
      'registry.example/a/b/c@sha256:' + 'a'.repeat(64),
      { registry: 'registry.example', repository: 'a/b/c', digest: 'sha256:' + 'a'.repeat(64) },
    ],
  ])('%s', (image, expected) => {
    expect(parseImageReference(image)).toEqual(expected);
  });

  test('pulls name a tag', () => {
    expect(pullReference('busybox')).toBe('busybox:latest');
    expect(pullReference('127.0.0.1:5000/app')).toBe('127.0.0.1:5000/app:latest');
    expect(pullReference('app:v1')).toBe('app:v1');
  });
});

describe('imagePullPolicy', () => {
  test('defaults as Kubernetes: Always for latest or no tag, else IfNotPresent', () => {
    expect(effectivePullPolicy({ image: 'busybox' })).toBe('Always');
    expect(effectivePullPolicy({ image: 'busybox:latest' })).toBe('Always');
    expect(effectivePullPolicy({ image: 'registry.example:5000/busybox' })).toBe('Always');
    expect(effectivePullPolicy({ image: 'busybox:1.36' })).toBe('IfNotPresent');
    expect(effectivePullPolicy({ image: `busybox@sha256:${'b'.repeat(64)}` })).toBe('IfNotPresent');
    expect(effectivePullPolicy({ image: 'busybox', imagePullPolicy: 'Never' })).toBe('Never');
  });

  test('the schema names a bad policy field', () => {
    const result = validateSpec({ image: 'busybox:1', imagePullPolicy: 'Sometimes', imagePollIntervalSeconds: 1 });
    expect(result.ok).toBe(false);
    const paths = !result.ok ? result.problems.map((problem) => problem.path) : [];
    expect(paths).toEqual(['spec.imagePullPolicy', 'spec.imagePollIntervalSeconds']);
  });

  test('pull policies do not change the spec hash: no recreate when one is set', () => {
    const plain = validateSpec({ image: 'busybox:1' });
    const withPolicy = validateSpec({
      image: 'busybox:1',
      imagePullPolicy: 'Always',
      imageUpdatePolicy: 'Poll',
      imagePollIntervalSeconds: 60,
    });
    expect(plain.ok && withPolicy.ok && specHash(plain.value) === specHash(withPolicy.value)).toBe(true);
  });
});

test('pull back-off: 5 s doubling to 5 min', () => {
  expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map(pullBackoffMs)).toEqual([
    5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000,
  ]);
});

test('the local digest is the repo digest of the same repository, else the image id', () => {
  const image = {
    id: 'sha256:id',
    repoDigests: ['other.example/team/app@sha256:other', '127.0.0.1:5000/team/app@sha256:mine'],
  };
  expect(localDigest(image, parseImageReference('127.0.0.1:5000/team/app:v1'))).toBe('sha256:mine');
  expect(localDigest(image, parseImageReference('sessionctl/base:dev'))).toBe('sha256:id');
  expect(localDigest({ id: 'sha256:x', repoDigests: ['busybox@sha256:hub'] }, parseImageReference('busybox:1'))).toBe(
    'sha256:hub',
  );
});

describe('rollout batches', () => {
  test('at most batchSize at a time, and the next batch only when the whole current one is done', () => {
    const woken: string[][] = [];
    const rollout = new ImageRollout({ batchSize: 2, wake: (sessions) => woken.push(sessions) });
    expect(rollout.request('app', 'd2', 'a')).toEqual({ granted: true, batch: 1 });
    expect(rollout.request('app', 'd2', 'b')).toEqual({ granted: true, batch: 1 });
    expect(rollout.request('app', 'd2', 'c')).toMatchObject({ granted: false });
    expect(rollout.request('app', 'd2', 'a')).toEqual({ granted: true, batch: 1 });
    rollout.complete('app', 'a');
    // A member finished: the batch takes no one new, even with room.
    expect(rollout.request('app', 'd2', 'd')).toMatchObject({ granted: false });
    expect(woken).toEqual([]);
    rollout.complete('app', 'b');
    expect(woken).toEqual([['c', 'd']]);
    expect(rollout.request('app', 'd2', 'd')).toEqual({ granted: true, batch: 2 });
    expect(rollout.request('app', 'd2', 'c')).toEqual({ granted: true, batch: 2 });
  });

  test('images roll independently; a deleted member does not hold its batch; a newer digest starts over', () => {
    const rollout = new ImageRollout({ batchSize: 1, wake: () => undefined });
    expect(rollout.request('app', 'd2', 'a')).toMatchObject({ granted: true });
    expect(rollout.request('other', 'd9', 'x')).toMatchObject({ granted: true });
    expect(rollout.request('app', 'd2', 'b')).toMatchObject({ granted: false });
    rollout.forget('a');
    expect(rollout.request('app', 'd2', 'b')).toMatchObject({ granted: true, batch: 2 });
    expect(rollout.request('app', 'd3', 'c')).toMatchObject({ granted: true, batch: 3 });
  });

  test('peek answers what request will, and claims nothing', () => {
    let now = 0;
    const rollout = new ImageRollout({ batchSize: 2, wake: () => undefined, stuckAfterMs: 1_000, now: () => now });
    const ask = (image: string, digest: string, session: string) => {
      const peeked = rollout.peek(image, digest, session);
      expect(rollout.peek(image, digest, session)).toEqual(peeked);
      expect(rollout.request(image, digest, session)).toEqual(peeked);
      return peeked;
    };
    expect(ask('app', 'd2', 'a')).toEqual({ granted: true, batch: 1 });
    expect(ask('app', 'd2', 'b')).toEqual({ granted: true, batch: 1 });
    expect(ask('app', 'd2', 'c')).toMatchObject({ granted: false });
    expect(ask('app', 'd2', 'a')).toEqual({ granted: true, batch: 1 });
    rollout.complete('app', 'a');
    rollout.complete('app', 'b');
    expect(ask('app', 'd2', 'c')).toEqual({ granted: true, batch: 2 });
    expect(ask('app', 'd3', 'd')).toEqual({ granted: true, batch: 3 });
    now = 2_000;
    expect(ask('app', 'd3', 'e')).toEqual({ granted: true, batch: 4 });
  });

  test('a stuck batch stops holding the rollout after stuckAfterMs', () => {
    let now = 0;
    const rollout = new ImageRollout({ batchSize: 1, wake: () => undefined, stuckAfterMs: 1_000, now: () => now });
    expect(rollout.request('app', 'd2', 'a')).toMatchObject({ granted: true });
    expect(rollout.request('app', 'd2', 'b')).toMatchObject({ granted: false });
    now = 1_001;
    expect(rollout.request('app', 'd2', 'b')).toMatchObject({ granted: true, batch: 2 });
  });
});

describe('plan: recreate for a moved image', () => {
  const spec = validateSpec({ image: 'registry.example/app:v1' });
  const value = spec.ok ? spec.value : (undefined as never);
  const container = {
    id: 'c1',
    name: 'sessionctl-alice',
    labels: {
      [LABELS.managedBy]: 'sessionctl',
      [LABELS.session]: 'alice',
      [LABELS.uid]: 'u1',
      [LABELS.specHash]: specHash(value),
      [LABELS.imageDigest]: 'sha256:old',
    },
    state: 'running' as const,
  };
  const input = (granted: boolean) => ({
    name: 'alice',
    desired: {
      name: 'alice',
      uid: 'u1',
      generation: 1,
      deletionRequested: false,
      hasFinalizer: true,
      spec,
      createdAt: 0,
      generationChangedAt: 0,
      imageRollout: { digest: 'sha256:new', granted },
    },
    containers: [container],
    restarts: { consecutive: 0 },
    now: 1_000,
    jitter: 0.5,
  });

  test('a current container is kept unless the rollout gave the session its turn', () => {
    expect(plan(input(false)).actions).toEqual([]);
    expect(plan(input(true)).actions).toEqual([{ type: 'create', start: true, replaced: container, forImage: true }]);
  });
});

describe('claimRollout', () => {
  const spec = validateSpec({ image: 'registry.example/app:v1', imageUpdatePolicy: 'Poll' });
  const value = spec.ok ? spec.value : (undefined as never);
  const onOld = {
    id: 'c1',
    name: 'sessionctl-alice',
    labels: { [LABELS.imageDigest]: 'sha256:old' },
    state: 'running' as const,
  };

  test('claims the batch place of a recreate for the image, and tells the wait of one the batch has no room for', () => {
    const rollout = new ImageRollout({ batchSize: 1, wake: () => undefined });
    const recreate = {
      actions: [{ type: 'create' as const, start: true, replaced: onOld, forImage: true }],
      holdsRoom: true,
    };
    expect(
      claimRollout(rollout, { key: 'alice', spec: value, plan: recreate, facts: { digest: 'sha256:new' } }),
    ).toEqual({ batch: 1 });
    expect(rollout.peek('registry.example/app:v1', 'sha256:new', 'bob')).toMatchObject({ granted: false });
    const kept = { actions: [], primary: { ...onOld, id: 'c2' }, holdsRoom: true };
    expect(
      claimRollout(rollout, { key: 'bob', spec: value, plan: kept, facts: { digest: 'sha256:new' } }),
    ).toMatchObject({ updatePending: expect.stringContaining('waits for its batch') });
  });
});
