/**
 * The metrics table, read from the prom-client registries themselves: name, type, labels and help.
 * The default process metrics (collectDefaultMetrics) are left out and summarised in one line.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createGatewayMetrics } from '../../src/gateway/metrics';
import { createMetrics } from '../../src/metrics/registry';
import { cell } from './markers';

export interface MetricSource {
  /** Heading of this source's table in docs/metrics.md. */
  title: string;
  /** Builds a fresh registry holding every metric the component registers. */
  registry: () => Registry;
}

/** Every component that exports metrics. To document a new registry, add one line here. */
export const METRIC_SOURCES: MetricSource[] = [
  { title: 'Controller (`/metrics` on `SESSIONCTL_METRICS_ADDR`)', registry: () => createMetrics().registry },
  {
    title: 'Gateway (`/metrics` on `SESSIONCTL_GATEWAY_METRICS_ADDR`)',
    registry: () => createGatewayMetrics().registry,
  },
];

export interface DocumentedMetric {
  name: string;
  type: string;
  labels: string[];
  help: string;
}

function defaultMetricNames(): Set<string> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return new Set(registry.getMetricsAsArray().map((metric) => metric.name));
}

/** The metrics of one source, defaults excluded, sorted by name. */
export function metricsOf(source: MetricSource): DocumentedMetric[] {
  const defaults = defaultMetricNames();
  return source
    .registry()
    .getMetricsAsArray()
    .filter((metric) => !defaults.has(metric.name))
    .map((metric) => {
      const raw = metric as unknown as { name: string; help: string; type: string; labelNames?: string[] };
      return { name: raw.name, type: raw.type, labels: [...(raw.labelNames ?? [])], help: raw.help };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function renderMetricsTable(): string {
  return METRIC_SOURCES.map((source) => {
    const rows = metricsOf(source).map(
      (metric) =>
        `| \`${metric.name}\` | ${metric.type} | ${metric.labels.map((label) => `\`${label}\``).join(', ') || '—'} | ${cell(metric.help)} |`,
    );
    return [`### ${source.title}`, '', '| metric | type | labels | help |', '|---|---|---|---|', ...rows].join('\n');
  }).join('\n\n');
}
