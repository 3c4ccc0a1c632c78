/**
 * (b) LISTEN pickup latency: M single-row spec updates, spaced apart, each a real generation bump
 * that changes nothing about the container (restartPolicy is outside the spec hash), so the
 * controller's work is the pickup and a status write. The figure is the controller's own histogram
 * sessionctl_notify_pickup_seconds (trigger clock_timestamp() to key queued), as the delta over
 * exactly these M updates, with PromQL-style interpolation inside buckets.
 */
import type { ControllerProcess } from '../../helpers/controller';
import type { TestDatabase } from '../../helpers/database';
import { waitAllReady } from '../../helpers/sessions';
import { waitFor } from '../../helpers/wait';
import {
  deltaByLabel,
  histogramDelta,
  histogramMean,
  histogramQuantile,
  scrape,
  total,
  type Histogram,
} from '../lib/prom';
import { sleep } from '../lib/stats';

export interface PickupResult {
  updates: number;
  spacingMs: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Cumulative counts by bucket upper bound (ms), for the record. */
  buckets: Array<[string, number]>;
  /** Mean time from generation written to Ready at that generation (sessionctl_session_ready_seconds sum/count). */
  updateToReadyMeanMs: number;
  /** Docker calls during the phase: expected none, since no container changes. */
  dockerRequests: Record<string, number>;
}

const FLIP = `UPDATE sessionctl.sessions
  SET spec = jsonb_set(spec, '{restartPolicy}', to_jsonb(CASE WHEN spec->>'restartPolicy' = 'OnFailure' THEN 'Always' ELSE 'OnFailure' END))
  WHERE name = $1`;

export async function pickupLatency(
  db: TestDatabase,
  controller: ControllerProcess,
  names: string[],
  updates: number,
  spacingMs: number,
): Promise<PickupResult> {
  const before = await scrape(controller.metricsUrl);
  const notifiedBefore = total(before, 'sessionctl_notify_pickup_seconds_count');
  const touched = new Set<string>();
  for (let index = 0; index < updates; index++) {
    const name = names[index % names.length];
    touched.add(name);
    await db.pool.query(FLIP, [name]);
    await sleep(spacingMs);
  }
  await waitFor(
    async () =>
      total(await scrape(controller.metricsUrl), 'sessionctl_notify_pickup_seconds_count') - notifiedBefore >= updates,
    {
      timeoutMs: 10_000,
      what: `${updates} notifications to be picked up`,
    },
  );
  await waitAllReady(db.pool, [...touched], 30_000);
  const after = await scrape(controller.metricsUrl);
  const hist: Histogram = histogramDelta(before, after, 'sessionctl_notify_pickup_seconds');
  const ready = histogramDelta(before, after, 'sessionctl_session_ready_seconds');
  return {
    updates: hist.count,
    spacingMs,
    p50Ms: histogramQuantile(0.5, hist) * 1000,
    p99Ms: histogramQuantile(0.99, hist) * 1000,
    meanMs: histogramMean(hist) * 1000,
    buckets: hist.buckets.map(([le, count]) => [Number.isFinite(le) ? String(le * 1000) : '+Inf', count]),
    updateToReadyMeanMs: histogramMean(ready) * 1000,
    dockerRequests: deltaByLabel(before, after, 'sessionctl_docker_requests_total', 'operation'),
  };
}
