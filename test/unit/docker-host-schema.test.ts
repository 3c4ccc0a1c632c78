/**
 * kind: DockerHost (crds/docker-host.ts) and how `sessionctl apply` reads it: field paths, and the
 * file:line:col of each problem, as for sessions.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateDockerHost } from '../../crds/docker-host';
import { ManifestError, readManifests, type HostManifest } from '../../src/cli/manifests';

const valid = () => ({
  apiVersion: 'sessionctl.dev/v1alpha1',
  kind: 'DockerHost',
  metadata: { name: 'h1', labels: { zone: 'a' } },
  spec: {
    endpoint: 'tcp://10.0.0.5:2376',
    certDir: '/etc/sessionctl/hosts/h1',
    capacity: { maxSessions: 50, allocatableMemory: '64Gi' },
  },
});

test('a valid host parses, capacity defaults to unlimited', () => {
  expect(validateDockerHost(valid())).toMatchObject({ ok: true });
  const minimal = valid();
  delete (minimal.spec as { capacity?: unknown }).capacity;
  expect(validateDockerHost(minimal)).toMatchObject({ ok: true, value: { spec: { capacity: {} } } });
});

test.each([
  ['spec.endpoint', { endpoint: 'unix:///var/run/docker.sock' }, 'expected tcp://HOST:PORT'],
  ['spec.endpoint', { endpoint: 'tcp://10.0.0.5:99999' }, 'outside 1-65535'],
  ['spec.certDir', { certDir: 'certs/h1' }, 'absolute directory path'],
  ['spec.capacity.maxSessions', { capacity: { maxSessions: -1 } }, 'expected 0 or more'],
  ['spec.capacity.allocatableMemory', { capacity: { allocatableMemory: 'lots' } }, 'memory quantity'],
  ['spec.cordon', { cordon: true }, 'unknown field'],
])('%s: bad input names the field and what was expected', (field, spec, message) => {
  const document = valid();
  Object.assign(document.spec, spec);
  const result = validateDockerHost(document);
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.problems).toEqual([{ path: field, message: expect.stringContaining(message) }]);
});

test('apply reads hosts and sessions from one file and reports file:line:col with the field path', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sctl-hosts-'));
  const file = path.join(dir, 'fleet.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: DockerHost',
      'metadata:',
      '  name: h1',
      'spec:',
      '  endpoint: tcp://127.0.0.1:2411',
      '  certDir: /certs',
      '---',
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: Session',
      'metadata:',
      '  name: alice',
      'spec:',
      '  image: busybox',
    ].join('\n'),
  );
  const hosts: HostManifest[] = [];
  const sessions = readManifests([file], { recursive: false, hosts });
  expect(sessions.map((manifest) => manifest.document.metadata.name)).toEqual(['alice']);
  expect(hosts.map((host) => host.document.spec.endpoint)).toEqual(['tcp://127.0.0.1:2411']);

  writeFileSync(
    file,
    [
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: DockerHost',
      'metadata:',
      '  name: h1',
      'spec:',
      '  endpoint: http://127.0.0.1:2411',
      '  certDir: /certs',
      '  capacity:',
      '    maxSesions: 3',
    ].join('\n'),
  );
  expect(() => readManifests([file], { recursive: false, hosts: [] })).toThrow(ManifestError);
  try {
    readManifests([file], { recursive: false, hosts: [] });
  } catch (error) {
    expect((error as ManifestError).problems).toEqual([
      expect.stringMatching(new RegExp(`^${file}:6:3: spec\\.endpoint: expected tcp://HOST:PORT`)),
      `${file}:9:5: spec.capacity.maxSesions: unknown field (did you mean "maxSessions"?)`,
    ]);
  }
  // Commands other than apply refuse host documents, naming where they are.
  writeFileSync(file, ['apiVersion: sessionctl.dev/v1alpha1', 'kind: DockerHost', 'metadata: {name: h1}'].join('\n'));
  expect(() => readManifests([file], { recursive: false })).toThrow(
    `${file}:2:1: kind: DockerHost documents are taken by`,
  );
});
