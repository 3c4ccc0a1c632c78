/**
 * Every generated section of the docs: which page, which marker, and what renders it. To generate a
 * new table, write its renderer and add one entry here; `npm run docs:generate` writes it and
 * test/unit/docs.test.ts fails when the page is stale.
 */
import { renderBenchmarkTable } from './benchmark';
import { renderConfigurationTable } from './configuration';
import { renderFleetBenchmark } from './fleet-benchmark';
import { renderGatewayContenders, renderGatewayGoals } from './gateway-benchmark';
import { renderMetricsTable } from './metrics';
import { renderReadmeBenchmark } from './readme-benchmark';

export interface GeneratedSection {
  /** The page, relative to the repository root. */
  file: string;
  /** The marker id: `<!-- generated:begin ID -->`. */
  id: string;
  render: (root: string) => string;
}

export const GENERATED_SECTIONS: GeneratedSection[] = [
  { file: 'docs/configuration.md', id: 'configuration', render: () => renderConfigurationTable() },
  { file: 'docs/metrics.md', id: 'metrics', render: () => renderMetricsTable() },
  { file: 'docs/benchmark.md', id: 'benchmark', render: (root) => renderBenchmarkTable(root) },
  { file: 'docs/benchmark.md', id: 'fleet-benchmark', render: (root) => renderFleetBenchmark(root) },
  { file: 'README.md', id: 'readme-benchmark', render: (root) => renderReadmeBenchmark(root) },
  { file: 'README.md', id: 'gateway-benchmark', render: (root) => renderGatewayGoals(root, false) },
  { file: 'docs/gateway.md', id: 'gateway-goals', render: (root) => renderGatewayGoals(root) },
  { file: 'docs/gateway.md', id: 'gateway-contenders', render: (root) => renderGatewayContenders(root) },
];
