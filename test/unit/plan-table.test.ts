/**
 * The planner as a table: one snapshot in, the intents and the waiting reason out. Every intent, every
 * reason an intent carries and every waiting reason appears at least once; the last test fails (at
 * compile time, through the Record types) when plan.ts grows a kind this table does not cover.
 */
import { validateSpec, type SessionSpecInput } from '../../crds/session';
import {
  CRASH_RESTART_DEFERRAL,
  LONGEST_REQUEUE_MS,
  plan,
  type Action,
  type DeferralReason,
  type DesiredSession,
  type ExpireReason,
  type HostFacts,
  type Plan,
  type PlanInput,
  type RemoveReason,
  type StopReason,
  type TokenMintReason,
  type Waiting,
} from '../../controllers/session/plan';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, MANAGED_BY, specHash } from '../../src/model/labels';

const UID = '11111111-1111-4111-8111-111111111111';
const OTHER_UID = '22222222-2222-4222-8222-222222222222';
const NOW = 10_000_000;
const base: SessionSpecInput = { image: 'sessionctl/base:dev', env: { MODE: 'dev' } };
const withAuth: SessionSpecInput = { ...base, auth: {} };

function desired(spec: SessionSpecInput = base, overrides: Partial<DesiredSession> = {}): DesiredSession {
  return {
    name: 'alice',
    uid: UID,
    generation: 1,
    deletionRequested: false,
    hasFinalizer: true,
    spec: validateSpec(spec),
    ...overrides,
  };
}

/** A container made from `spec` (for its hash), in the given state. */
function container(
  overrides: Partial<ObservedContainer> = {},
  spec: SessionSpecInput = base,
  uid = UID,
): ObservedContainer {
  const valid = validateSpec(spec);
  if (!valid.ok) throw new Error('a table container needs a valid spec');
  return {
    id: 'c1',
    name: 'sessionctl-alice',
    labels: {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.session]: 'alice',
      [LABELS.uid]: uid,
      [LABELS.specHash]: specHash(valid.value),
      [LABELS.installation]: 'install-1',
    },
    state: 'running',
    ...overrides,
  };
}

/** A current container made from digest sha256:old of the followed tag. */
function onOldDigest(): ObservedContainer {
  const made = container();
  made.labels[LABELS.imageDigest] = 'sha256:old';
  return made;
}

const exited = (exitCode: number, extra: Partial<ObservedContainer> = {}, spec: SessionSpecInput = base) =>
  container({ state: 'exited', exitCode, startedAt: NOW - 5_000, finishedAt: NOW - 4_000, ...extra }, spec);
/** The host's side of the snapshot: room, not busy, a free turn, unless a row says otherwise. */
const hostWith = (facts: Partial<HostFacts>): HostFacts => ({
  admission: { admitted: true },
  busyCreating: false,
  crashRestartTurnInMs: 0,
  ...facts,
});
const refuse = (reason: 'InsufficientMemory' | 'MaxSessionsReached') =>
  hostWith({ admission: { admitted: false, reason, message: `${reason} on host default` } });

/** Intents in one line each, so that a row of the table reads as what the planner decided. */
function describeAction(action: Action): string {
  switch (action.type) {
    case 'remove':
      return `remove ${action.container.id} (${action.reason})`;
    case 'create':
      return `create${action.start ? '+start' : ''}${action.replaced ? ` replacing ${action.replaced.id}` : ''}${action.forImage ? ' for image' : ''}${action.missing ? ' (missing)' : ''}`;
    case 'mintToken':
      return `mintToken (${action.reason})`;
    case 'start':
    case 'observePorts':
      return `${action.type} ${action.container.id}`;
    case 'restart':
      return `restart ${action.container.id}${action.oomKilled ? ' oom' : ''}${action.unhealthy ? ' unhealthy' : ''}${action.exitCode !== undefined ? ` exit ${action.exitCode}` : ''}${action.crashLoop ? ` crashLoop=${action.crashLoop}` : ''}`;
    case 'stop':
      return `stop ${action.container.id} (${action.reason})`;
    case 'expire':
      return `expire (${action.reason})`;
    case 'removeVolumes':
      return `removeVolumes ${action.volumes.join(',')}`;
    case 'unplace':
      return `unplace (${action.reason})`;
    case 'addFinalizer':
    case 'finalize':
    case 'revokeToken':
      return action.type;
  }
}

