/**
 * The `/health` report: one JSON document an on-call person can read without a dashboard. It
 * checks the things the controller depends on right now (the database, each Docker host) and
 * reports what it knows about its sources (the LISTEN connection, the work queue). Every check
 * has its own deadline, so that a hung dependency shows as unreachable instead of hanging the page.
 */
import type { Db } from '../store/db';
import { countSessionsByPhase } from '../store/sessions';

/** What the report needs from one Docker host: a cheap API call and the inventory's view. */
export interface HostProbe {
  name: string;
  url: string;
  /** Engine version; the call's latency is the API latency reported. */
  version(): Promise<{ Version: string; ApiVersion: string }>;
  /** Managed containers the inventory holds. */
  containersManaged(): number;
  /** The event stream is connected. */
  eventsConnected(): boolean;
  /** A call to the host timed out recently: it is hung or overloaded. */
  degraded(): boolean;
  /** In a fleet: the host's state as this replica last wrote it, and the epoch of its lease here. */
  fleet?: { state(): string; leaseEpoch: number };
}

export interface HealthSources {
  db: Db;
  hosts: HostProbe[];
  listener: { connected: boolean; lastNotificationAt: Date | undefined };
  queue: { depth: number; inFlight: number; oldestWaiting(): number | undefined };
  version: string;
  startedAt: Date;
  /** This controller replica's identity in host leases (docs/fleet.md). */
  replica?: string;
  ready(): boolean;
  /** Per check; a check that takes longer counts as failed. */
  timeoutMs?: number;
  now?: () => number;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  ready: boolean;
  version: string;
  replica?: string;
  startedAt: string;
  uptimeSeconds: number;
  database: { reachable: boolean; latencyMs?: number; sessionsByPhase?: Record<string, number>; error?: string };
  dockerHosts: Array<{
    name: string;
    url: string;
    reachable: boolean;
    engineVersion?: string;
    apiVersion?: string;
    latencyMs?: number;
    containersManaged: number;
    eventsConnected: boolean;
    degraded: boolean;
    state?: string;
    leaseEpoch?: number;
    error?: string;
  }>;
  listener: { connected: boolean; lastNotificationAt: string | null };
  queue: { depth: number; inFlight: number; oldestItemAgeSeconds: number | null };
}

class CheckTimeout extends Error {}

async function timed<T>(
  timeoutMs: number,
  now: () => number,
  check: () => Promise<T>,
): Promise<{ value: T; latencyMs: number }> {
  const started = now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { value, latencyMs: Math.round((now() - started) * 100) / 100 };
  } finally {
    clearTimeout(timer);
  }
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

async function checkDatabase(
  sources: HealthSources,
  timeoutMs: number,
  now: () => number,
): Promise<HealthReport['database']> {
  try {
    const { latencyMs } = await timed(timeoutMs, now, () => sources.db.query('SELECT 1'));
    const { value: byPhase } = await timed(timeoutMs, now, () => countSessionsByPhase(sources.db));
    return { reachable: true, latencyMs, sessionsByPhase: Object.fromEntries(byPhase) };
  } catch (error) {
    return { reachable: false, error: message(error) };
  }
}

async function checkHost(
  host: HostProbe,
  timeoutMs: number,
  now: () => number,
): Promise<HealthReport['dockerHosts'][number]> {
  const base = {
    name: host.name,
    url: host.url,
    containersManaged: host.containersManaged(),
    eventsConnected: host.eventsConnected(),
    degraded: host.degraded(),
    ...(host.fleet ? { state: host.fleet.state(), leaseEpoch: host.fleet.leaseEpoch } : {}),
  };
  try {
    const { value, latencyMs } = await timed(timeoutMs, now, () => host.version());
    return { ...base, reachable: true, engineVersion: value.Version, apiVersion: value.ApiVersion, latencyMs };
  } catch (error) {
    return { ...base, reachable: false, error: message(error) };
  }
}

export async function healthReport(sources: HealthSources): Promise<HealthReport> {
  const now = sources.now ?? (() => performance.now());
  const timeoutMs = sources.timeoutMs ?? 2_000;
  const [database, ...dockerHosts] = (await Promise.all([
    checkDatabase(sources, timeoutMs, now),
    ...sources.hosts.map((host) => checkHost(host, timeoutMs, now)),
  ])) as [HealthReport['database'], ...HealthReport['dockerHosts']];
  const oldest = sources.queue.oldestWaiting();
  const ready = sources.ready();
  const healthy =
    database.reachable &&
    dockerHosts.every((host) => host.reachable && !host.degraded) &&
    sources.listener.connected &&
    ready;
  return {
    status: healthy ? 'ok' : 'degraded',
    ready,
    version: sources.version,
    ...(sources.replica ? { replica: sources.replica } : {}),
    startedAt: sources.startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - sources.startedAt.getTime()) / 1000),
    database,
    dockerHosts,
    listener: {
      connected: sources.listener.connected,
      lastNotificationAt: sources.listener.lastNotificationAt?.toISOString() ?? null,
    },
    queue: {
      depth: sources.queue.depth,
      inFlight: sources.queue.inFlight,
      oldestItemAgeSeconds: oldest === undefined ? null : Math.max(0, (Date.now() - oldest) / 1000),
    },
  };
}
