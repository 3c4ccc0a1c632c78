import { validateSpec, type SessionSpecInput } from '../../crds/session';
import { forbiddenHostPath, normaliseHostPath } from '../../crds/runtime-fields';
import { Admission } from '../../controllers/session/admission';
import { lifetimeCheck } from '../../controllers/session/lifetime';
import { hostPolicyProblems } from '../../controllers/session/policy';
import { containerCreateOptions, healthcheckConfig } from '../../src/docker/container-config';
import { specHash } from '../../src/model/labels';
import { advertiseAddressFor } from '../../src/config';

const base: SessionSpecInput = { image: 'sessionctl/base:dev', ports: [{ name: 'http', containerPort: 8080 }] };
const problemsOf = (spec: unknown) => {
  const result = validateSpec(spec);
  return result.ok ? [] : result.problems;
};
const valid = (spec: SessionSpecInput) => {
  const result = validateSpec(spec);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.value;
};

describe('bad input is refused with the field path', () => {
  it('privileged, wherever it is written', () => {
    expect(problemsOf({ ...base, privileged: true })).toEqual([
      { path: 'spec.privileged', message: expect.stringContaining('never allowed') },
    ]);
    expect(problemsOf({ ...base, securityContext: { privileged: true } })).toEqual([
      { path: 'spec.securityContext.privileged', message: expect.stringContaining('never allowed') },
    ]);
  });

  it('cpus "-1"', () => {
    expect(problemsOf({ ...base, resources: { cpus: '-1' } })).toEqual([
      { path: 'spec.resources.cpus', message: expect.stringContaining('positive number of CPUs') },
    ]);
  });

  it('a health check port that names no port', () => {
    expect(problemsOf({ ...base, healthCheck: { httpGet: { port: 'web', path: '/healthz' } } })).toEqual([
      {
        path: 'spec.healthCheck.httpGet.port',
        message: 'names no port: spec.ports has "http"; use one of those names or a port number',
      },
    ]);
    expect(problemsOf({ ...base, healthCheck: { httpGet: { port: 70000 } } })).toEqual([
      { path: 'spec.healthCheck.httpGet.port', message: expect.stringContaining('out of range') },
    ]);
  });

  it('a health check with both or neither of exec and httpGet', () => {
    expect(problemsOf({ ...base, healthCheck: {} })).toEqual([
      { path: 'spec.healthCheck', message: 'set exactly one of exec and httpGet' },
    ]);
    expect(problemsOf({ ...base, healthCheck: { exec: ['true'], httpGet: { port: 'http' } } })).toEqual([
      { path: 'spec.healthCheck', message: 'set exactly one of exec and httpGet' },
    ]);
  });

  it('the docker socket and system paths, even before the allow-list is consulted', () => {
    for (const hostPath of [
      '/var/run/docker.sock',
      '/run/docker.sock',
      '/srv/../var/run/docker.sock',
      '/',
      '/etc/shadow',
      '/proc/1',
    ]) {
      expect(problemsOf({ ...base, volumes: [{ name: 'x', mountPath: '/x', hostPath }] })).toEqual([
        { path: 'spec.volumes[0].hostPath', message: expect.any(String) },
      ]);
    }
  });

  it('duplicate volume names and mount paths, and runAsGroup without runAsUser', () => {
    expect(
      problemsOf({
        ...base,
        volumes: [
          { name: 'a', mountPath: '/a' },
          { name: 'a', mountPath: '/a' },
        ],
      }).map((problem) => problem.path),
    ).toEqual(['spec.volumes[1].name', 'spec.volumes[1].mountPath']);
    expect(problemsOf({ ...base, securityContext: { runAsGroup: 1000 } })).toEqual([
      { path: 'spec.securityContext.runAsGroup', message: 'runAsGroup needs runAsUser' },
    ]);
  });
});

