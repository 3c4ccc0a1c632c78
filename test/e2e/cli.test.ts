/**
 * The user's path end to end through the real CLI: migrate, apply the shipped examples, run the
 * controller, and read its metrics as Prometheus would.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, execIn, removeManagedContainers, removeManagedVolumes } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { row, waitConverged } from '../helpers/sessions';
import { readManifests } from '../../src/cli/manifests';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'sessionctl.js');
let db: TestDatabase;
let controller: ControllerProcess | undefined;

async function sessionctl(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { ...process.env, DATABASE_URL: db.url, ...env },
      cwd: ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('e2e');
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedVolumes();
  await db?.drop();
});

test('--help works, and usage errors exit 2 with a suggestion', async () => {
  const help = await sessionctl(['--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/controller[\s\S]*migrate[\s\S]*apply/);
  const typo = await sessionctl(['aply']);
  expect(typo.code).toBe(2);
  expect(typo.stderr).toMatch(/Did you mean apply\?/);
});

test('migrate is idempotent', async () => {
  const fresh = await createTestDatabase('e2e_migrate');
  try {
    // createTestDatabase migrates already; a second run through the CLI has nothing to do.
    const again = await sessionctl(['migrate'], { DATABASE_URL: fresh.url });
    expect(again).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
  } finally {
    await fresh.drop();
  }
});

test('a YAML syntax error names file:line:col and writes nothing, even the valid documents', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-'));
  const file = path.join(dir, 'broken.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: Session',
      'metadata: {name: fine}',
      'spec: {image: sessionctl/base:dev}',
      '---',
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: Session',
      'metadata: {name: broken',
      'spec: {image: x}',
      '',
    ].join('\n'),
  );
  const result = await sessionctl(['apply', '-f', file]);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(
    new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: YAML syntax error`),
  );
  expect((await db.pool.query('SELECT count(*)::int AS n FROM sessionctl.sessions')).rows[0].n).toBe(0);
});

test('a misspelled field is reported with its path and position', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-'));
  const file = path.join(dir, 'typo.yaml');
  writeFileSync(
    file,
    'apiVersion: sessionctl.dev/v1alpha1\nkind: Session\nmetadata: {name: typo}\nspec:\n  image: sessionctl/base:dev\n  enviroment: {A: "1"}\n',
  );
  const result = await sessionctl(['apply', '-f', file]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`${file}:6:3: spec.enviroment: unknown field`);
});

test('apply refuses privileged, cpus "-1" and a health port that names no port, each with its path and position, and writes nothing', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-'));
  const file = path.join(dir, 'unsafe.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: Session',
      'metadata: {name: unsafe}',
      'spec:',
      '  image: sessionctl/base:dev',
      '  ports: [{name: http, containerPort: 8080}]',
      '  resources: {cpus: "-1"}',
      '  securityContext: {privileged: true}',
      '---',
      'apiVersion: sessionctl.dev/v1alpha1',
      'kind: Session',
      'metadata: {name: unhealthy}',
      'spec:',
      '  image: sessionctl/base:dev',
      '  ports: [{name: http, containerPort: 8080}]',
      '  healthCheck: {httpGet: {port: web, path: /}}',
      '',
    ].join('\n'),
  );
  const result = await sessionctl(['apply', '-f', file]);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(new RegExp(`${file}:7:\\d+: spec\\.resources\\.cpus: .*positive number of CPUs`));
  expect(result.stderr).toMatch(new RegExp(`${file}:8:\\d+: spec\\.securityContext\\.privileged: .*never allowed`));
  expect(result.stderr).toMatch(new RegExp(`${file}:16:\\d+: spec\\.healthCheck\\.httpGet\\.port: names no port`));
  expect(
    (await db.pool.query("SELECT count(*)::int AS n FROM sessionctl.sessions WHERE name IN ('unsafe', 'unhealthy')"))
      .rows[0].n,
  ).toBe(0);
});

test('the shipped examples apply, converge under the controller, and re-apply unchanged', async () => {
  const applied = await sessionctl(['apply', '-f', path.join(ROOT, 'crds', 'examples')]);
  expect(applied.code).toBe(0);
  const examples = readManifests([path.join(ROOT, 'crds', 'examples')], { recursive: true }).map(
    (manifest) => manifest.document,
  );
  expect(applied.stdout.trim().split('\n').sort()).toEqual(
    examples.map((example) => `session/${example.metadata.name} created`).sort(),
  );

  controller = await startController({ databaseUrl: db.url });
  for (const example of examples)
    await waitConverged(db.pool, example.metadata.name, example.spec.state === 'Running' ? 'True' : 'False');

  const again = await sessionctl(['apply', '-f', path.join(ROOT, 'crds', 'examples')]);
  expect(again.stdout.trim().split('\n').sort()).toEqual(
    examples.map((example) => `session/${example.metadata.name} unchanged`).sort(),
  );
});

test('token prints the access token the container carries; rotate-token and restart replace the container', async () => {
  const shown = await sessionctl(['token', 'dave-workspace']);
  expect(shown.code).toBe(0);
  const token = shown.stdout.trim();
  expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const before = await waitConverged(db.pool, 'dave-workspace');
  expect((await execIn(before.status.containerId!, ['sh', '-c', 'cat "$SESSION_TOKEN_FILE"'])).output.trim()).toBe(
    token,
  );
  expect(before.status.endpoints).toEqual({
    ide: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    preview: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
  });

  const rotated = await sessionctl(['rotate-token', 'dave-workspace', '--wait', '--timeout', '60s']);
  expect(rotated.code).toBe(0);
  expect(rotated.stdout).toContain('session/dave-workspace token rotation requested');
  const after = (await sessionctl(['token', 'dave-workspace'])).stdout.trim();
  expect(after).not.toBe(token);
  const current = await waitConverged(db.pool, 'dave-workspace');
  expect(current.status.containerId).not.toBe(before.status.containerId);

  const noAuth = await sessionctl(['token', 'bob-notebook']);
  expect(noAuth).toMatchObject({ code: 1, stderr: expect.stringContaining('its spec sets no auth') });

  const generation = (await row(db.pool, 'bob-notebook'))!.generation;
  const restarted = await sessionctl(['restart', 'bob-notebook', '--wait']);
  expect(restarted.code).toBe(0);
  expect((await row(db.pool, 'bob-notebook'))!.generation).toBe(generation + 1);
  expect((await sessionctl(['restart', 'nobody'])).code).toBe(1);
}, 90_000);

test('/metrics exports every metric of the contract, and /healthz and /readyz answer', async () => {
  const text = await (await fetch(`${controller!.metricsUrl}/metrics`)).text();
  const names = [
    'controller_runtime_reconcile_total',
    'controller_runtime_reconcile_errors_total',
    'controller_runtime_reconcile_time_seconds_bucket',
    'controller_runtime_active_workers',
    'controller_runtime_max_concurrent_reconciles',
    'workqueue_depth',
    'workqueue_adds_total',
    'workqueue_queue_duration_seconds_bucket',
    'workqueue_work_duration_seconds_bucket',
    'workqueue_retries_total',
    'workqueue_unfinished_work_seconds',
    'workqueue_longest_running_processor_seconds',
    'sessionctl_sessions',
    'sessionctl_session_ready_seconds_bucket',
    'sessionctl_container_restarts_total',
    'sessionctl_drift_corrections_total',
    'sessionctl_docker_requests_total',
    'sessionctl_docker_request_duration_seconds_bucket',
    'sessionctl_docker_host_up',
    'sessionctl_listener_reconnects_total',
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
  ];
  for (const name of names) expect(text).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
  for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
    expect(text).toContain(`controller_runtime_reconcile_total{controller="session",result="${result}"}`);
  }
  expect(text).toMatch(/^sessionctl_session_ready_seconds_count [1-9]/m);
  expect((await fetch(`${controller!.metricsUrl}/healthz`)).status).toBe(200);
  expect((await fetch(`${controller!.metricsUrl}/readyz`)).status).toBe(200);
});

test('SIGTERM stops the controller with exit code 0 and leaves containers running', async () => {
  expect(await controller!.stop()).toBe(0);
  controller = undefined;
  expect((await containersOf('alice')).map((info) => info.State)).toEqual(['running']);
});
