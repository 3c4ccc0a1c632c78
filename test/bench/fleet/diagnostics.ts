/**
 * Where the fleet's creates spend their time, for the throughput phase: cores used by each group of
 * processes (each replica, PostgreSQL, the daemons, runc and the rest), and per host the average
 * number of Docker calls in flight (network, create and start time over wall time: the raw side
 * keeps its concurrency, 8, busy on every daemon) with the mean latency of each operation.
 */
import { cpuByGroup, cpuSnapshot, type CpuSnapshot } from '../lib/proc';
import { scrape, type Snapshot } from '../lib/prom';
import type { Replica } from '../../helpers/fleet';

const SLOT_OPERATIONS = new Set(['network_inspect', 'network_create', 'create', 'start']);
const DURATION = 'sessionctl_docker_request_duration_seconds';

export interface FleetDiagnostics {
  cpuCores: Record<string, number>;
  /** Per host: average Docker calls in flight, and per operation the count and mean latency (ms). */
  hosts: Record<string, { averageInFlight: number; operations: Record<string, { count: number; meanMs: number }> }>;
}

interface Start {
  at: number;
  cpu: CpuSnapshot;
  scrapes: Snapshot[];
}

export async function diagnosticsStart(replicas: Replica[]): Promise<Start> {
  return {
    at: performance.now(),
    cpu: cpuSnapshot(),
    scrapes: await Promise.all(replicas.map((replica) => scrape(replica.metricsUrl))),
  };
}

export async function diagnosticsEnd(replicas: Replica[], start: Start): Promise<FleetDiagnostics> {
  const scrapes = await Promise.all(replicas.map((replica) => scrape(replica.metricsUrl)));
  const wallSeconds = (performance.now() - start.at) / 1000;
  const own = Object.fromEntries([
    ['bench', process.pid],
    ...replicas.map((replica) => [replica.id, replica.child.pid!]),
  ]) as Record<string, number>;
  const cpuCores = cpuByGroup(start.cpu, cpuSnapshot(), own);
  const totals = new Map<string, { sum: number; count: number }>();
  const add = (snapshot: Snapshot, sign: number) => {
    for (const sample of snapshot) {
      const field =
        sample.name === `${DURATION}_sum` ? 'sum' : sample.name === `${DURATION}_count` ? 'count' : undefined;
      if (!field) continue;
      const key = `${sample.labels.host}\t${sample.labels.operation}`;
      const total = totals.get(key) ?? { sum: 0, count: 0 };
      total[field] += sign * sample.value;
      totals.set(key, total);
    }
  };
  scrapes.forEach((snapshot) => add(snapshot, 1));
  start.scrapes.forEach((snapshot) => add(snapshot, -1));
  const hosts: FleetDiagnostics['hosts'] = {};
  for (const [key, total] of totals) {
    if (total.count <= 0) continue;
    const [host, operation] = key.split('\t');
    const entry = (hosts[host] ??= { averageInFlight: 0, operations: {} });
    entry.operations[operation] = { count: total.count, meanMs: (total.sum / total.count) * 1000 };
    if (SLOT_OPERATIONS.has(operation)) entry.averageInFlight += total.sum / wallSeconds;
  }
  return { cpuCores, hosts };
}
