/**
 * Every metric the controller exports, defined once and assembled here into one registry. Names follow
 * controller-runtime and client-go (./controller-runtime.ts) so that existing dashboards carry over;
 * domain metrics carry the `sessionctl_` prefix: per host in ./docker-hosts.ts, the fleet's in
 * ./fleet.ts, and those of sessions, the controller itself and images below.
 * Counters with known label values are pre-initialised at 0 so dashboards show them from the start.
 */
import { PHASES } from '../../crds/status';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { inFlightMetrics, reconcileMetrics, workqueueMetrics } from './controller-runtime';
import { admissionMetrics, dockerMetrics } from './docker-hosts';
import { createFleetMetrics } from './fleet';
import { RECONCILE_RESULTS } from '../runtime/controller';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // These are gauges whose names end in _total, which Prometheus reserves for counters:
  // `promtool check metrics` rejects them. nodejs_active_handles/requests carry the same numbers.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  const reg = [registry];
  const admission = admissionMetrics(reg);
  return {
    registry,
    ...reconcileMetrics(reg),
    ...workqueueMetrics(reg),
    ...inFlightMetrics(reg),
    ...sessionMetrics(reg),
    ...controllerMetrics(reg),
    ...dockerMetrics(reg),
    ...admission,
    ...imageMetrics(reg),
    fleet: createFleetMetrics(reg, { hostCapacitySessions: admission.hostCapacitySessions }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export const DRIFT_KINDS = [
  'container_missing',
  'container_exited',
  'spec_changed',
  'orphan_removed',
  'duplicate_removed',
] as const;
export const RESTART_REASONS = ['Error', 'OOMKilled', 'Completed', 'Unhealthy'] as const;
export const TOKEN_ROTATION_REASONS = ['initial', 'expired', 'requested'] as const;

export function preinitialise(metrics: Metrics, controller: string): void {
  for (const result of RECONCILE_RESULTS) metrics.reconcileTotal.inc({ controller, result }, 0);
  metrics.reconcileErrors.inc({ controller }, 0);
  metrics.queueAdds.inc({ name: controller }, 0);
  metrics.queueRetries.inc({ name: controller }, 0);
  metrics.queueDepth.set({ name: controller }, 0);
  for (const kind of DRIFT_KINDS) metrics.driftCorrections.inc({ kind }, 0);
  for (const reason of RESTART_REASONS) metrics.containerRestarts.inc({ reason }, 0);
  metrics.listenerReconnects.inc(0);
  metrics.restartLimitExceeded.inc(0);
  for (const reason of ['HostCreating', 'Paced'] as const) metrics.crashRestartsDeferred.inc({ reason }, 0);
  for (const status of ['healthy', 'unhealthy'] as const) metrics.healthTransitions.inc({ status }, 0);
  for (const reason of TOKEN_ROTATION_REASONS) metrics.tokenRotations.inc({ reason }, 0);
  for (const phase of PHASES) metrics.sessions.set({ phase }, 0);
  for (const result of ['success', 'failure'] as const) metrics.imagePulls.inc({ result }, 0);
  metrics.registryTokenCacheHits.inc(0);
  metrics.registryTokenCacheMisses.inc(0);
  metrics.ready.set(0);
}

/** Per-host series at 0 from the start, so that alerts on their rate have a baseline. */
export function preinitialiseHost(metrics: Metrics, host: string): void {
  metrics.dockerEventStreamStalls.inc({ host }, 0);
  for (const operation of ['list', 'create', 'start', 'stop', 'restart', 'remove', 'inspect'])
    metrics.dockerRequestTimeouts.inc({ host, operation }, 0);
}

/** What sessions do: phases, readiness, restarts and drift. */
function sessionMetrics(reg: Registry[]) {
  return {
    sessions: new Gauge({
      name: 'sessionctl_sessions',
      help: 'Sessions by phase, as last written to status',
      labelNames: ['phase'],
      registers: reg,
    }),
    sessionReady: new Histogram({
      name: 'sessionctl_session_ready_seconds',
      help: 'Time from a generation being written to that generation being Ready',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers: reg,
    }),
    containerRestarts: new Counter({
      name: 'sessionctl_container_restarts_total',
      help: 'Container restarts made by the controller, by reason',
      labelNames: ['reason'],
      registers: reg,
    }),
    driftCorrections: new Counter({
      name: 'sessionctl_drift_corrections_total',
      help: 'Corrections of containers that drifted from their spec, by kind',
      labelNames: ['kind'],
      registers: reg,
    }),
    crashRestartsDeferred: new Counter({
      name: 'sessionctl_crash_restarts_deferred_total',
      help: 'Crash-loop restarts that waited, by reason: HostCreating (the host created other sessions) or Paced (for a turn)',
      labelNames: ['reason'],
      registers: reg,
    }),
    restartLimitExceeded: new Counter({
      name: 'sessionctl_restart_limit_exceeded_total',
      help: 'Sessions that spent their restart budget (spec.maxRestarts) and became Failed',
      registers: reg,
    }),
    healthTransitions: new Counter({
      name: 'sessionctl_health_status_total',
      help: 'Docker health_status changes of session containers, by status',
      labelNames: ['status'],
      registers: reg,
    }),
  };
}

/** The controller itself: lifetimes, tokens, its LISTEN connection, readiness and build. */
function controllerMetrics(reg: Registry[]) {
  return {
    lifetimeActions: new Counter({
      name: 'sessionctl_lifetime_actions_total',
      help: 'Idle stops and deletions made by the controller, by reason and action',
      labelNames: ['reason', 'action'],
      registers: reg,
    }),
    tokenRotations: new Counter({
      name: 'sessionctl_token_rotations_total',
      help: 'Access tokens minted, by reason (initial, expired, requested)',
      labelNames: ['reason'],
      registers: reg,
    }),
    ready: new Gauge({
      name: 'sessionctl_ready',
      help: '1 once the first full resync has been reconciled (the same as /readyz)',
      registers: reg,
    }),
    buildInfo: new Gauge({
      name: 'sessionctl_build_info',
      help: 'Always 1; the version label says which build is running',
      labelNames: ['version'],
      registers: reg,
    }),
    notifyLatency: new Histogram({
      name: 'sessionctl_notify_pickup_seconds',
      help: 'Time from the row trigger firing to the controller queueing the key',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers: reg,
    }),
    listenerReconnects: new Counter({
      name: 'sessionctl_listener_reconnects_total',
      help: 'Reconnects of the Postgres LISTEN connection',
      registers: reg,
    }),
    listenerUp: new Gauge({
      name: 'sessionctl_listener_up',
      help: '1 while the Postgres LISTEN connection is established',
      registers: reg,
    }),
  };
}

/** Images: pulls, and requests to registries. */
function imageMetrics(reg: Registry[]) {
  return {
    imagePulls: new Counter({
      name: 'sessionctl_image_pulls_total',
      help: 'Image pulls by the controller, by result (success, failure)',
      labelNames: ['result'],
      registers: reg,
    }),
    imagePullDuration: new Histogram({
      name: 'sessionctl_image_pull_duration_seconds',
      help: 'Time an image pull took, successful or not',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: reg,
    }),
    registryRequests: new Counter({
      name: 'sessionctl_registry_requests_total',
      help: 'HTTP requests the controller made to registries and their token services, by registry (one of the configured registries or docker.io, else "other") and status code',
      labelNames: ['registry', 'code'],
      registers: reg,
    }),
    registryTokenCacheHits: new Counter({
      name: 'sessionctl_registry_token_cache_hits_total',
      help: 'Registry requests that reused a cached bearer token',
      registers: reg,
    }),
    registryTokenCacheMisses: new Counter({
      name: 'sessionctl_registry_token_cache_misses_total',
      help: 'Bearer tokens fetched from a token service because none was cached (or it was expired or refused)',
      registers: reg,
    }),
  };
}
