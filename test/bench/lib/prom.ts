/**
 * Reading the controller's /metrics like Prometheus would: parse the text format, take deltas
 * between two scrapes, and estimate quantiles from histogram buckets with the same linear
 * interpolation as PromQL's histogram_quantile().
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export type Snapshot = Sample[];

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseProm(text: string): Snapshot {
  const samples: Snapshot = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[3] ?? '').matchAll(LABEL)) labels[label[1]] = label[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

export async function scrape(metricsUrl: string): Promise<Snapshot> {
  const response = await fetch(`${metricsUrl}/metrics`);
  if (!response.ok) throw new Error(`GET ${metricsUrl}/metrics answered ${response.status}`);
  return parseProm(await response.text());
}

const matches = (sample: Sample, name: string, filter: Record<string, string>) =>
  sample.name === name && Object.entries(filter).every(([key, value]) => sample.labels[key] === value);

export function total(snapshot: Snapshot, name: string, filter: Record<string, string> = {}): number {
  return snapshot.filter((sample) => matches(sample, name, filter)).reduce((sum, sample) => sum + sample.value, 0);
}

export function byLabel(
  snapshot: Snapshot,
  name: string,
  label: string,
  filter: Record<string, string> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const sample of snapshot) {
    if (!matches(sample, name, filter)) continue;
    const key = sample.labels[label] ?? '';
    out[key] = (out[key] ?? 0) + sample.value;
  }
  return out;
}

/** after - before per label value, dropping zero deltas. */
export function deltaByLabel(
  before: Snapshot,
  after: Snapshot,
  name: string,
  label: string,
  filter: Record<string, string> = {},
): Record<string, number> {
  const start = byLabel(before, name, label, filter);
  const end = byLabel(after, name, label, filter);
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(start), ...Object.keys(end)])) {
    const delta = (end[key] ?? 0) - (start[key] ?? 0);
    if (delta !== 0) out[key] = delta;
  }
  return out;
}

export interface Histogram {
  /** Cumulative counts by upper bound, ascending, +Inf last. */
  buckets: Array<[number, number]>;
  sum: number;
  count: number;
}

export function histogram(snapshot: Snapshot, base: string, filter: Record<string, string> = {}): Histogram {
  const counts = new Map<number, number>();
  for (const sample of snapshot) {
    if (!matches(sample, `${base}_bucket`, filter)) continue;
    const le = sample.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
    counts.set(le, (counts.get(le) ?? 0) + sample.value);
  }
  return {
    buckets: [...counts.entries()].sort((a, b) => a[0] - b[0]),
    sum: total(snapshot, `${base}_sum`, filter),
    count: total(snapshot, `${base}_count`, filter),
  };
}

export function histogramDelta(
  before: Snapshot,
  after: Snapshot,
  base: string,
  filter: Record<string, string> = {},
): Histogram {
  const start = histogram(before, base, filter);
  const end = histogram(after, base, filter);
  const startCounts = new Map(start.buckets);
  return {
    buckets: end.buckets.map(([le, count]) => [le, count - (startCounts.get(le) ?? 0)]),
    sum: end.sum - start.sum,
    count: end.count - start.count,
  };
}

/** PromQL histogram_quantile: linear within the bucket, lower bound 0 for the first bucket. */
export function histogramQuantile(q: number, hist: Histogram): number {
  const { buckets } = hist;
  if (buckets.length === 0) return Number.NaN;
  const observations = buckets[buckets.length - 1][1];
  if (observations === 0) return Number.NaN;
  const rank = q * observations;
  let previousBound = 0;
  let previousCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      // Above the highest finite bound PromQL answers that bound: the true value is only known to be larger.
      if (bound === Number.POSITIVE_INFINITY) return previousBound;
      if (count === previousCount) return bound;
      return previousBound + (bound - previousBound) * ((rank - previousCount) / (count - previousCount));
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound;
}

/** Mean from a histogram's sum and count (exact, unlike the quantiles). */
export function histogramMean(hist: Histogram): number {
  return hist.count > 0 ? hist.sum / hist.count : Number.NaN;
}

/** Every label value of a histogram family, e.g. each Docker operation. */
export function histogramMeansBy(
  before: Snapshot,
  after: Snapshot,
  base: string,
  label: string,
): Record<string, { count: number; meanMs: number }> {
  const out: Record<string, { count: number; meanMs: number }> = {};
  const counts = deltaByLabel(before, after, `${base}_count`, label);
  for (const key of Object.keys(counts)) {
    const hist = histogramDelta(before, after, base, { [label]: key });
    out[key] = { count: hist.count, meanMs: histogramMean(hist) * 1000 };
  }
  return out;
}
