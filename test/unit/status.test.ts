import { validateSpec } from '../../crds/session';
import { computeStatus, type StatusInput } from '../../controllers/session/status';
import type { ObservedContainer } from '../../src/model/container';
import { specHash } from '../../src/model/labels';

const spec = validateSpec({ image: 'sessionctl/base:dev' });
if (!spec.ok) throw new Error('invalid');
const running: ObservedContainer = {
  id: 'abcdef0123456789',
  name: 'sessionctl-a',
  labels: { 'dev.sessionctl.spec-hash': specHash(spec.value) },
  state: 'running',
};
const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:01:00Z');

const input = (overrides: Partial<StatusInput>): StatusInput => ({
  previous: {},
  generation: 2,
  spec,
  deletionRequested: false,
  host: 'default',
  restartsDone: 0,
  now: t0,
  ...overrides,
});

const ready = (status: ReturnType<typeof computeStatus>) =>
  status.conditions.find((condition) => condition.type === 'Ready')!;

describe('computeStatus', () => {
  it('is Ready when the current container runs', () => {
    const status = computeStatus(input({ container: running }));
    expect(status).toMatchObject({
      observedGeneration: 2,
      phase: 'Running',
      containerId: running.id,
      host: 'default',
      restartCount: 0,
    });
    expect(ready(status)).toMatchObject({
      status: 'True',
      reason: 'SessionReady',
      lastTransitionTime: t0.toISOString(),
      observedGeneration: 2,
    });
    expect(status.conditions.map((condition) => condition.type)).toEqual([
      'Valid',
      'Scheduled',
      'ImageReady',
      'ContainerRunning',
      'Healthy',
      'Ready',
    ]);
  });

  it("tells a running unhealthy container's restart wait in Healthy and Ready", () => {
    const waiting = {
      reason: 'BackOff' as const,
      message:
        'back-off restarting: the container is unhealthy; the restart waits while the host creates other sessions',
      deferred: 'HostCreating' as const,
    };
    const status = computeStatus(input({ container: { ...running, health: 'unhealthy' }, waiting }));
    const healthy = status.conditions.find((condition) => condition.type === 'Healthy')!;
    expect(healthy).toMatchObject({
      status: 'False',
      reason: 'Unhealthy',
      message: `the container health check is failing; ${waiting.message}`,
    });
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'Unhealthy', message: healthy.message });
  });

  it('moves lastTransitionTime only when a condition flips', () => {
    const first = computeStatus(input({ container: running }));
    const same = computeStatus(input({ container: running, previous: first, now: t1 }));
    expect(ready(same).lastTransitionTime).toBe(t0.toISOString());
    const flipped = computeStatus(
      input({ container: { ...running, state: 'exited', exitCode: 1 }, previous: first, now: t1 }),
    );
    expect(ready(flipped)).toMatchObject({ status: 'False', reason: 'Error', lastTransitionTime: t1.toISOString() });
  });

  it('reports invalid specs with the field path and phase Pending', () => {
    const invalid = validateSpec({ image: 'a', resources: { memory: 'lots' } });
    const status = computeStatus(input({ spec: invalid }));
    expect(status.phase).toBe('Pending');
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(ready(status).message).toContain('spec.resources.memory');
  });

  it('is not Ready, with reason Stopped, when stopped as asked', () => {
    const stoppedSpec = validateSpec({ image: 'sessionctl/base:dev', state: 'Stopped' });
    const status = computeStatus(input({ spec: stoppedSpec, container: { ...running, state: 'exited', exitCode: 0 } }));
    expect(status.phase).toBe('Stopped');
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'Stopped' });
  });

  it('counts restarts and keeps the last exit', () => {
    const status = computeStatus(
      input({
        container: running,
        previous: { restartCount: 2, observedGeneration: 2 },
        restartsDone: 1,
        lastExit: { code: 137, oomKilled: true },
      }),
    );
    expect(status).toMatchObject({ restartCount: 3, lastExitCode: 137, lastExitReason: 'OOMKilled' });
    const later = computeStatus(input({ container: running, previous: status }));
    expect(later).toMatchObject({ restartCount: 3, lastExitCode: 137, lastExitReason: 'OOMKilled' });
  });

  it('shows failures in ContainerRunning and Ready, and the image problem in ImageReady', () => {
    const status = computeStatus(input({ failure: { reason: 'ImageNotPresent', message: 'image x is not present' } }));
    expect(status.phase).toBe('Pending');
    expect(status.conditions.find((condition) => condition.type === 'ImageReady')).toMatchObject({
      status: 'False',
      reason: 'ImageNotPresent',
    });
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'ImageNotPresent' });
  });

  it('is Terminating while deletion is under way', () => {
    const status = computeStatus(input({ container: running, deletionRequested: true }));
    expect(status.phase).toBe('Terminating');
    expect(ready(status).reason).toBe('Terminating');
  });

  it('reports a create waiting for its image: ImageReady and Ready say why, phase Pending', () => {
    const status = computeStatus(
      input({
        image: {
          waiting: {
            reason: 'ImagePullBackOff',
            message: 'back-off 10s pulling image x failed (attempt 2): unauthorized',
          },
        },
      }),
    );
    expect(status.phase).toBe('Pending');
    expect(status.conditions.find((condition) => condition.type === 'ImageReady')).toMatchObject({
      status: 'False',
      reason: 'ImagePullBackOff',
    });
    expect(ready(status)).toMatchObject({
      status: 'False',
      reason: 'ImagePullBackOff',
      message: expect.stringContaining('unauthorized'),
    });
  });

  it('keeps a running session Ready while its moved tag waits for a batch', () => {
    const status = computeStatus(
      input({ container: running, image: { updatePending: 'a new image digest waits for its batch' } }),
    );
    expect(status.conditions.find((condition) => condition.type === 'ImageReady')).toMatchObject({
      status: 'True',
      reason: 'ImageUpdatePending',
    });
    expect(ready(status)).toMatchObject({ status: 'True', reason: 'SessionReady' });
  });

  it('a spec change waiting for its new image says ImagePulling while the old container keeps running', () => {
    const old = { ...running, labels: { 'dev.sessionctl.spec-hash': 'previous' } };
    const status = computeStatus(
      input({ container: old, image: { waiting: { reason: 'ImagePulling', message: 'pulling image x: 1/3 layers' } } }),
    );
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'ImagePulling' });
    expect(status.phase).toBe('Running');
  });
});