interface Outcome {
  intents: string[];
  holdsRoom: boolean;
  waiting?: string;
  requeueAfterMs?: number;
  restartLimitExceeded?: true;
}

function outcome(result: Plan): Outcome {
  const waiting = result.waiting
    ? `${result.waiting.reason}${'deferred' in result.waiting && result.waiting.deferred ? `/${result.waiting.deferred}` : ''}`
    : undefined;
  return {
    intents: result.actions.map(describeAction),
    holdsRoom: result.holdsRoom,
    ...(waiting ? { waiting } : {}),
    ...(result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : {}),
    ...(result.restartLimitExceeded ? { restartLimitExceeded: true as const } : {}),
  };
}

type Row = [title: string, snapshot: Partial<PlanInput>, expected: Outcome];

const crashLoop = (restarts: PlanInput['restarts']) => ({ containers: [exited(1)], restarts });
/** One earlier restart 2 s ago: the 1 s backoff (jitter 0.5 means exactly 1 s) is over, so the restart is due. */
const due = { consecutive: 1, lastRestartAt: NOW - 2_000 };

const TABLE: Row[] = [
  // Rows and ownership.
  [
    'no row: every container is an orphan',
    { desired: undefined, containers: [container({ id: 'a' }), container({ id: 'b', state: 'exited' })] },
    { intents: ['remove a (orphan)', 'remove b (orphan)'], holdsRoom: false },
  ],
  [
    'a container of an earlier row with the same name goes, ours is made',
    { containers: [container({ id: 'old' }, base, OTHER_UID)] },
    { intents: ['remove old (stale-uid)', 'create+start'], holdsRoom: true },
  ],
  [
    'a dead container goes (or is set aside) and a fresh one is made',
    { containers: [container({ id: 'dead', state: 'dead', exitCode: 137 })] },
    { intents: ['remove dead (dead)', 'create+start'], holdsRoom: true },
  ],
  [
    "a container set aside as stuck is no longer the session's",
    { containers: [container({ id: 'abcdef0123456789', name: 'sessionctl-alice.stuck-abcdef012345', state: 'dead' })] },
    { intents: ['create+start'], holdsRoom: true },
  ],
  [
    "an orphan without an installation label may be another installation's: left alone",
    {
      desired: undefined,
      containers: [
        container({
          id: 'legacy',
          labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: 'alice', [LABELS.uid]: UID },
        }),
      ],
    },
    { intents: [], holdsRoom: false },
  ],
  [
    'duplicates: keep the deterministic name, remove the rest',
    { containers: [container({ id: 'dup', name: 'other' }), container({ id: 'keep' })] },
    { intents: ['remove dup (duplicate)'], holdsRoom: true },
  ],
  // Deletion.
  [
    'deletion: remove the container, its volumes (Delete), then the finalizer',
    {
      desired: desired(
        { ...base, volumes: [{ name: 'home', mountPath: '/home' }], volumeReclaimPolicy: 'Delete' },
        { deletionRequested: true },
      ),
      containers: [container()],
    },
    { intents: ['remove c1 (deleting)', 'removeVolumes home', 'finalize'], holdsRoom: false },
  ],
  [
    'deletion without a finalizer: nothing to release',
    { desired: desired(base, { deletionRequested: true, hasFinalizer: false }), containers: [container()] },
    { intents: ['remove c1 (deleting)'], holdsRoom: false },
  ],
  // Eviction (a drain moves the session to another host).
  [
    'eviction: the container goes first, then the session leaves the host',
    { desired: desired(base, { evicting: { reason: 'Drain' } }), containers: [container()] },
    { intents: ['remove c1 (evicting)', 'unplace (Drain)'], holdsRoom: false, waiting: 'Evicting' },
  ],
  [
    'eviction with no container left: only the placement goes',
    { desired: desired(base, { evicting: { reason: 'Drain' } }), containers: [] },
    { intents: ['unplace (Drain)'], holdsRoom: false, waiting: 'Evicting' },
  ],
  [
    'eviction of a session being deleted: the deletion wins, it is not placed again',
    {
      desired: desired(base, { evicting: { reason: 'Drain' }, deletionRequested: true }),
      containers: [container()],
    },
    { intents: ['remove c1 (deleting)', 'finalize'], holdsRoom: false },
  ],
  // Invalid spec and lifetimes.
  [
    'invalid spec: the last good container keeps running',
    { desired: desired({ image: 'sessionctl/base:dev', resources: { memory: 'lots' } }), containers: [container()] },
    { intents: [], holdsRoom: true },
  ],
  [
    'max lifetime reached: expire',
    { desired: desired({ ...base, maxLifetimeSeconds: 60 }, { createdAt: NOW - 61_000 }), containers: [container()] },
    { intents: ['expire (MaxLifetimeExceeded)'], holdsRoom: false },
  ],
  [
    'idle with idleAction Delete: expire',
    {
      desired: desired({ ...base, idleTimeoutSeconds: 60, idleAction: 'Delete' }, { createdAt: NOW - 61_000 }),
      containers: [container()],
    },
    { intents: ['expire (IdleTimeout)'], holdsRoom: false },
  ],
  [
    'idle with idleAction Stop: stop, and say why',
    { desired: desired({ ...base, idleTimeoutSeconds: 60 }, { createdAt: NOW - 61_000 }), containers: [container()] },
    { intents: ['stop c1 (IdleTimeout)'], holdsRoom: false, waiting: 'IdleTimeout' },
  ],
  // Creating.
  ['no container: create and start', {}, { intents: ['create+start'], holdsRoom: true }],
  [
    'the container it had is gone: create again, counted as drift',
    { desired: desired(base, { hadContainer: true }) },
    { intents: ['create+start (missing)'], holdsRoom: true },
  ],
  [
    'an image from a registry the operator does not allow: nothing is created',
    { desired: desired(base, { imageRefused: { reason: 'ImageNotAllowed', message: 'not allowed' } }) },
    { intents: [], holdsRoom: false },
  ],
  [
    'a changed spec whose image is not allowed: the old container runs on',
    {
      desired: desired(
        { ...base, env: { MODE: 'prod' } },
        { imageRefused: { reason: 'ImageNotAllowed', message: 'x' } },
      ),
      containers: [container()],
    },
    { intents: [], holdsRoom: true },
  ],
  // The access token: minted before the create that carries its id in the container's hash.
  [
    'auth and no token yet: mint it, then create',
    { desired: desired(withAuth, { token: { mint: 'initial' } }) },
    { intents: ['mintToken (initial)', 'create+start'], holdsRoom: true },
  ],
  [
    'the token expired: mint a new one and replace the container that has the old one',
    {
      desired: desired(withAuth, { token: { mint: 'expired' }, tokenExpiresAt: NOW - 1 }),
      containers: [container({}, withAuth)],
    },
    { intents: ['mintToken (expired)', 'create+start replacing c1'], holdsRoom: true },
  ],
  [
    'a writer deleted the token to ask for a rotation: mint and replace',
    { desired: desired(withAuth, { token: { mint: 'requested' } }), containers: [container({}, withAuth)] },
    { intents: ['mintToken (requested)', 'create+start replacing c1'], holdsRoom: true },
  ],
  [
    'a valid token: its expiry is a timer',
    { desired: desired(withAuth, { tokenExpiresAt: NOW + 5_000 }), containers: [container({}, withAuth)] },
    { intents: [], holdsRoom: true, requeueAfterMs: 5_000 },
  ],
  [
    'the spec no longer asks for a token: revoke the stored one',
    { desired: desired(base, { token: { revoke: true } }), containers: [container()] },
    { intents: ['revokeToken'], holdsRoom: true },
  ],
  [
    'no finalizer yet: claim it before creating',
    { desired: desired(base, { hasFinalizer: false }) },
    { intents: ['addFinalizer', 'create+start'], holdsRoom: true },
  ],
  [
    'Stopped and no container: create without starting',
    { desired: desired({ ...base, state: 'Stopped' }) },
    { intents: ['create'], holdsRoom: false },
  ],
  [
    'spec hash changed: recreate',
    { containers: [container({}, { ...base, env: { MODE: 'prod' } })] },
    { intents: ['create+start replacing c1'], holdsRoom: true },
  ],
  [
    'the followed tag moved and the rollout gives this session its turn: recreate for the image',
    { desired: desired(base, { imageRollout: { digest: 'sha256:new', granted: true } }), containers: [onOldDigest()] },
    { intents: ['create+start replacing c1 for image'], holdsRoom: true },
  ],
  [
    'the followed tag moved but the batch is full: keep the container',
    { desired: desired(base, { imageRollout: { digest: 'sha256:new', granted: false } }), containers: [onOldDigest()] },
    { intents: [], holdsRoom: true },
  ],
  [
    "the container already runs the tag's digest: nothing to roll out",
    { desired: desired(base, { imageRollout: { digest: 'sha256:old', granted: true } }), containers: [onOldDigest()] },
    { intents: [], holdsRoom: true },
  ],
  [
    'no room for a new session (memory): wait unscheduled',
    { host: refuse('InsufficientMemory') },
    { intents: [], holdsRoom: false, waiting: 'InsufficientMemory' },
  ],
  // Running.
  ['running and matching: adopt, nothing to do', { containers: [container()] }, { intents: [], holdsRoom: true }],
  [
    'running but Stopped is desired: stop',
    { desired: desired({ ...base, state: 'Stopped' }), containers: [container()] },
    { intents: ['stop c1 (Requested)'], holdsRoom: false },
  ],
  [
    'running with ports not yet read: observe them',
    {
      desired: desired({ ...base, ports: [{ name: 'http', containerPort: 8080 }] }),
      containers: [container({}, { ...base, ports: [{ name: 'http', containerPort: 8080 }] })],
    },
    { intents: ['observePorts c1'], holdsRoom: true },
  ],
  [
    'unhealthy: restart at once the first time',
    { containers: [container({ health: 'unhealthy', startedAt: NOW - 5_000 })] },
    { intents: ['restart c1 unhealthy'], holdsRoom: true },
  ],
  [
    'unhealthy with the restart budget spent: stop, Failed',
    {
      desired: desired({ ...base, maxRestarts: 2 }, { restartCount: 2 }),
      containers: [container({ health: 'unhealthy' })],
    },
    { intents: ['stop c1 (RestartLimitExceeded)'], holdsRoom: false, restartLimitExceeded: true },
  ],
  // Created, transitioning.
  ['created: start it', { containers: [container({ state: 'created' })] }, { intents: ['start c1'], holdsRoom: true }],
  [
    'created but the host is full: wait unscheduled',
    { containers: [container({ state: 'created' })], host: refuse('MaxSessionsReached') },
    { intents: [], holdsRoom: false, waiting: 'MaxSessionsReached' },
  ],
  [
    'restarting: look again in a second',
    { containers: [container({ state: 'restarting' })] },
    { intents: [], holdsRoom: true, waiting: 'Transitioning', requeueAfterMs: 1_000 },
  ],
  // Exited.
  [
    'exited with an error: the first restart is immediate',
    { containers: [exited(1)] },
    { intents: ['restart c1 exit 1'], holdsRoom: true },
  ],
  [
    'OOM-killed: restart, recorded as OOM',
    { containers: [exited(137, { oomKilled: true })] },
    { intents: ['restart c1 oom exit 137'], holdsRoom: true },
  ],
  [
    'exited 0 under OnFailure: leave it',
    {
      desired: desired({ ...base, restartPolicy: 'OnFailure' }),
      containers: [exited(0, {}, { ...base, restartPolicy: 'OnFailure' })],
    },
    { intents: [], holdsRoom: false },
  ],
  [
    'exited under Never: leave it',
    {
      desired: desired({ ...base, restartPolicy: 'Never' }),
      containers: [exited(1, {}, { ...base, restartPolicy: 'Never' })],
    },
    { intents: [], holdsRoom: false },
  ],
  [
    'exited while Stopped is desired: leave it',
    { desired: desired({ ...base, state: 'Stopped' }), containers: [exited(1, {}, { ...base, state: 'Stopped' })] },
    { intents: [], holdsRoom: false },
  ],
  [
    'stopped on purpose (idle timeout, spec.state), wanted again: start it, even under Never',
    {
      desired: desired({ ...base, restartPolicy: 'Never' }, { stoppedContainerId: 'c1' }),
      containers: [exited(143, {}, { ...base, restartPolicy: 'Never' })],
    },
    { intents: ['start c1'], holdsRoom: true },
  ],
  [
    'stopped on purpose after a crash loop: started at once, no backoff, no restart counted',
    {
      desired: desired(base, { stoppedContainerId: 'c1' }),
      ...crashLoop({ consecutive: 6, lastRestartAt: NOW - 100 }),
    },
    { intents: ['start c1'], holdsRoom: true },
  ],
  [
    'stopped on purpose, wanted again, but the host is full: wait unscheduled',
    {
      desired: desired(base, { stoppedContainerId: 'c1' }),
      containers: [exited(143)],
      host: refuse('MaxSessionsReached'),
    },
    { intents: [], holdsRoom: false, waiting: 'MaxSessionsReached' },
  ],
  [
    'another container was the one stopped on purpose: this exit is a crash',
    {
      desired: desired(base, { stoppedContainerId: 'c0' }),
      ...crashLoop({ consecutive: 1, lastRestartAt: NOW - 100 }),
    },
    { intents: [], holdsRoom: true, waiting: 'BackOff', requeueAfterMs: 900 },
  ],
  [
    'exited with the restart budget spent: Failed',
    { desired: desired({ ...base, maxRestarts: 3 }, { restartCount: 3 }), containers: [exited(1)] },
    { intents: [], holdsRoom: false, restartLimitExceeded: true },
  ],
  [
    'exited, due to restart, but the host is full: wait unscheduled',
    { containers: [exited(1)], host: refuse('MaxSessionsReached') },
    { intents: [], holdsRoom: false, waiting: 'MaxSessionsReached' },
  ],
  // Crash loops.
  [
    'crash loop inside its backoff: wait for the rest of it',
    crashLoop({ consecutive: 1, lastRestartAt: NOW - 100 }),
    { intents: [], holdsRoom: true, waiting: 'BackOff', requeueAfterMs: 900 },
  ],
  [
    'crash loop due while the host creates others: wait for the host (at most the deferral bound)',
    { ...crashLoop(due), host: hostWith({ busyCreating: true }) },
    {
      intents: [],
      holdsRoom: true,
      waiting: 'BackOff/HostCreating',
      requeueAfterMs: CRASH_RESTART_DEFERRAL.maxMs - 1_000,
    },
  ],
  [
    'crash loop due but its paced turn is later: wait for the turn',
    { ...crashLoop(due), host: hostWith({ crashRestartTurnInMs: 400 }) },
    { intents: [], holdsRoom: true, waiting: 'BackOff/Paced', requeueAfterMs: 400 },
  ],
  [
    'crash loop due, host quiet, turn free: restart, yielding to creates',
    crashLoop(due),
    { intents: ['restart c1 exit 1 crashLoop=yield'], holdsRoom: true },
  ],
  [
    'crash loop overdue by the deferral bound: restart even on a busy host',
    {
      ...crashLoop({ consecutive: 1, lastRestartAt: NOW - 1_000 - CRASH_RESTART_DEFERRAL.maxMs }),
      host: hostWith({ busyCreating: true }),
    },
    { intents: ['restart c1 exit 1 crashLoop=overdue'], holdsRoom: true },
  ],
  [
    'a container that ran stably before failing starts a fresh backoff',
    {
      containers: [exited(1, { startedAt: NOW - 700_000, finishedAt: NOW - 1_000 })],
      restarts: { consecutive: 5, lastRestartAt: NOW - 700_000 },
    },
    { intents: ['restart c1 exit 1'], holdsRoom: true },
  ],
  // Timers.
  [
    'an expiring token is a timer',
    { desired: desired(base, { tokenExpiresAt: NOW + 5_000 }), containers: [container()] },
    { intents: [], holdsRoom: true, requeueAfterMs: 5_000 },
  ],
  [
    'a far deadline is looked at again hourly',
    { desired: desired({ ...base, maxLifetimeSeconds: 86_400 }, { createdAt: NOW }), containers: [container()] },
    { intents: [], holdsRoom: true, requeueAfterMs: LONGEST_REQUEUE_MS },
  ],
];

