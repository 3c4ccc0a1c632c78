/**
 * The fleet's metrics (issue 15): hosts by state, what is placed on each host, the leases this
 * replica holds and their transitions, live replicas, scheduling latency, reschedules and the
 * sessions that wait for room. The controller core sets them; see docs/fleet.md and docs/metrics.md.
 *
 * Label-less series and labels with a known set of values are pre-initialised here at 0, so that
 * dashboards and alerts see them from the first scrape (a rate over an absent series is no data,
 * not zero).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { UnscheduledReason } from '../model/placement';
import type { FleetSnapshot } from '../store/fleet-snapshot';

export const HOST_STATES = ['Pending', 'Ready', 'Unreachable', 'Lost'] as const;
export type HostState = (typeof HOST_STATES)[number];

export const LEASE_TRANSITIONS = ['acquired', 'takeover', 'released', 'lost'] as const;
export type LeaseTransition = (typeof LEASE_TRANSITIONS)[number];

export const RESCHEDULE_REASONS = ['HostLost', 'Drain', 'HostDeleted'] as const;
export type RescheduleReason = (typeof RESCHEDULE_REASONS)[number];

/** The reasons of Scheduled=False (src/model/placement.ts). */
export const UNSCHEDULABLE_REASONS: readonly UnscheduledReason[] = [
  'NoMatchingHost',
  'AllHostsCordoned',
  'AllHostsUnavailable',
  'AllHostsFull',
];

/** From a row change to the session being placed: 1 ms (a placement in the same wake-up) to 60 s. */
export const SCHEDULING_LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export interface FleetMetrics {
  /** sessionctl_hosts{state}: hosts by state, set from a count of sessionctl.hosts. */
  hosts: Gauge<'state'>;
  /** sessionctl_hosts_cordoned: cordoned hosts. */
  hostsCordoned: Gauge;
  /** sessionctl_host_sessions{host}: sessions placed on the host. */
  hostSessions: Gauge<'host'>;
  /** sessionctl_host_allocated_memory_bytes{host}: memory of the sessions placed on the host. */
  hostAllocatedMemory: Gauge<'host'>;
  /** sessionctl_host_capacity_sessions{host}: most sessions the host may hold (absent = unlimited). */
  hostCapacitySessions: Gauge<'host'>;
  /** sessionctl_leases_held{replica}: the host leases this replica holds. */
  leasesHeld: Gauge<'replica'>;
  /** sessionctl_lease_transitions_total{host, transition}. */
  leaseTransitions: Counter<'host' | 'transition'>;
  /** sessionctl_controller_replicas: live replicas this replica sees (itself included). */
  replicas: Gauge;
  /** sessionctl_scheduling_latency_seconds: from a row change to the session being placed. */
  schedulingLatency: Histogram;
  /** sessionctl_reschedules_total{reason}: sessions taken off their host to be placed elsewhere. */
  reschedules: Counter<'reason'>;
  /** sessionctl_unschedulable_sessions{reason}: sessions with Scheduled=False, by reason. */
  unschedulable: Gauge<'reason'>;
}

export interface FleetMetricsOptions {
  /**
   * sessionctl_host_capacity_sessions is also set by per-host admission (src/metrics/docker-hosts.ts);
   * one registry cannot hold the name twice, so the fleet group shares that gauge when it is given.
   */
  hostCapacitySessions?: Gauge<'host'>;
}

export function createFleetMetrics(reg: Registry[], options: FleetMetricsOptions = {}): FleetMetrics {
  const fleet: FleetMetrics = {
    ...hostMetrics(reg, options),
    ...leaseMetrics(reg),
    ...schedulingMetrics(reg),
  };
  preinitialiseFleet(fleet);
  return fleet;
}

/** Series whose label values are known in advance start at 0. */
export function preinitialiseFleet(fleet: FleetMetrics): void {
  for (const state of HOST_STATES) fleet.hosts.set({ state }, 0);
  fleet.hostsCordoned.set(0);
  fleet.replicas.set(0);
  for (const reason of RESCHEDULE_REASONS) fleet.reschedules.inc({ reason }, 0);
  for (const reason of UNSCHEDULABLE_REASONS) fleet.unschedulable.set({ reason }, 0);
}

/** Per-host series at 0 from the start, so that a rate over its lease transitions has a baseline. */
export function preinitialiseFleetHost(fleet: FleetMetrics, host: string): void {
  for (const transition of LEASE_TRANSITIONS) fleet.leaseTransitions.inc({ host, transition }, 0);
}

