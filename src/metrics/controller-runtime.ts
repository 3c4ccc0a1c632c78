/**
 * The controller's metrics named as controller-runtime's and client-go's (reconciles, the workqueue
 * and its in-flight work), so that dashboards built for Kubernetes controllers carry over.
 * src/metrics/registry.ts assembles them with the rest.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './latency-buckets';

/** controller-runtime's reconcile metrics. */
export function reconcileMetrics(reg: Registry[]) {
  return {
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers: reg,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers: reg,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: LATENCY_BUCKETS,
      registers: reg,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers: reg,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers: reg,
    }),
  };
}

/** client-go's workqueue counters and histograms. */
export function workqueueMetrics(reg: Registry[]) {
  return {
    queueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers: reg,
    }),
    queueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers: reg,
    }),
    queueLatency: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: LATENCY_BUCKETS,
      registers: reg,
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: LATENCY_BUCKETS,
      registers: reg,
    }),
    queueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers: reg,
    }),
  };
}

/** client-go's in-flight workqueue gauges, computed at scrape time from each queue's start times. */
export function inFlightMetrics(reg: Registry[]) {
  const inFlightByQueue = new Map<string, () => Iterable<number>>();
  const inFlightSeconds = (name: string) =>
    [...(inFlightByQueue.get(name)?.() ?? [])].map((started) => (Date.now() - started) / 1000);
  return {
    unfinishedWork: new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: 'How many seconds of work has been done that is in progress and has not been observed by work_duration',
      labelNames: ['name'],
      registers: reg,
      collect() {
        for (const name of inFlightByQueue.keys())
          this.set(
            { name },
            inFlightSeconds(name).reduce((sum, value) => sum + value, 0),
          );
      },
    }),
    longestRunning: new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running',
      labelNames: ['name'],
      registers: reg,
      collect() {
        for (const name of inFlightByQueue.keys()) this.set({ name }, Math.max(0, ...inFlightSeconds(name)));
      },
    }),
    /** Lets a queue report its in-flight start times (ms epoch) to the two gauges above. */
    trackInFlight(name: string, startTimes: () => Iterable<number>): void {
      inFlightByQueue.set(name, startTimes);
    },
  };
}