describe('host policy', () => {
  it('allows bind mounts only under the allow-list, lexically normalised', () => {
    const spec = valid({
      ...base,
      volumes: [
        { name: 'a', mountPath: '/a', hostPath: '/srv/data/alice' },
        { name: 'b', mountPath: '/b', hostPath: '/srv/data/../other' },
      ],
    });
    expect(hostPolicyProblems(spec, ['/srv/data'])).toEqual([
      { path: 'spec.volumes[1].hostPath', message: expect.stringContaining('/srv/other is outside') },
    ]);
    expect(hostPolicyProblems(spec, [])[0].message).toContain('host bind mounts are disabled');
    expect(
      hostPolicyProblems(valid({ ...base, volumes: [{ name: 'a', mountPath: '/a', hostPath: '/srv/database' }] }), [
        '/srv/data',
      ]),
    ).toHaveLength(1);
  });

  it('normalises and refuses paths', () => {
    expect(normaliseHostPath('/a//b/./c/../d/')).toBe('/a/b/d');
    expect(forbiddenHostPath('/home/alice')).toBeUndefined();
    expect(forbiddenHostPath('/home/alice/../../var/run/docker.sock')).toContain('socket');
  });
});

describe('container options', () => {
  const identity = { name: 'alice', uid: '11111111-1111-4111-8111-111111111111', generation: 1 };

  it('turns an httpGet check into a Docker HEALTHCHECK against loopback, with durations in nanoseconds', () => {
    const check = healthcheckConfig(
      valid({
        ...base,
        healthCheck: {
          httpGet: { port: 'http', path: "/it's" },
          periodSeconds: 5,
          failureThreshold: 2,
          initialDelaySeconds: 3,
        },
      }),
    )!;
    expect(check.Test![0]).toBe('CMD-SHELL');
    expect(check.Test![1]).toContain(`'http://127.0.0.1:8080/it'\\''s'`);
    expect(check).toMatchObject({ Interval: 5e9, Timeout: 2e9, Retries: 2, StartPeriod: 3e9 });
    expect(healthcheckConfig(valid({ ...base, healthCheck: { exec: ['cat', '/ok'] } }))!.Test).toEqual([
      'CMD',
      'cat',
      '/ok',
    ]);
  });

  it('mounts named volumes and allowed binds, and injects the token under its name', () => {
    const spec = valid({
      ...base,
      volumes: [
        { name: 'data', mountPath: '/data' },
        { name: 'src', mountPath: '/src', hostPath: '/srv/x/', readOnly: true },
      ],
      auth: { envName: 'JUPYTER_TOKEN', delivery: 'Env' },
    });
    const options = containerCreateOptions(identity, spec, undefined, { token: 'sekret', revision: { tokenId: 't1' } });
    expect(options.HostConfig!.Mounts).toEqual([
      { Type: 'volume', Source: 'sessionctl-alice_data', Target: '/data', ReadOnly: false },
      { Type: 'bind', Source: '/srv/x', Target: '/src', ReadOnly: true },
    ]);
    expect(options.Env).toContain('JUPYTER_TOKEN=sekret');
  });

  it('applies the controller defaults only where the spec sets no limit, and labels the memory admitted', () => {
    const defaults = {
      publishAddress: '127.0.0.1',
      pidsLimit: 512,
      memoryBytes: 4 * 1024 ** 3,
      nanoCpus: 1e9,
      capabilities: ['CHOWN'],
    };
    const options = containerCreateOptions(identity, valid(base), defaults);
    expect(options.HostConfig).toMatchObject({
      Memory: 4 * 1024 ** 3,
      NanoCpus: 1e9,
      PidsLimit: 512,
      CapDrop: ['ALL'],
      CapAdd: ['CHOWN'],
    });
    expect(options.Labels!['dev.sessionctl.memory-bytes']).toBe(String(4 * 1024 ** 3));
  });

  it('keeps the spec hash of specs that set none of the new fields, and moves it for a new token or restart request', () => {
    const spec = valid(base);
    expect(specHash(spec)).toBe(specHash(spec, {}));
    expect(specHash(spec, { restartRequestedAt: '2026-01-01T00:00:00.000Z' })).not.toBe(specHash(spec));
    const authed = valid({ ...base, auth: {} });
    expect(specHash(authed, { tokenId: 'a' })).not.toBe(specHash(authed, { tokenId: 'b' }));
    // Lifetimes and the restart budget never recreate a container.
    expect(specHash(valid({ ...base, maxRestarts: 3, idleTimeoutSeconds: 60, maxLifetimeSeconds: 600 }))).toBe(
      specHash(spec),
    );
  });
});