/**
 * Sets the database-counted gauges from a snapshot (src/store/fleet-snapshot.ts): hosts by state,
 * cordoned hosts, live replicas, what is placed on each host and the sessions waiting by reason.
 * A host that is gone loses its sessions and memory series. The capacity gauge is shared with
 * per-host admission, which may know a limit the row does not (SESSIONCTL_HOST_MAX_SESSIONS for the
 * DOCKER_HOST host), so it is only set here, never removed. Call it on a timer (the lease renew
 * tick, say); it does not touch the per-replica series (leases held, transitions, latency).
 */
export function recordFleetSnapshot(fleet: FleetMetrics, snapshot: FleetSnapshot): void {
  for (const state of HOST_STATES) fleet.hosts.set({ state }, snapshot.hostsByState[state] ?? 0);
  fleet.hostsCordoned.set(snapshot.cordoned);
  fleet.replicas.set(snapshot.replicas);
  fleet.hostSessions.reset();
  fleet.hostAllocatedMemory.reset();
  for (const host of snapshot.hosts) {
    fleet.hostSessions.set({ host: host.name }, host.sessions);
    fleet.hostAllocatedMemory.set({ host: host.name }, host.allocatedMemoryBytes);
    if (host.maxSessions !== null) fleet.hostCapacitySessions.set({ host: host.name }, host.maxSessions);
  }
  for (const reason of UNSCHEDULABLE_REASONS) fleet.unschedulable.set({ reason }, snapshot.unschedulable[reason] ?? 0);
}

function hostMetrics(reg: Registry[], options: FleetMetricsOptions) {
  return {
    hosts: new Gauge({
      name: 'sessionctl_hosts',
      help: 'Docker hosts by state (Pending, Ready, Unreachable, Lost), counted from sessionctl.hosts',
      labelNames: ['state'] as const,
      registers: reg,
    }),
    hostsCordoned: new Gauge({
      name: 'sessionctl_hosts_cordoned',
      help: 'Docker hosts that are cordoned (no new placements)',
      registers: reg,
    }),
    hostSessions: new Gauge({
      name: 'sessionctl_host_sessions',
      help: 'Sessions placed on the host (placed_host), whether running or not',
      labelNames: ['host'] as const,
      registers: reg,
    }),
    hostAllocatedMemory: new Gauge({
      name: 'sessionctl_host_allocated_memory_bytes',
      help: 'Sum of the memory of the sessions placed on the host, as counted by placement',
      labelNames: ['host'] as const,
      registers: reg,
    }),
    hostCapacitySessions:
      options.hostCapacitySessions ??
      new Gauge({
        name: 'sessionctl_host_capacity_sessions',
        help: 'Most sessions the host may run (absent when unlimited)',
        labelNames: ['host'] as const,
        registers: reg,
      }),
  };
}

function leaseMetrics(reg: Registry[]) {
  return {
    leasesHeld: new Gauge({
      name: 'sessionctl_leases_held',
      help: 'Host leases held by this controller replica',
      labelNames: ['replica'] as const,
      registers: reg,
    }),
    leaseTransitions: new Counter({
      name: 'sessionctl_lease_transitions_total',
      help: 'Host lease changes seen by this replica, by host and transition (acquired, takeover, released, lost)',
      labelNames: ['host', 'transition'] as const,
      registers: reg,
    }),
    replicas: new Gauge({
      name: 'sessionctl_controller_replicas',
      help: 'Live controller replicas this replica sees in sessionctl.controller_replicas, itself included',
      registers: reg,
    }),
  };
}

function schedulingMetrics(reg: Registry[]) {
  return {
    schedulingLatency: new Histogram({
      name: 'sessionctl_scheduling_latency_seconds',
      help: 'Time from a session row change to the session being placed on a host',
      buckets: SCHEDULING_LATENCY_BUCKETS,
      registers: reg,
    }),
    reschedules: new Counter({
      name: 'sessionctl_reschedules_total',
      help: 'Sessions taken off their host to be placed on another, by reason (HostLost, Drain, HostDeleted)',
      labelNames: ['reason'] as const,
      registers: reg,
    }),
    unschedulable: new Gauge({
      name: 'sessionctl_unschedulable_sessions',
      help: 'Sessions waiting for a host (Scheduled=False), by reason',
      labelNames: ['reason'] as const,
      registers: reg,
    }),
  };
}
