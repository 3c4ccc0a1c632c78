/**
 * The gateway's metrics, `sessionctl_gateway_*`, on its own registry (a gateway runs apart from the
 * controller). Label children are cached: a request pays a Map lookup, not a label hash.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WakeResult } from './wake';

const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const WAKE_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120];
export const WAKE_RESULTS: WakeResult[] = ['ready', 'timeout', 'gone', 'error'];
export const AUTH_FAILURES = ['missing', 'invalid', 'no-token'] as const;
export const UPSTREAM_ERRORS = ['unreachable', 'timeout', 'upgrade'] as const;
/** Codes the gateway itself answers with, pre-initialised so that alerts see a 0 before the first one. */
const OWN_CODES = ['200', '302', '401', '403', '404', '502', '503', '504'];

export function createGatewayMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  const registers = [registry];
  const requests = new Counter({
    name: 'sessionctl_gateway_requests_total',
    help: 'HTTP requests and WebSocket handshakes answered, by status code',
    labelNames: ['code'],
    registers,
  });
  const byCode = new Map<number, Counter.Internal>();
  for (const code of OWN_CODES) {
    const child = requests.labels({ code });
    child.inc(0);
    byCode.set(Number(code), child);
  }
  let readyProbe: () => boolean = () => false;
  const metrics = {
    registry,
    /** Set by the gateway: its routing table is loaded and its LISTEN connection is up. */
    setReadyProbe(probe: () => boolean) {
      readyProbe = probe;
    },
    ready: new Gauge({
      name: 'sessionctl_gateway_ready',
      help: '1 when the routing table is loaded and kept current by notifications (the /readyz answer)',
      registers,
      collect() {
        this.set(readyProbe() ? 1 : 0);
      },
    }),
    ...trafficMetrics(registers),
    ...wakeAndRouteMetrics(registers),
    request(code: number, seconds: number) {
      let child = byCode.get(code);
      if (!child) {
        child = requests.labels({ code: String(code) });
        byCode.set(code, child);
      }
      child.inc();
      metrics.requestDuration.observe(seconds);
    },
  };
  preinitialise(metrics);
  return metrics;
}

/** Known label values at 0, so that dashboards and alerts see them before the first event. */
function preinitialise(metrics: ReturnType<typeof trafficMetrics> & ReturnType<typeof wakeAndRouteMetrics>): void {
  for (const result of WAKE_RESULTS) metrics.wakes.inc({ result }, 0);
  for (const reason of AUTH_FAILURES) metrics.authFailures.inc({ reason }, 0);
  for (const reason of UPSTREAM_ERRORS) metrics.upstreamErrors.inc({ reason }, 0);
  for (const result of ['ok', 'error']) {
    metrics.routeLoads.inc({ result }, 0);
    metrics.activityFlushes.inc({ result }, 0);
  }
  for (const ready of ['true', 'false']) metrics.routes.set({ ready }, 0);
}

/** Requests, their latency and failures, and open WebSockets. */
function trafficMetrics(registers: Registry[]) {
  return {
    requestDuration: new Histogram({
      name: 'sessionctl_gateway_request_duration_seconds',
      help: 'Time from request to the end of the response, through the gateway',
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'sessionctl_gateway_upstream_errors_total',
      help: 'Requests the session could not answer: unreachable, timeout, or a refused upgrade',
      labelNames: ['reason'],
      registers,
    }),
    authFailures: new Counter({
      name: 'sessionctl_gateway_auth_failures_total',
      help: 'Requests refused for their token: missing, invalid (wrong, rotated or expired) or no-token (the session has none)',
      labelNames: ['reason'],
      registers,
    }),
    websocketsOpen: new Gauge({
      name: 'sessionctl_gateway_websockets_open',
      help: 'WebSocket (upgraded) connections open through the gateway',
      registers,
    }),
  };
}

/** Wakes of idle-stopped sessions, the routing table, and the batched activity writes. */
function wakeAndRouteMetrics(registers: Registry[]) {
  return {
    wakes: new Counter({
      name: 'sessionctl_gateway_wakes_total',
      help: 'Idle-stopped sessions woken by a request, by result',
      labelNames: ['result'],
      registers,
    }),
    wakeDuration: new Histogram({
      name: 'sessionctl_gateway_wake_duration_seconds',
      help: 'Time from the wake request to the session being Ready (or the wait ending)',
      buckets: WAKE_BUCKETS,
      registers,
    }),
    routes: new Gauge({
      name: 'sessionctl_gateway_routes',
      help: 'Sessions in the routing table, by whether they are Ready',
      labelNames: ['ready'],
      registers,
    }),
    routeLoads: new Counter({
      name: 'sessionctl_gateway_route_loads_total',
      help: 'Routing table loads from the database (after notifications or a reconnect), by result',
      labelNames: ['result'],
      registers,
    }),
    activityFlushes: new Counter({
      name: 'sessionctl_gateway_activity_flushes_total',
      help: 'Batched activity writes, by result',
      labelNames: ['result'],
      registers,
    }),
    activitySessions: new Counter({
      name: 'sessionctl_gateway_activity_sessions_written_total',
      help: 'Session activity timestamps written by the batched flushes',
      registers,
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
