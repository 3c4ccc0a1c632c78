import { validateSpec, type SessionSpecInput } from '../../crds/session';
import {
  CRASH_BACKOFF,
  CRASH_RESTART_DEFERRAL,
  crashBackoffMs,
  plan,
  type DesiredSession,
  type HostFacts,
  type PlanInput,
} from '../../controllers/session/plan';

const hostWith = (facts: Partial<HostFacts>): HostFacts => ({
  admission: { admitted: true },
  busyCreating: false,
  crashRestartTurnInMs: 0,
  ...facts,
});
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, MANAGED_BY, specHash } from '../../src/model/labels';

const UID = '11111111-1111-4111-8111-111111111111';
const baseSpec: SessionSpecInput = { image: 'sessionctl/base:dev', env: { MODE: 'dev' } };

function desired(spec: SessionSpecInput = baseSpec, overrides: Partial<DesiredSession> = {}): DesiredSession {
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

function container(
  overrides: Partial<ObservedContainer> = {},
  spec: SessionSpecInput = baseSpec,
  uid = UID,
): ObservedContainer {
  const valid = validateSpec(spec);
  if (!valid.ok) throw new Error('test spec must be valid');
  return {
    id: overrides.id ?? 'c1',
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

function input(overrides: Partial<PlanInput>): PlanInput {
  return {
    name: 'alice',
    desired: desired(),
    containers: [],
    restarts: { consecutive: 0 },
    now: 1_000_000,
    jitter: 0.5,
    ...overrides,
  };
}

const types = (result: ReturnType<typeof plan>) => result.actions.map((action) => action.type);

describe('plan', () => {
  it('creates and starts a missing container', () => {
    expect(types(plan(input({})))).toEqual(['create']);
    expect(plan(input({})).actions[0]).toMatchObject({ type: 'create', start: true });
  });

  it('claims the finalizer before creating anything', () => {
    expect(types(plan(input({ desired: desired(baseSpec, { hasFinalizer: false }) })))).toEqual([
      'addFinalizer',
      'create',
    ]);
  });

  it('creates without starting when the session is Stopped', () => {
    expect(plan(input({ desired: desired({ ...baseSpec, state: 'Stopped' }) })).actions).toEqual([
      { type: 'create', start: false, replaced: undefined },
    ]);
  });

  it('keeps (adopts) a running container whose spec hash matches', () => {
    const result = plan(input({ containers: [container()] }));
    expect(result.actions).toEqual([]);
    expect(result.primary?.id).toBe('c1');
  });

  it('recreates when the spec hash differs', () => {
    const old = container({}, { ...baseSpec, env: { MODE: 'prod' } });
    const result = plan(input({ containers: [old] }));
    expect(result.actions).toEqual([{ type: 'create', start: true, replaced: old }]);
  });

  it('does not recreate for a change of state or restart policy alone', () => {
    const running = container();
    expect(
      types(plan(input({ containers: [running], desired: desired({ ...baseSpec, restartPolicy: 'Never' }) }))),
    ).toEqual([]);
    expect(types(plan(input({ containers: [running], desired: desired({ ...baseSpec, state: 'Stopped' }) })))).toEqual([
      'stop',
    ]);
  });

  it('starts a created container and leaves a stopped one stopped when Stopped is desired', () => {
    expect(types(plan(input({ containers: [container({ state: 'created' })] })))).toEqual(['start']);
    const stopped = desired({ ...baseSpec, state: 'Stopped' });
    expect(types(plan(input({ desired: stopped, containers: [container({ state: 'exited', exitCode: 0 })] })))).toEqual(
      [],
    );
  });

  it('removes a dead container and creates a fresh one in the same plan', () => {
    const dead = container({ id: 'dead', state: 'dead', exitCode: 137 });
    const result = plan(input({ containers: [dead] }));
    expect(result.actions).toEqual([
      { type: 'remove', container: dead, reason: 'dead' },
      { type: 'create', start: true, replaced: undefined },
    ]);
  });

  it('leaves containers set aside as stuck alone, even without a row', () => {
    const stuck = container({ id: 'abcdef0123456789', name: 'sessionctl-alice.stuck-abcdef012345', state: 'dead' });
    expect(plan(input({ containers: [stuck, container()] })).actions).toEqual([]);
    expect(plan(input({ desired: undefined, containers: [stuck] })).actions).toEqual([]);
  });

  it("never removes a container without an installation label (made before the label, maybe another installation's), but adopts it by uid", () => {
    const unlabelled = (overrides: Partial<ObservedContainer>, uid = UID) => {
      const made = container(overrides, baseSpec, uid);
      delete made.labels[LABELS.installation];
      return made;
    };
    expect(plan(input({ desired: undefined, containers: [unlabelled({ id: 'legacy' })] })).actions).toEqual([]);
    const otherRow = unlabelled({ id: 'other' }, '22222222-2222-4222-8222-222222222222');
    expect(types(plan(input({ containers: [otherRow] })))).toEqual(['create']);
    const adopted = plan(input({ containers: [unlabelled({ id: 'mine' })] }));
    expect(adopted.actions).toEqual([]);
    expect(adopted.primary?.id).toBe('mine');
  });

  it('removes every container of a session that has no row (orphans)', () => {
    const orphans = [container({ id: 'a' }), container({ id: 'b', state: 'exited' })];
    expect(plan(input({ desired: undefined, containers: orphans })).actions).toEqual(
      orphans.map((c) => ({ type: 'remove', container: c, reason: 'orphan' })),
    );
  });

  it('removes containers of an earlier row with the same name (other uid) and creates its own', () => {
    const stale = container({ id: 'old' }, baseSpec, '22222222-2222-4222-8222-222222222222');
    expect(plan(input({ containers: [stale] })).actions).toEqual([
      { type: 'remove', container: stale, reason: 'stale-uid' },
      { type: 'create', start: true, replaced: undefined },
    ]);
  });

  it('keeps one container and removes duplicates, preferring the deterministic name and a running one', () => {
    const keep = container({ id: 'keep' });
    const duplicate = container({ id: 'dup', name: 'other-name', state: 'exited' });
    const result = plan(input({ containers: [duplicate, keep] }));
    expect(result.actions).toEqual([{ type: 'remove', container: duplicate, reason: 'duplicate' }]);
    expect(result.primary?.id).toBe('keep');
  });

  it('on deletion removes its containers, then finalizes', () => {
    const own = container();
    expect(plan(input({ desired: desired(baseSpec, { deletionRequested: true }), containers: [own] })).actions).toEqual(
      [{ type: 'remove', container: own, reason: 'deleting' }, { type: 'finalize' }],
    );
  });

  it('leaves the last good container alone while the spec is invalid', () => {
    const own = container();
    const result = plan(
      input({ desired: desired({ image: 'x', resources: { memory: 'lots' } } as SessionSpecInput), containers: [own] }),
    );
    expect(result.actions).toEqual([]);
    expect(result.primary).toBe(own);
  });

  describe('restart policy', () => {
    const exited = (exitCode: number, extra: Partial<ObservedContainer> = {}) =>
      container({ state: 'exited', exitCode, ...extra });

    it.each([
      ['Always', 0, true],
      ['Always', 1, true],
      ['OnFailure', 1, true],
      ['OnFailure', 0, false],
      ['Never', 1, false],
      ['Never', 0, false],
    ] as const)('%s with exit code %i restarts: %s', (restartPolicy, exitCode, restarts) => {
      const result = plan(input({ desired: desired({ ...baseSpec, restartPolicy }), containers: [exited(exitCode)] }));
      expect(types(result)).toEqual(restarts ? ['restart'] : []);
    });

    it('restarts an OOM-killed container under OnFailure even with exit code 0', () => {
      expect(
        types(
          plan(
            input({
              desired: desired({ ...baseSpec, restartPolicy: 'OnFailure' }),
              containers: [exited(0, { oomKilled: true })],
            }),
          ),
        ),
      ).toEqual(['restart']);
    });

    it('restarts the first crash immediately, then backs off', () => {
      expect(types(plan(input({ containers: [exited(1)], restarts: { consecutive: 0 } })))).toEqual(['restart']);
      const waiting = plan(
        input({ containers: [exited(1)], restarts: { consecutive: 3, lastRestartAt: 1_000_000 - 100 } }),
      );
      expect(types(waiting)).toEqual([]);
      expect(waiting.waiting?.reason).toBe('BackOff');
      expect(waiting.requeueAfterMs).toBe(crashBackoffMs(3, 0.5) - 100);
      const due = plan(
        input({
          containers: [exited(1)],
          restarts: { consecutive: 3, lastRestartAt: 1_000_000 - crashBackoffMs(3, 0.5) },
        }),
      );
      expect(types(due)).toEqual(['restart']);
    });

    it('forgets the backoff when the container had run stably for ten minutes', () => {
      const stable = exited(1, { startedAt: 0, finishedAt: CRASH_BACKOFF.stableAfterMs });
      expect(
        types(plan(input({ containers: [stable], restarts: { consecutive: 8, lastRestartAt: 1_000_000 } }))),
      ).toEqual(['restart']);
    });

    describe('on a host busy creating other sessions', () => {
      const dueAgo = (overdueMs: number) => ({
        consecutive: 3,
        lastRestartAt: 1_000_000 - crashBackoffMs(3, 0.5) - overdueMs,
      });

      it('still restarts the first crash at once', () => {
        expect(
          types(
            plan(
              input({ containers: [exited(1)], restarts: { consecutive: 0 }, host: hostWith({ busyCreating: true }) }),
            ),
          ),
        ).toEqual(['restart']);
      });

      it("defers a crash loop's due restart, marked as a deferral (no second BackOff event)", () => {
        const deferred = plan(
          input({ containers: [exited(1)], restarts: dueAgo(0), host: hostWith({ busyCreating: true }) }),
        );
        expect(types(deferred)).toEqual([]);
        // The host wakes it when it goes quiet; the timer is only the bound.
        expect(deferred.requeueAfterMs).toBe(CRASH_RESTART_DEFERRAL.maxMs);
        expect(deferred.waiting).toMatchObject({ reason: 'BackOff', deferred: 'HostCreating' });
        expect(deferred.waiting?.message).toContain('waits while the host creates other sessions');
        expect(deferred.holdsRoom).toBe(true);
        expect(
          types(plan(input({ containers: [exited(1)], restarts: dueAgo(0), host: hostWith({ busyCreating: false }) }))),
        ).toEqual(['restart']);
      });

      it('defers no further than its bound past the due time', () => {
        const nearBound = plan(
          input({
            containers: [exited(1)],
            restarts: dueAgo(CRASH_RESTART_DEFERRAL.maxMs - 300),
            host: hostWith({ busyCreating: true }),
          }),
        );
        expect(nearBound.requeueAfterMs).toBe(300);
        // Past its bound it goes ahead, and is not given up for creates either.
        expect(
          plan(
            input({
              containers: [exited(1)],
              restarts: dueAgo(CRASH_RESTART_DEFERRAL.maxMs),
              host: hostWith({ busyCreating: true }),
            }),
          ).actions,
        ).toEqual([expect.objectContaining({ type: 'restart', crashLoop: 'overdue' })]);
        expect(plan(input({ containers: [exited(1)], restarts: dueAgo(0) })).actions).toEqual([
          expect.objectContaining({ type: 'restart', crashLoop: 'yield' }),
        ]);
        expect(plan(input({ containers: [exited(1)], restarts: { consecutive: 0 } })).actions[0]).not.toHaveProperty(
          'crashLoop',
        );
      });

      it('keeps the backoff spread drawn at the restart, whatever this look draws', () => {
        const restarts = { consecutive: 3, lastRestartAt: 1_000_000 - crashBackoffMs(3, 0) - 1, jitter: 0 };
        expect(types(plan(input({ containers: [exited(1)], restarts, jitter: 0.99 })))).toEqual(['restart']);
        expect(
          plan(input({ containers: [exited(1)], restarts: { ...restarts, jitter: 0.99 }, jitter: 0 })).waiting?.reason,
        ).toBe('BackOff');
      });

      it("waits for the host's next crash-restart turn, and uses one only when the restart would go ahead", () => {
        const turn = (ms: number) => hostWith({ crashRestartTurnInMs: ms });
        const paced = plan(input({ containers: [exited(1)], restarts: dueAgo(0), host: turn(1_300) }));
        expect(types(paced)).toEqual([]);
        expect(paced.requeueAfterMs).toBe(1_300);
        expect(paced.waiting).toMatchObject({ reason: 'BackOff', deferred: 'Paced' });
        expect(paced.waiting?.message).toContain('turn comes in 1.3s');
        expect(plan(input({ containers: [exited(1)], restarts: dueAgo(0), host: turn(0) })).actions).toEqual([
          expect.objectContaining({ type: 'restart', crashLoop: 'yield' }),
        ]);
        // The reconciler claims a turn only for a crash-loop restart or a Paced wait: none of these uses one.
        const first = plan(input({ containers: [exited(1)], restarts: { consecutive: 0 }, host: turn(1_300) }));
        expect(first.actions).toEqual([expect.not.objectContaining({ crashLoop: expect.anything() })]);
        expect(
          plan(
            input({
              containers: [exited(1)],
              restarts: dueAgo(0),
              host: hostWith({ busyCreating: true, crashRestartTurnInMs: 1_300 }),
            }),
          ).waiting,
        ).toMatchObject({ deferred: 'HostCreating' });
        expect(
          plan(
            input({
              containers: [exited(1)],
              restarts: { consecutive: 3, lastRestartAt: 1_000_000 },
              host: turn(1_300),
            }),
          ).waiting,
        ).not.toHaveProperty('deferred');
      });

      it('leaves a backoff that is still running as it was', () => {
        const waiting = plan(
          input({
            containers: [exited(1)],
            restarts: { consecutive: 3, lastRestartAt: 1_000_000 - 100 },
            host: hostWith({ busyCreating: true }),
          }),
        );
        expect(waiting.requeueAfterMs).toBe(crashBackoffMs(3, 0.5) - 100);
        expect(waiting.waiting).not.toHaveProperty('deferred');
      });

      it('defers an unhealthy crash loop the same way', () => {
        const sick = container({ health: 'unhealthy' });
        expect(
          plan(input({ containers: [sick], restarts: dueAgo(0), host: hostWith({ busyCreating: true }) })).waiting,
        ).toMatchObject({ deferred: 'HostCreating' });
      });
    });
  });

  it('crash backoff grows from 1 s and is capped at 5 min', () => {
    expect(crashBackoffMs(0, 0.5)).toBe(0);
    expect(crashBackoffMs(1, 0.5)).toBe(1_000);
    expect(crashBackoffMs(2, 0.5)).toBe(2_000);
    expect(crashBackoffMs(30, 0.5)).toBe(300_000);
    expect(crashBackoffMs(30, 0.99)).toBeLessThanOrEqual(300_000);
    expect(crashBackoffMs(4, 0)).toBe(6_400);
  });

  it('waits for a container that is restarting', () => {
    const result = plan(input({ containers: [container({ state: 'restarting' })] }));
    expect(result.actions).toEqual([]);
    expect(result.requeueAfterMs).toBe(1_000);
  });

  it('treats a container a list shows stuck in removal like a dead one: it goes, and a fresh one is made', () => {
    const removing = container({ state: 'removing' });
    expect(plan(input({ containers: [removing] })).actions).toEqual([
      { type: 'remove', container: removing, reason: 'dead' },
      { type: 'create', start: true, replaced: undefined },
    ]);
  });

  describe('runtime semantics', () => {
    const refuse = hostWith({
      admission: { admitted: false, reason: 'MaxSessionsReached', message: 'host h runs 5 of at most 5 sessions' },
    });

    it('restarts an unhealthy running container, with the crash backoff', () => {
      const sick = container({ health: 'unhealthy' });
      expect(plan(input({ containers: [sick] })).actions).toEqual([
        {
          type: 'restart',
          container: sick,
          oomKilled: false,
          unhealthy: true,
          backoff: { consecutive: 1, jitter: expect.any(Number) },
        },
      ]);
      const waiting = plan(input({ containers: [sick], restarts: { consecutive: 2, lastRestartAt: 1_000_000 - 10 } }));
      expect(types(waiting)).toEqual([]);
      expect(waiting.waiting?.reason).toBe('BackOff');
    });

    it('spends the restart budget, then stops restarting and reports it', () => {
      const spec = { ...baseSpec, maxRestarts: 3 };
      expect(
        types(
          plan(
            input({
              desired: desired(spec, { restartCount: 2 }),
              containers: [container({ state: 'exited', exitCode: 1 }, spec)],
            }),
          ),
        ),
      ).toEqual(['restart']);
      const spent = plan(
        input({
          desired: desired(spec, { restartCount: 3 }),
          containers: [container({ state: 'exited', exitCode: 1 }, spec)],
        }),
      );
      expect(types(spent)).toEqual([]);
      expect(spent.restartLimitExceeded?.message).toContain('sessionctl restart alice');
      expect(spent.holdsRoom).toBe(false);
      const sick = container({ health: 'unhealthy' }, spec);
      expect(plan(input({ desired: desired(spec, { restartCount: 3 }), containers: [sick] })).actions).toEqual([
        { type: 'stop', container: sick, reason: 'RestartLimitExceeded' },
      ]);
    });

    it('leaves a new session Pending when admission refuses, but never a running one', () => {
      const pending = plan(input({ host: refuse }));
      expect(pending.actions).toEqual([]);
      expect(pending.waiting).toMatchObject({ reason: 'MaxSessionsReached', unschedulable: true });
      expect(types(plan(input({ host: refuse, containers: [container({ state: 'created' })] })))).toEqual([]);
      // A running session keeps its room through a recreate.
      const old = container({}, { ...baseSpec, env: { MODE: 'prod' } });
      expect(types(plan(input({ host: refuse, containers: [old] })))).toEqual(['create']);
      expect(plan(input({ host: refuse, containers: [container()] })).holdsRoom).toBe(true);
    });

    it('stops an idle session and expires one past its lifetime', () => {
      const idleSpec = { ...baseSpec, idleTimeoutSeconds: 60 };
      const running = container({}, idleSpec);
      const idle = plan(
        input({
          desired: desired(idleSpec, { createdAt: 0, generationChangedAt: 0 }),
          containers: [running],
          now: 61_000,
        }),
      );
      expect(idle.actions).toEqual([{ type: 'stop', container: running, reason: 'IdleTimeout' }]);
      expect(idle.waiting?.reason).toBe('IdleTimeout');
      const awake = plan(
        input({
          desired: desired(idleSpec, { createdAt: 0, generationChangedAt: 0, lastActivityAt: 50_000 }),
          containers: [running],
          now: 61_000,
        }),
      );
      expect(awake.actions).toEqual([]);
      expect(awake.requeueAfterMs).toBe(49_000);
      const expired = plan(
        input({
          desired: desired({ ...baseSpec, maxLifetimeSeconds: 10 }, { createdAt: 0 }),
          containers: [container()],
          now: 10_000,
        }),
      );
      expect(expired.actions).toEqual([expect.objectContaining({ type: 'expire', reason: 'MaxLifetimeExceeded' })]);
    });

    it('wakes for the token expiry, and reads published ports it has not seen', () => {
      const result = plan(
        input({ desired: desired(baseSpec, { tokenExpiresAt: 1_000_000 + 5_000 }), containers: [container()] }),
      );
      expect(result.requeueAfterMs).toBe(5_000);
      const far = plan(
        input({
          desired: desired({ ...baseSpec, maxLifetimeSeconds: 90 * 86_400 }, { createdAt: 0 }),
          containers: [container()],
        }),
      );
      expect(far.requeueAfterMs).toBe(3_600_000);
      const portSpec = { ...baseSpec, ports: [{ name: 'http', containerPort: 8080 }] };
      const unseen = container({}, portSpec);
      expect(plan(input({ desired: desired(portSpec), containers: [unseen] })).actions).toEqual([
        { type: 'observePorts', container: unseen },
      ]);
    });

    it('removes named volumes at deletion only with volumeReclaimPolicy: Delete', () => {
      const spec = (policy: 'Retain' | 'Delete') => ({
        ...baseSpec,
        volumes: [{ name: 'data', mountPath: '/data' }],
        volumeReclaimPolicy: policy,
      });
      expect(types(plan(input({ desired: desired(spec('Delete'), { deletionRequested: true }) })))).toEqual([
        'removeVolumes',
        'finalize',
      ]);
      expect(types(plan(input({ desired: desired(spec('Retain'), { deletionRequested: true }) })))).toEqual([
        'finalize',
      ]);
    });

    it('recreates for a new container hash (token rotation, restart request)', () => {
      const result = plan(
        input({ desired: desired(baseSpec, { containerHash: 'another' }), containers: [container()] }),
      );
      expect(types(result)).toEqual(['create']);
    });
  });
});