function snapshot(overrides: Partial<PlanInput>): PlanInput {
  return {
    name: 'alice',
    desired: desired(),
    containers: [],
    restarts: { consecutive: 0 },
    now: NOW,
    jitter: 0.5,
    ...overrides,
  };
}

describe('plan, as a table', () => {
  it.each(TABLE)('%s', (_title, overrides, expected) => {
    expect(outcome(plan(snapshot(overrides)))).toEqual(expected);
  });

  it('decides the backoff a restart starts: one more than before, or one after a stable run', () => {
    const restartOf = (overrides: Partial<PlanInput>) =>
      plan(snapshot(overrides)).actions.find((action) => action.type === 'restart');
    expect(restartOf(crashLoop(due))).toMatchObject({ backoff: { consecutive: 2, jitter: 0.5 } });
    expect(restartOf({ containers: [exited(1)] })).toMatchObject({ backoff: { consecutive: 1, jitter: 0.5 } });
    const stable = exited(1, { startedAt: NOW - 700_000, finishedAt: NOW - 1_000 });
    expect(
      restartOf({ containers: [stable], restarts: { consecutive: 6, lastRestartAt: NOW - 800_000 } }),
    ).toMatchObject({ backoff: { consecutive: 1 } });
  });

  it('covers every intent, every reason an intent carries, and every waiting reason', () => {
    const results = TABLE.map(([, overrides]) => plan(snapshot(overrides)));
    const actions = results.flatMap((result) => result.actions);
    // Record<Union, true>: adding a member to plan.ts's unions is a compile error here until a row covers it.
    const intents: Record<Action['type'], true> = {
      addFinalizer: true,
      remove: true,
      create: true,
      start: true,
      restart: true,
      stop: true,
      observePorts: true,
      expire: true,
      removeVolumes: true,
      finalize: true,
      mintToken: true,
      revokeToken: true,
      unplace: true,
    };
    const mintReasons: Record<TokenMintReason, true> = { initial: true, expired: true, requested: true };
    // 'spec-changed' is part of the type but the planner recreates (create with `replaced`) instead.
    const removeReasons: Record<Exclude<RemoveReason, 'spec-changed'>, true> = {
      orphan: true,
      'stale-uid': true,
      duplicate: true,
      deleting: true,
      dead: true,
      evicting: true,
    };
    const stopReasons: Record<StopReason, true> = { Requested: true, IdleTimeout: true, RestartLimitExceeded: true };
    const expireReasons: Record<ExpireReason, true> = { MaxLifetimeExceeded: true, IdleTimeout: true };
    const waitingReasons: Record<Waiting['reason'], true> = {
      BackOff: true,
      Transitioning: true,
      IdleTimeout: true,
      InsufficientMemory: true,
      MaxSessionsReached: true,
      Evicting: true,
    };
    const deferrals: Record<DeferralReason, true> = { HostCreating: true, Paced: true };
    const crashLoops = { yield: true, overdue: true };

    const seen = (values: Array<string | undefined>) =>
      [...new Set(values.filter((value): value is string => value !== undefined))].sort();
    expect(seen(actions.map((action) => action.type))).toEqual(Object.keys(intents).sort());
    expect(seen(actions.map((action) => (action.type === 'remove' ? action.reason : undefined)))).toEqual(
      Object.keys(removeReasons).sort(),
    );
    expect(seen(actions.map((action) => (action.type === 'stop' ? action.reason : undefined)))).toEqual(
      Object.keys(stopReasons).sort(),
    );
    expect(seen(actions.map((action) => (action.type === 'expire' ? action.reason : undefined)))).toEqual(
      Object.keys(expireReasons).sort(),
    );
    expect(seen(actions.map((action) => (action.type === 'restart' ? action.crashLoop : undefined)))).toEqual(
      Object.keys(crashLoops).sort(),
    );
    expect(seen(actions.map((action) => (action.type === 'mintToken' ? action.reason : undefined)))).toEqual(
      Object.keys(mintReasons).sort(),
    );
    expect(seen(results.map((result) => result.waiting?.reason))).toEqual(Object.keys(waitingReasons).sort());
    expect(
      seen(
        results.map((result) => (result.waiting && 'deferred' in result.waiting ? result.waiting.deferred : undefined)),
      ),
    ).toEqual(Object.keys(deferrals).sort());
    expect(results.some((result) => result.restartLimitExceeded)).toBe(true);
  });
});
