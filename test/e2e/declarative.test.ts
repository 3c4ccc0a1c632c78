/**
 * Declarative specs end to end: the real CLI against the real controller, dockerd and PostgreSQL.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, managedContainers, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { ROOT, sessionctl } from '../helpers/cli';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let controller: ControllerProcess;
let dir: string;
const names = Array.from({ length: 20 }, (_, index) => `decl-${String(index).padStart(2, '0')}`);
const cli = (...args: string[]) => sessionctl(args, { DATABASE_URL: db.url });

function writeSpec(name: string, env: Record<string, string> = { MODE: 'one' }): void {
  const document = {
    apiVersion: 'sessionctl.dev/v1alpha1',
    kind: 'Session',
    metadata: { name, labels: { suite: 'declarative' } },
    spec: {
      image: 'sessionctl/base:dev',
      command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
      env,
      ports: [{ name: 'http', containerPort: 8080 }],
      resources: { memory: '32Mi' },
    },
  };
  const nested = name.endsWith('9') ? path.join(dir, 'nested') : dir;
  writeFileSync(path.join(nested, `${name}.yaml`), stringify(document));
}

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('declarative');
  controller = await startController({ databaseUrl: db.url });
  dir = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-specs-'));
  mkdirSync(path.join(dir, 'nested'));
  names.forEach((name) => writeSpec(name));
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

test('apply -R --wait of a directory of 20 specs: all become Ready', async () => {
  const result = await cli('apply', '-R', '-f', dir, '--wait', '--timeout', '120s');
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const lines = result.stdout.trim().split('\n');
  for (const name of names) {
    expect(lines).toContain(`session/${name} created`);
    expect(lines).toContain(`session/${name} Ready`);
  }
  expect((await managedContainers()).filter((info) => info.State === 'running')).toHaveLength(20);
});

test('re-apply: all unchanged, and --wait returns at once when everything is already Ready', async () => {
  const started = Date.now();
  const result = await cli('apply', '-R', '-f', dir, '--wait', '--timeout', '60s');
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(result.code).toBe(0);
  expect(
    result.stdout
      .trim()
      .split('\n')
      .filter((line) => line.endsWith('unchanged'))
      .sort(),
  ).toEqual(names.map((name) => `session/${name} unchanged`));
});

test('edit one file: diff shows it, apply configures exactly one, and one container is recreated', async () => {
  const before = new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]));
  writeSpec('decl-07', { MODE: 'two' });
  const diff = await cli('diff', '-R', '-f', dir);
  expect(diff.code).toBe(1);
  expect(diff.stdout).toBe('session/decl-07\n  ~ spec.env.MODE: "one" -> "two"\n');
  const dryRun = await cli('apply', '-R', '-f', dir, '--dry-run');
  expect(dryRun.stdout).toContain('session/decl-07 configured (dry run)');
  expect((await cli('diff', '-R', '-f', dir)).code).toBe(1);

  const result = await cli('apply', '-R', '-f', dir, '--wait');
  expect(result.code).toBe(0);
  expect(result.stdout.split('\n').filter((line) => line.endsWith(' configured'))).toEqual([
    'session/decl-07 configured',
  ]);
  const after = new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]));
  const recreated = names.filter((name) => after.get(name) !== before.get(name));
  expect(recreated).toEqual(['decl-07']);
  expect((await cli('diff', '-R', '-f', dir)).code).toBe(0);
});

test('--prune -l removes the session whose spec left the directory, and its container', async () => {
  rmSync(path.join(dir, 'decl-03.yaml'));
  const result = await cli('apply', '-R', '-f', dir, '--prune', '-l', 'suite=declarative', '--wait');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('session/decl-03 pruned');
  expect(await containersOf('decl-03')).toEqual([]);
  expect((await cli('get', 'sessions', 'decl-03')).code).toBe(1);
});

test('get -o json parses, -o name and -l select, and describe shows the events', async () => {
  const json = await cli('get', 'sessions', '-o', 'json');
  const list = JSON.parse(json.stdout) as {
    kind: string;
    items: Array<{ metadata: { name: string }; status: { phase: string } }>;
  };
  expect(list.kind).toBe('List');
  expect(list.items).toHaveLength(19);
  expect(list.items.every((item) => item.status.phase === 'Running')).toBe(true);

  const one = JSON.parse((await cli('get', 'session', 'decl-07', '-o', 'json')).stdout) as {
    metadata: { generation: number };
  };
  expect(one.metadata.generation).toBe(2);
  expect((await cli('get', 'sessions', '-l', 'suite!=declarative', '-o', 'name')).stdout).toBe('');
  expect(
    (await cli('get', 'sessions', '-l', 'suite in (declarative)', '-o', 'name')).stdout.trim().split('\n'),
  ).toHaveLength(19);

  const table = await cli('get', 'sessions', '-o', 'wide');
  expect(table.stdout.split('\n')[0].split(/\s+/)).toEqual([
    'NAME',
    'STATE',
    'PHASE',
    'READY',
    'RESTARTS',
    'AGE',
    'IMAGE',
    'CONTAINER',
    'REASON',
  ]);

  const describe = await cli('describe', 'session', 'decl-07');
  expect(describe.code).toBe(0);
  expect(describe.stdout).toMatch(/Generation:\s+2 \(observed: 2\)/);
  expect(describe.stdout).toMatch(/Ready\s+True\s+SessionReady/);
  expect(describe.stdout).toMatch(/Events:[\s\S]*Recreated[\s\S]*Created/);
});

test('get -w prints a change as it happens', async () => {
  const watcher = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'sessionctl.js'), 'get', 'sessions', 'decl-01', '-w'],
    { env: { ...process.env, DATABASE_URL: db.url } },
  );
  let output = '';
  watcher.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor(() => output.includes('decl-01'), { what: 'the initial listing' });
    await cli('delete', 'session', 'decl-01');
    // A session that owns a container is deleted gracefully: first it shows as Terminating, then as deleted.
    await waitFor(() => /^decl-01\s+deleted$/m.test(output), { what: 'the watched deletion', timeoutMs: 20_000 });
    const lines = output.trim().split('\n');
    const terminating = lines.findIndex((line) => /^decl-01\s+\S+\s+Terminating\s/.test(line));
    const deleted = lines.findIndex((line) => /^decl-01\s+deleted$/.test(line));
    expect({ terminating: terminating > 0, deletedAfterIt: deleted > terminating, output }).toEqual({
      terminating: true,
      deletedAfterIt: true,
      output,
    });
  } finally {
    watcher.kill('SIGINT');
  }
});

test('delete --wait and wait --for=delete', async () => {
  const deleted = await cli('delete', 'session', 'decl-02', '--wait');
  expect(deleted.code).toBe(0);
  expect(deleted.stdout).toBe('session/decl-02 deleted\nsession/decl-02 deleted\n');
  expect(await containersOf('decl-02')).toEqual([]);
  const waited = await cli('wait', 'session/decl-04', '--for=condition=Ready', '--timeout=10s');
  expect(waited).toMatchObject({ code: 0, stdout: 'session/decl-04 condition met (Ready)\n' });
  const timeout = await cli('wait', 'session/decl-04', '--for=delete', '--timeout=1s');
  expect(timeout.code).toBe(1);
  expect(timeout.stderr).toMatch(/timed out waiting for session decl-04 to be Deleted/);
  expect((await cli('delete', 'session', 'nope')).code).toBe(1);
});

test('logs prints the container output over mutual TLS: stdout and stderr apart, --tail counted in lines', async () => {
  // Outside the specs directory, which other tests apply and prune.
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sessionctl-logs-')), 'decl-logs.yaml');
  // One stderr line, five stdout lines, then the server: the log holds exactly these six lines.
  const command = [
    'sh',
    '-c',
    'echo to-stderr >&2; for i in 1 2 3 4 5; do echo line-$i; done; exec httpd -f -p 8080 -h /www',
  ];
  writeFileSync(
    file,
    stringify({
      apiVersion: 'sessionctl.dev/v1alpha1',
      kind: 'Session',
      metadata: { name: 'decl-logs', labels: { suite: 'logs' } },
      spec: { image: 'sessionctl/base:dev', command, resources: { memory: '32Mi' } },
    }),
  );
  expect((await cli('apply', '-f', file, '--wait', '--timeout', '60s')).code).toBe(0);
  // Running does not mean the log driver has copied the lines yet: wait for the last one.
  const all = await waitFor(
    async () => {
      const result = await cli('logs', 'decl-logs');
      return result.stdout.includes('line-5') ? result : undefined;
    },
    { what: 'the last log line of decl-logs', timeoutMs: 20_000 },
  );
  expect(all).toMatchObject({ code: 0, stdout: 'line-1\nline-2\nline-3\nline-4\nline-5\n', stderr: 'to-stderr\n' });
  // --tail counts lines of both streams; Docker orders lines of different streams by when it read
  // them, so which stream the first of the two comes from may vary, but each stream's part is its end.
  const tail = await cli('logs', 'session/decl-logs', '--tail', '2');
  const tailOut = tail.stdout.split('\n').filter(Boolean);
  const tailErr = tail.stderr.split('\n').filter(Boolean);
  expect(tail.code).toBe(0);
  expect(tailOut.length + tailErr.length).toBe(2);
  expect(tailOut).toEqual(['line-1', 'line-2', 'line-3', 'line-4', 'line-5'].slice(5 - tailOut.length));
  expect(tailErr).toEqual(['to-stderr'].slice(1 - tailErr.length));
  const missing = await cli('logs', 'no-such-session');
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/session "no-such-session" has no container/);
  await cli('delete', 'session', 'decl-logs', '--wait');
});

test('apply --wait exits non-zero naming each session that failed and why', async () => {
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    stringify({
      apiVersion: 'sessionctl.dev/v1alpha1',
      kind: 'Session',
      metadata: { name: 'decl-missing-image' },
      spec: { image: 'sessionctl/absent:dev', imagePullPolicy: 'Never' },
    }),
  );
  const result = await cli('apply', '-f', bad, '--wait', '--timeout', '8s');
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(
    /session\/decl-missing-image: timed out: ImageNotPresent: image sessionctl\/absent:dev is not present/,
  );
});

test('usage errors exit 2 with a suggestion; every command has --help with an example', async () => {
  const unknownFlag = await cli('apply', '-f', dir, '--prunee');
  expect(unknownFlag.code).toBe(2);
  expect(unknownFlag.stderr).toMatch(/Did you mean --prune\?/);
  expect((await cli('apply', '-f', dir, '--prune')).code).toBe(2);
  for (const command of ['controller', 'migrate', 'apply', 'diff', 'get', 'describe', 'delete', 'wait', 'logs']) {
    const help = await cli(command, '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples?:\n {2}.*\bsessionctl \S/);
  }
});