describe('lifetimes', () => {
  const at = { createdAt: 0, generationChangedAt: 0 };
  it('stops an idle session, counting from the last activity or spec change', () => {
    const spec = valid({ ...base, idleTimeoutSeconds: 60 });
    expect(lifetimeCheck(spec, at, 59_000)).toEqual({ nextCheckAt: 60_000 });
    expect(lifetimeCheck(spec, at, 60_000).idle).toBeDefined();
    expect(lifetimeCheck(spec, { ...at, lastActivityAt: 30_000 }, 60_000)).toEqual({ nextCheckAt: 90_000 });
    expect(lifetimeCheck(spec, { ...at, generationChangedAt: 50_000 }, 60_000)).toEqual({ nextCheckAt: 110_000 });
  });

  it('deletes at the maximum lifetime, and with idleAction: Delete', () => {
    expect(lifetimeCheck(valid({ ...base, maxLifetimeSeconds: 10 }), at, 10_000).expire?.reason).toBe(
      'MaxLifetimeExceeded',
    );
    expect(
      lifetimeCheck(valid({ ...base, idleTimeoutSeconds: 10, idleAction: 'Delete' }), at, 10_000).expire?.reason,
    ).toBe('IdleTimeout');
    expect(lifetimeCheck(valid({ ...base, maxLifetimeSeconds: 100, idleTimeoutSeconds: 10 }), at, 0)).toEqual({
      nextCheckAt: 10_000,
    });
  });
});

describe('admission', () => {
  const make = (capacity: { maxSessions?: number; allocatableMemoryBytes?: number }) => {
    const freed: string[][] = [];
    return { admission: new Admission({ host: 'h', capacity, onFreed: (names) => freed.push(names) }), freed };
  };

  it('admits up to maxSessions, then refuses with the numbers, and wakes the waiting oldest first', () => {
    const { admission, freed } = make({ maxSessions: 2 });
    expect(admission.tryAdmit('a', 1, 0)).toEqual({ admitted: true });
    expect(admission.tryAdmit('b', 2, 0)).toEqual({ admitted: true });
    expect(admission.tryAdmit('d', 4, 0)).toMatchObject({
      admitted: false,
      reason: 'MaxSessionsReached',
      message: expect.stringContaining('runs 2 of at most 2'),
    });
    expect(admission.tryAdmit('c', 3, 0)).toMatchObject({ admitted: false });
    admission.release('a');
    expect(freed).toEqual([['c', 'd']]);
    // The younger one may not jump the queue while the older one fits.
    expect(admission.tryAdmit('d', 4, 0)).toMatchObject({
      admitted: false,
      message: expect.stringContaining('1 older waiting session goes first'),
    });
    expect(admission.tryAdmit('c', 3, 0)).toEqual({ admitted: true });
  });

  it('lets a small session pass a large one that cannot fit', () => {
    const { admission } = make({ allocatableMemoryBytes: 100 });
    expect(admission.tryAdmit('big', 1, 200)).toMatchObject({
      admitted: false,
      reason: 'InsufficientMemory',
      message: expect.stringContaining('more than the host can ever give'),
    });
    expect(admission.tryAdmit('small', 2, 50)).toEqual({ admitted: true });
    expect(admission.usage()).toEqual({ sessions: 1, memoryBytes: 50 });
  });

  it('keeps room for running sessions even over a lowered capacity', () => {
    const { admission } = make({ maxSessions: 1 });
    admission.hold('a', 0);
    admission.hold('b', 0);
    expect(admission.tryAdmit('a', 1, 0)).toEqual({ admitted: true });
    expect(admission.tryAdmit('c', 3, 0)).toMatchObject({ admitted: false });
  });
});

describe('advertised address', () => {
  it('is the publish address, or the Docker host for a wildcard publish address', () => {
    expect(advertiseAddressFor({ publishAddress: '127.0.0.1' }, { host: '10.0.0.5' })).toBe('127.0.0.1');
    expect(advertiseAddressFor({ publishAddress: '0.0.0.0' }, { host: '10.0.0.5' })).toBe('10.0.0.5');
    expect(
      advertiseAddressFor({ publishAddress: '0.0.0.0', advertiseAddress: 'sessions.internal' }, { host: '10.0.0.5' }),
    ).toBe('sessions.internal');
  });
});
