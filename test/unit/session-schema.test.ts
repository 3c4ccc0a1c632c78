import { validateDocument, validateSpec } from '../../crds/session';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { containerCreateOptions } from '../../src/docker/container-config';
import { canonicalJson, specHash } from '../../src/model/labels';

const problemsOf = (spec: unknown) => {
  const result = validateSpec(spec);
  return result.ok ? [] : result.problems;
};

describe('quantities', () => {
  it.each([
    ['256Mi', 256 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['1Gi', 1024 ** 3],
    ['512m', 512 * 1024 ** 2],
    ['1073741824', 1024 ** 3],
    ['1.5g', 1.5 * 1024 ** 3],
  ])('memory %s is %i bytes', (text, bytes) => expect(parseMemoryBytes(text)).toBe(bytes));

  it.each(['lots', '', '1x', '-1g', 'Mi'])('memory %p is not a quantity', (text) =>
    expect(parseMemoryBytes(text)).toBeUndefined(),
  );

  it.each([
    ['0.5', 500_000_000],
    [2, 2_000_000_000],
    ['500m', 500_000_000],
    ['.25', 250_000_000],
  ] as const)('cpus %p is %i nano-CPUs', (value, nano) => expect(parseNanoCpus(value)).toBe(nano));

  it.each(['-1', 'abc', '1e3'])('cpus %p is refused', (value) => expect(parseNanoCpus(value)).toBeUndefined());
});

describe('session spec schema', () => {
  it('fills defaults', () => {
    const result = validateSpec({ image: 'sessionctl/base:dev' });
    expect(result).toEqual({
      ok: true,
      value: {
        image: 'sessionctl/base:dev',
        env: {},
        ports: [],
        resources: {},
        state: 'Running',
        restartPolicy: 'Always',
        volumeReclaimPolicy: 'Retain',
        idleAction: 'Stop',
      },
    });
  });

  it('names the field of a bad memory quantity', () => {
    expect(problemsOf({ image: 'a', resources: { memory: 'lots' } })).toEqual([
      expect.objectContaining({ path: 'spec.resources.memory', message: expect.stringContaining('memory quantity') }),
    ]);
  });

  it('names misspelled fields', () => {
    expect(problemsOf({ image: 'a', enviroment: {} })).toEqual([{ path: 'spec.enviroment', message: 'unknown field' }]);
    expect(problemsOf({ image: 'a', evn: {} })).toEqual([
      { path: 'spec.evn', message: 'unknown field (did you mean "env"?)' },
    ]);
    expect(problemsOf({ image: 'a', restartPolcy: 'Never' })).toEqual([
      { path: 'spec.restartPolcy', message: 'unknown field (did you mean "restartPolicy"?)' },
    ]);
  });

  it('names wrong types with their path', () => {
    expect(problemsOf({ image: 'a', ports: [{ name: 'http', containerPort: 'eighty' }] })[0].path).toBe(
      'spec.ports[0].containerPort',
    );
    expect(problemsOf({ image: 'a', state: 'Paused' })[0].path).toBe('spec.state');
    expect(problemsOf({})[0].path).toBe('spec.image');
  });

  it('refuses duplicate port names and numbers', () => {
    const problems = problemsOf({
      image: 'a',
      ports: [
        { name: 'http', containerPort: 80 },
        { name: 'http', containerPort: 80 },
      ],
    });
    expect(problems.map((problem) => problem.path)).toEqual(['spec.ports[1].name', 'spec.ports[1].containerPort']);
  });

  it('validates whole documents, including the name', () => {
    const result = validateDocument({
      apiVersion: 'sessionctl.dev/v1alpha1',
      kind: 'Session',
      metadata: { name: 'Not_A_Label' },
      spec: { image: 'a' },
    });
    expect(result.ok ? [] : result.problems.map((problem) => problem.path)).toEqual(['metadata.name']);
  });
});

describe('spec hash', () => {
  const spec = (input: object) => {
    const result = validateSpec(input);
    if (!result.ok) throw new Error('invalid');
    return result.value;
  };

  it('ignores key order, state and restart policy, and unit spelling', () => {
    const a = spec({ image: 'i', env: { A: '1', B: '2' }, resources: { memory: '1g' } });
    const b = spec({
      resources: { memory: '1Gi' },
      env: { B: '2', A: '1' },
      image: 'i',
      state: 'Stopped',
      restartPolicy: 'Never',
    });
    expect(specHash(a)).toBe(specHash(b));
  });

  it('changes with anything that shapes the container', () => {
    const base = { image: 'i', env: { A: '1' } };
    const hashes = [
      base,
      { ...base, env: { A: '2' } },
      { ...base, image: 'j' },
      { ...base, command: ['sh'] },
      { ...base, resources: { cpus: '1' } },
      { ...base, ports: [{ name: 'p', containerPort: 1 }] },
    ].map((input) => specHash(spec(input)));
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it('canonical JSON sorts keys at every depth', () => {
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: undefined, e: 'x' })).toBe('{"b":[{"c":2,"d":1}],"e":"x"}');
  });
});

describe('container create options', () => {
  it('turns resources into real limits and hardens the container', () => {
    const valid = validateSpec({
      image: 'i',
      resources: { memory: '256Mi', cpus: '0.5', pids: 100 },
      ports: [{ name: 'http', containerPort: 8080 }],
    });
    if (!valid.ok) throw new Error('invalid');
    const options = containerCreateOptions({ name: 'alice', uid: 'u', generation: 3 }, valid.value);
    expect(options.name).toBe('sessionctl-alice');
    expect(options.HostConfig).toMatchObject({
      Memory: 256 * 1024 ** 2,
      MemorySwap: 256 * 1024 ** 2,
      NanoCpus: 500_000_000,
      PidsLimit: 100,
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      RestartPolicy: { Name: 'no' },
      PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
    });
    expect(options.HostConfig?.Binds).toBeUndefined();
    expect(options.Labels).toMatchObject({
      'dev.sessionctl.managed-by': 'sessionctl',
      'dev.sessionctl.session': 'alice',
      'dev.sessionctl.uid': 'u',
      'dev.sessionctl.generation': '3',
    });
  });
});
