/**
 * The Grafana dashboard asks only for what exists: every PromQL expression in
 * deploy/grafana/dashboards/sessionctl.json (and in the Prometheus rules) names a metric that a
 * running controller (or gateway) really exports, or a recording rule of deploy/prometheus/rules.yml.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { startController, type ControllerProcess } from '../helpers/controller';
import { removeManagedContainers } from '../helpers/docker';
import { createGatewayMetrics } from '../../src/gateway/metrics';

const DEPLOY = path.resolve(__dirname, '..', '..', 'deploy');
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'Inf',
  'NaN',
]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or strings. */
export function metricNames(expr: string): string[] {
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = text.slice(match.index + match[0].length).trimStart();
    if (rest.startsWith('(') || KEYWORDS.has(match[0])) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** Sample names a /metrics exposition offers, from its TYPE lines (histograms expand to their series). */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') ['_bucket', '_sum', '_count'].forEach((suffix) => names.add(name + suffix));
    else if (type === 'summary') ['', '_sum', '_count'].forEach((suffix) => names.add(name + suffix));
    else names.add(name);
  }
  return names;
}

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}
const dashboard = JSON.parse(readFileSync(path.join(DEPLOY, 'grafana', 'dashboards', 'sessionctl.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
};
const panels = dashboard.panels
  .flatMap((panel) => [panel, ...(panel.panels ?? [])])
  .filter((panel) => panel.type !== 'row');
const ruleGroups = (
  parse(readFileSync(path.join(DEPLOY, 'prometheus', 'rules.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ record?: string; alert?: string; expr: string }> }>;
  }
).groups;
const rules = ruleGroups.flatMap((group) => group.rules);
const recorded = new Set(rules.flatMap((rule) => (rule.record ? [rule.record] : [])));

let db: TestDatabase;
let controller: ControllerProcess | undefined;
let exported: Set<string>;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('dashboard');
  controller = await startController({ databaseUrl: db.url });
  exported = exportedNames(await (await fetch(`${controller.metricsUrl}/metrics`)).text());
  // The gateway's panels and alerts: what a gateway process exports (its registry, as `sessionctl gateway` builds it).
  for (const name of exportedNames(await createGatewayMetrics().registry.metrics())) exported.add(name);
  // `up` is written by Prometheus itself for every target.
  exported.add('up');
});

afterAll(async () => {
  await controller?.stop();
  await db?.drop();
});

test('the name extractor finds metrics and skips functions, labels, keywords and ranges', () => {
  expect(
    metricNames('histogram_quantile(0.99, sum by (le, host) (rate(foo_seconds_bucket{host=~"a|b", le!="x"}[5m])))'),
  ).toEqual(['foo_seconds_bucket']);
  expect(
    metricNames('a:b:rate5m > (14.4 * 0.01) and on (job) bar_total offset 1h unless baz / clamp_min(qux, 1e-9)').sort(),
  ).toEqual(['a:b:rate5m', 'bar_total', 'baz', 'qux']);
  expect(metricNames('increase(x_total[$__rate_interval])')).toEqual(['x_total']);
});

test('the dashboard has the panels operators need, each with a query', () => {
  expect(dashboard.uid).toBe('sessionctl');
  expect(panels.length).toBeGreaterThanOrEqual(20);
  for (const panel of panels) expect(panel.targets!.length).toBeGreaterThan(0);
  const queried = new Set(panels.flatMap((panel) => panel.targets!.flatMap((target) => metricNames(target.expr))));
  // The list: sessions by phase, Ready p50/p95/p99, reconcile rate and errors, queue depth
  // and wait, Docker latency by operation and host, restarts by reason, host up, listener reconnects.
  for (const name of [
    'sessionctl_sessions',
    'job:sessionctl_session_ready_seconds:p50_5m',
    'job:sessionctl_session_ready_seconds:p95_5m',
    'job:sessionctl_session_ready_seconds:p99_5m',
    'controller_runtime_reconcile_total',
    'controller_runtime_reconcile_errors_total',
    'workqueue_depth',
    'job:workqueue_queue_duration_seconds:p99_5m',
    'host:sessionctl_docker_request_duration_seconds:p99_5m',
    'sessionctl_container_restarts_total',
    'sessionctl_docker_host_up',
    'sessionctl_listener_reconnects_total',
  ])
    expect(queried).toContain(name);
});

test('every dashboard query names only metrics the controller exports or recording rules', () => {
  const unknown: string[] = [];
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      for (const name of metricNames(target.expr))
        if (!exported.has(name) && !recorded.has(name)) unknown.push(`${panel.title}: ${name}`);
    }
  }
  expect(unknown).toEqual([]);
});

test('every Prometheus rule is built from exported metrics (or earlier recording rules)', () => {
  const unknown: string[] = [];
  for (const rule of rules) {
    for (const name of metricNames(rule.expr))
      if (!exported.has(name) && !recorded.has(name)) unknown.push(`${rule.record ?? rule.alert}: ${name}`);
  }
  expect(unknown).toEqual([]);
});
