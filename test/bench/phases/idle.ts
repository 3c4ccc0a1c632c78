/**
 * (d) Idle cost: with the N sessions converged and the queue empty, the controller process's CPU
 * (utime+stime from /proc/<pid>/stat), its memory (VmRSS sampled every second, VmHWM peak since
 * start) and the Docker API calls it made (sessionctl_docker_requests_total delta by operation).
 * /metrics is scraped only at the window's edges, as a Prometheus would every minute or so.
 */
import type { ControllerProcess } from '../../helpers/controller';
import { waitFor } from '../../helpers/wait';
import { logLines } from '../lib/controller';
import { clockTicks, cpuSecondsBetween, procSample } from '../lib/proc';
import { deltaByLabel, scrape, total } from '../lib/prom';
import { sleep } from '../lib/stats';

export interface IdleResult {
  seconds: number;
  cpuSeconds: number;
  cpuPercentOfOneCore: number;
  clockTicksPerSecond: number;
  rssMb: { start: number; end: number; max: number; mean: number };
  peakRssMb: number;
  dockerRequests: Record<string, number>;
  reconciles: number;
  /** Warnings the controller logged in the window, e.g. a lost Docker event stream. */
  warnings: Array<{ atSecond: number; msg: string; err?: string }>;
}

export async function idleCost(controller: ControllerProcess, seconds: number): Promise<IdleResult> {
  const pid = controller.child.pid!;
  await waitFor(
    async () => {
      const snapshot = await scrape(controller.metricsUrl);
      return total(snapshot, 'workqueue_depth') === 0 && total(snapshot, 'controller_runtime_active_workers') === 0;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the work queue to drain' },
  );
  await sleep(2_000);
  const before = await scrape(controller.metricsUrl);
  const start = procSample(pid);
  const rss: number[] = [start.rssKb];
  const deadline = start.at + seconds * 1000;
  while (Date.now() < deadline) {
    await sleep(Math.min(1_000, deadline - Date.now()));
    rss.push(procSample(pid).rssKb);
  }
  const end = procSample(pid);
  const after = await scrape(controller.metricsUrl);
  const elapsed = (end.at - start.at) / 1000;
  const cpuSeconds = cpuSecondsBetween(start, end);
  const mb = (kb: number) => kb / 1024;
  const warnings = logLines(controller)
    .filter((line) => line.level >= 40 && line.time >= start.at && line.time <= end.at)
    .map((line) => ({
      atSecond: (line.time - start.at) / 1000,
      msg: line.msg,
      err: (line.err as { message?: string } | undefined)?.message,
    }));
  return {
    seconds: elapsed,
    cpuSeconds,
    cpuPercentOfOneCore: (cpuSeconds / elapsed) * 100,
    clockTicksPerSecond: clockTicks(),
    rssMb: {
      start: mb(start.rssKb),
      end: mb(end.rssKb),
      max: mb(Math.max(...rss)),
      mean: mb(rss.reduce((sum, value) => sum + value, 0) / rss.length),
    },
    peakRssMb: mb(end.hwmKb),
    dockerRequests: deltaByLabel(before, after, 'sessionctl_docker_requests_total', 'operation'),
    reconciles:
      total(after, 'controller_runtime_reconcile_total') - total(before, 'controller_runtime_reconcile_total'),
    warnings,
  };
}
