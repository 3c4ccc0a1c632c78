/**
 * Per-host metrics, labelled by host: the Docker Engine API calls and their deadlines, the host's
 * health (up, degraded, event stream, stuck containers, client certificate), and admission (what is
 * admitted to the host, what it can hold, refusals). src/metrics/registry.ts assembles them with the rest.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './latency-buckets';

/** Docker hosts: API calls, deadlines, degradation, the event stream, stuck containers, certificates. */
export function dockerMetrics(reg: Registry[]) {
  return {
    dockerRequests: new Counter({
      name: 'sessionctl_docker_requests_total',
      help: 'Docker Engine API requests by host, operation and result code',
      labelNames: ['host', 'operation', 'code'],
      registers: reg,
    }),
    dockerRequestDuration: new Histogram({
      name: 'sessionctl_docker_request_duration_seconds',
      help: 'Docker Engine API request latency by host and operation',
      labelNames: ['host', 'operation'],
      buckets: LATENCY_BUCKETS,
      registers: reg,
    }),
    dockerHostUp: new Gauge({
      name: 'sessionctl_docker_host_up',
      help: '1 when the host answered its last list and its event stream is connected',
      labelNames: ['host'],
      registers: reg,
    }),
    dockerRequestTimeouts: new Counter({
      name: 'sessionctl_docker_request_timeouts_total',
      help: 'Docker Engine API calls abandoned at their deadline, by host and operation',
      labelNames: ['host', 'operation'],
      registers: reg,
    }),
    ...degradedHostMetrics(reg),
    dockerEventStreamStalls: new Counter({
      name: 'sessionctl_docker_event_stream_stalls_total',
      help: 'Times the Docker event stream missed an event that a check call saw, and was reconnected',
      labelNames: ['host'],
      registers: reg,
    }),
    stuckContainers: new Gauge({
      name: 'sessionctl_stuck_containers',
      help: 'Managed containers Docker could not remove, set aside under a .stuck- name while their removal is retried',
      labelNames: ['host'],
      registers: reg,
    }),
    clientCertificateExpiry: new Gauge({
      name: 'sessionctl_docker_client_certificate_expiry_timestamp_seconds',
      help: 'When the client certificate the controller presents to the Docker host expires (Unix time); read at start-up',
      labelNames: ['host'],
      registers: reg,
    }),
  };
}

/** Whether each host is degraded, asked of the host itself at scrape time. */
function degradedHostMetrics(reg: Registry[]) {
  const degradedHosts = new Map<string, () => boolean>();
  return {
    dockerHostDegraded: new Gauge({
      name: 'sessionctl_docker_host_degraded',
      help: '1 while the host has timed out a call within the last minute',
      labelNames: ['host'],
      registers: reg,
      collect() {
        for (const [host, degraded] of degradedHosts) this.set({ host }, degraded() ? 1 : 0);
      },
    }),
    /** Lets a Docker host report, at scrape time, whether it is degraded. */
    trackDegraded(host: string, degraded: () => boolean): void {
      degradedHosts.set(host, degraded);
    },
  };
}

/** Room on each host: what is admitted, what it can hold, and refusals. */
export function admissionMetrics(reg: Registry[]) {
  return {
    hostAdmittedSessions: new Gauge({
      name: 'sessionctl_host_admitted_sessions',
      help: 'Sessions admitted to run on the host (running or starting)',
      labelNames: ['host'],
      registers: reg,
    }),
    hostAdmittedMemory: new Gauge({
      name: 'sessionctl_host_admitted_memory_bytes',
      help: 'Sum of the memory limits of the sessions admitted on the host',
      labelNames: ['host'],
      registers: reg,
    }),
    hostCapacitySessions: new Gauge({
      name: 'sessionctl_host_capacity_sessions',
      help: 'Most sessions the host may run (absent when unlimited)',
      labelNames: ['host'],
      registers: reg,
    }),
    hostAllocatableMemory: new Gauge({
      name: 'sessionctl_host_allocatable_memory_bytes',
      help: 'Memory the host may give to sessions (absent when unlimited)',
      labelNames: ['host'],
      registers: reg,
    }),
    admissionRefusals: new Counter({
      name: 'sessionctl_admission_refusals_total',
      help: 'Times a session was left Pending because its host had no room, by reason',
      labelNames: ['host', 'reason'],
      registers: reg,
    }),
  };
}
