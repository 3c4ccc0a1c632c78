/**
 * The fleet's gauges from the database at each safety poll: hosts by state and cordon, and what is
 * placed on each host against its capacity. Every replica sets the same values (they are read from
 * the one database), so dashboards may take any replica's, or max() over them.
 */
import type { Pool } from 'pg';
import { HOST_STATES } from '../../../src/metrics/fleet';
import type { Metrics } from '../../../src/metrics/registry';
import { listHosts } from '../../../src/store/hosts';

export async function fleetGauges(pool: Pool, metrics: Metrics): Promise<void> {
  const hosts = await listHosts(pool);
  const { fleet } = metrics;
  for (const state of HOST_STATES) fleet.hosts.set({ state }, hosts.filter((host) => host.state === state).length);
  fleet.hostsCordoned.set(hosts.filter((host) => host.cordoned).length);
  for (const host of hosts) {
    fleet.hostSessions.set({ host: host.name }, host.sessions);
    fleet.hostAllocatedMemory.set({ host: host.name }, host.allocatedMemoryBytes);
    if (host.maxSessions !== null) fleet.hostCapacitySessions.set({ host: host.name }, host.maxSessions);
  }
}
