/**
 * The Prometheus side, checked with Debian's prometheus package (installed by deploy/dev/env-up.sh):
 * promtool accepts the scrape config, the rules and their unit tests, and the live /metrics output
 * of a running controller; a real Prometheus on 127.0.0.1 scrapes that controller and answers queries.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { freePort, startController, type ControllerProcess } from '../helpers/controller';
import { removeManagedContainers } from '../helpers/docker';
import { httpSpec, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';

const DEPLOY = path.resolve(__dirname, '..', '..', 'deploy');
const PROMETHEUS_DIR = path.join(DEPLOY, 'prometheus');

let db: TestDatabase;
let controller: ControllerProcess | undefined;
let prometheus: ChildProcess | undefined;
let tmp: string | undefined;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('prometheus');
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', args, { cwd: PROMETHEUS_DIR }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? (error.code as number) : 0, output: `${stdout}${stderr}` });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  annotations?: Record<string, string>;
}

function rules(): AlertRule[] {
  const document = parse(readFileSync(path.join(PROMETHEUS_DIR, 'rules.yml'), 'utf8')) as {
    groups: Array<{ rules: AlertRule[] }>;
  };
  return document.groups.flatMap((group) => group.rules);
}

test('promtool accepts the scrape config, the rules, and the rules pass their unit tests', async () => {
  const config = await promtool(['check', 'config', 'prometheus.yml']);
  expect(config.output).toMatch(/SUCCESS: prometheus.yml is valid/);
  expect(config.code).toBe(0);
  const checked = await promtool(['check', 'rules', 'rules.yml']);
  expect(checked.code).toBe(0);
  expect(checked.output).toMatch(/SUCCESS: \d+ rules found/);
  const tested = await promtool(['test', 'rules', 'rules.test.yml']);
  expect(tested.output).toMatch(/SUCCESS/);
  expect(tested.code).toBe(0);
});

test('every alert has a summary, a description and a runbook section in docs/operations.md', () => {
  const readme = readFileSync(path.join(DEPLOY, '..', 'docs', 'operations.md'), 'utf8');
  // GitHub's anchor for "## Runbook: SessionctlControllerDown" is "#runbook-sessionctlcontrollerdown".
  const anchors = new Set(
    [...readme.matchAll(/^## Runbook: (\S+)\s*$/gm)].map((match) => `runbook-${match[1].toLowerCase()}`),
  );
  const alerts = rules().filter((rule) => rule.alert);
  expect(alerts.length).toBeGreaterThanOrEqual(10);
  for (const alert of alerts) {
    expect(alert.annotations?.summary).toBeTruthy();
    expect(alert.annotations?.description).toBeTruthy();
    const anchor = /#(.+)$/.exec(alert.annotations?.runbook_url ?? '')?.[1];
    expect({ alert: alert.alert, anchorFound: anchor !== undefined && anchors.has(anchor) }).toEqual({
      alert: alert.alert,
      anchorFound: true,
    });
  }
  // The alerts the issue asks for, by what they watch.
  const watched = alerts.map((alert) => alert.expr).join('\n');
  for (const metric of [
    'up{job="sessionctl"}',
    'reconcile_errors',
    'workqueue_depth',
    'workqueue_queue_duration_seconds',
    'sessionctl_container_restarts_total',
    'sessionctl_docker_host_up',
    'sessionctl_session_ready_slo_errors',
    'sessionctl_listener_up',
  ]) {
    expect(watched).toContain(metric);
  }
});

test('a running controller passes promtool check metrics, and a real Prometheus scrapes it', async () => {
  await upsert(db.pool, 'prom-a', httpSpec());
  controller = await startController({ databaseUrl: db.url });
  await waitConverged(db.pool, 'prom-a');
  const exposition = await (await fetch(`${controller.metricsUrl}/metrics`)).text();
  expect(exposition).toContain('controller_runtime_reconcile_total{controller="session",result="success"}');
  const lint = await promtool(['check', 'metrics'], exposition);
  expect(lint.output.trim()).toBe('');
  expect(lint.code).toBe(0);

  // A private Prometheus: temporary config and storage, a free port on 127.0.0.1, 1 s scrapes,
  // and the project's rules so that recording rules are evaluated against real data.
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-prometheus-'));
  const port = await freePort();
  const target = new URL(controller.metricsUrl).host;
  writeFileSync(
    path.join(tmp, 'prometheus.yml'),
    [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      `rule_files: [${JSON.stringify(path.join(PROMETHEUS_DIR, 'rules.yml'))}]`,
      'scrape_configs:',
      '  - job_name: sessionctl',
      `    static_configs: [{targets: [${JSON.stringify(target)}]}]`,
    ].join('\n'),
  );
  let log = '';
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${path.join(tmp, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  prometheus.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const api = `http://127.0.0.1:${port}/api/v1`;
  const query = async (expr: string) => {
    const response = await fetch(`${api}/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as {
      status: string;
      data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    expect(body.status).toBe('success');
    return body.data.result;
  };
  const series = await waitFor(
    async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited with ${prometheus!.exitCode}:\n${log}`);
      const result = await query('controller_runtime_reconcile_total');
      return result.length > 0 ? result : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: 'Prometheus to have scraped controller_runtime_reconcile_total' },
  );
  expect(series.map((entry) => entry.metric.result).sort()).toEqual(['error', 'requeue', 'requeue_after', 'success']);
  const success = series.find((entry) => entry.metric.result === 'success')!;
  expect(success.metric).toMatchObject({ job: 'sessionctl', controller: 'session', instance: target });
  expect(Number(success.value[1])).toBeGreaterThanOrEqual(1);
  const up = await query('up{job="sessionctl"}');
  expect(up.map((entry) => entry.value[1])).toEqual(['1']);
  // The controller is up, so the controller-down alert is not firing; the rules load without errors.
  const rulesResponse = (await (await fetch(`${api}/rules`)).json()) as {
    data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
  };
  const loaded = rulesResponse.data.groups.flatMap((group) => group.rules);
  expect(loaded.length).toBe(rules().length);
  await waitFor(
    async () => {
      const state = (await (await fetch(`${api}/rules`)).json()) as typeof rulesResponse;
      const all = state.data.groups.flatMap((group) => group.rules);
      return all.every((rule) => rule.health === 'ok') ? all : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500, what: 'every rule to have been evaluated without error' },
  );
  // Before the first scrape `absent(up)` is true and the alert may have gone pending; once the
  // controller is scraped it must leave the active alerts.
  await waitFor(
    async () => {
      const alerts = (await (await fetch(`${api}/alerts`)).json()) as {
        data: { alerts: Array<{ labels: { alertname: string } }> };
      };
      return !alerts.data.alerts.some((alert) => alert.labels.alertname === 'SessionctlControllerDown');
    },
    { timeoutMs: 15_000, intervalMs: 250, what: 'SessionctlControllerDown to be inactive while the controller is up' },
  );
});
