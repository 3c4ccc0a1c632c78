/**
 * The fleet's metrics (src/metrics/fleet.ts) as a scrape shows them: the names and labels of the
 * contract, series with known label values at 0 before anything happens, and scheduling-latency
 * buckets from 1 ms to 60 s.
 */
import { createMetrics } from '../../src/metrics/registry';
import { preinitialiseFleetHost } from '../../src/metrics/fleet';

test('the fleet group exports its series, label values known in advance at 0', async () => {
  const metrics = createMetrics();
  const text = await metrics.registry.metrics();
  for (const state of ['Pending', 'Ready', 'Unreachable', 'Lost'])
    expect(text).toContain(`sessionctl_hosts{state="${state}"} 0\n`);
  for (const reason of ['HostLost', 'Drain', 'HostDeleted'])
    expect(text).toContain(`sessionctl_reschedules_total{reason="${reason}"} 0\n`);
  for (const reason of ['NoMatchingHost', 'AllHostsCordoned', 'AllHostsUnavailable', 'AllHostsFull'])
    expect(text).toContain(`sessionctl_unschedulable_sessions{reason="${reason}"} 0\n`);
  expect(text).toContain('sessionctl_hosts_cordoned 0\n');
  expect(text).toContain('sessionctl_controller_replicas 0\n');
  expect(text).toContain('sessionctl_scheduling_latency_seconds_bucket{le="0.001"} 0\n');
  expect(text).toContain('sessionctl_scheduling_latency_seconds_bucket{le="60"} 0\n');
  for (const name of [
    'sessionctl_host_sessions',
    'sessionctl_host_allocated_memory_bytes',
    'sessionctl_host_capacity_sessions',
    'sessionctl_leases_held',
    'sessionctl_lease_transitions_total',
  ])
    expect(text).toContain(`# TYPE ${name} `);
});

test('what the controller sets appears under the contract names and labels', async () => {
  const metrics = createMetrics();
  const { fleet } = metrics;
  // One gauge for the host's session capacity, shared with per-host admission.
  expect(fleet.hostCapacitySessions).toBe(metrics.hostCapacitySessions);
  preinitialiseFleetHost(fleet, 'h1');
  fleet.hosts.set({ state: 'Ready' }, 3);
  fleet.hostSessions.set({ host: 'h1' }, 7);
  fleet.hostAllocatedMemory.set({ host: 'h1' }, 7 * 1024 ** 3);
  fleet.hostCapacitySessions.set({ host: 'h1' }, 50);
  fleet.leasesHeld.set({ replica: 'r1' }, 2);
  fleet.leaseTransitions.inc({ host: 'h1', transition: 'takeover' });
  fleet.schedulingLatency.observe(0.004);
  fleet.reschedules.inc({ reason: 'Drain' }, 2);
  fleet.unschedulable.set({ reason: 'AllHostsFull' }, 5);
  const text = await metrics.registry.metrics();
  for (const line of [
    'sessionctl_hosts{state="Ready"} 3',
    'sessionctl_host_sessions{host="h1"} 7',
    'sessionctl_host_allocated_memory_bytes{host="h1"} 7516192768',
    'sessionctl_host_capacity_sessions{host="h1"} 50',
    'sessionctl_leases_held{replica="r1"} 2',
    'sessionctl_lease_transitions_total{host="h1",transition="takeover"} 1',
    'sessionctl_lease_transitions_total{host="h1",transition="lost"} 0',
    'sessionctl_scheduling_latency_seconds_bucket{le="0.0025"} 0',
    'sessionctl_scheduling_latency_seconds_bucket{le="0.005"} 1',
    'sessionctl_reschedules_total{reason="Drain"} 2',
    'sessionctl_unschedulable_sessions{reason="AllHostsFull"} 5',
  ])
    expect(text).toContain(`${line}\n`);
});
