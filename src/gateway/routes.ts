/**
 * The routing table: session name -> where its ports answer, whether it is Ready, and its token's
 * hash. Held in memory, replaced entry by entry as change notifications arrive; a request never
 * queries the database. Only endpoints the controller wrote into status are ever reachable.
 */
import { EventEmitter } from 'node:events';
import { sessionSpecSchema } from '../../crds/session';
import { findCondition } from '../../crds/status';
import type { RouteRow } from '../store/gateway';

export interface Upstream {
  /** "host:port", the key of its connection pool. */
  origin: string;
  host: string;
  port: number;
}

export interface Route {
  name: string;
  /** Port name -> endpoint, in spec order: the first one is the default. */
  ports: Map<string, Upstream>;
  defaultPort: Upstream | undefined;
  ready: boolean;
  /** Why it is not Ready (the Ready condition's reason and message), for 503 answers. */
  reason: string;
  message: string;
  /** Stopped by its idle timeout with idleAction Stop: a request may wake it. */
  idleStopped: boolean;
  stripPrefix: boolean;
  tokenHeader: 'X-Session-Token' | 'Authorization';
  /** SHA-256 of the token; absent when the session has none (then nothing gets through). */
  tokenHash: Buffer | undefined;
  tokenExpiresAt: number;
}

function parseEndpoint(value: string): Upstream | undefined {
  const match = /^(\[[0-9a-fA-F:]+\]|[^\s:/]+):(\d{1,5})$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { origin: value, host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** Pure: one row -> one route. A spec that does not validate gives a route that is never Ready. */
export function toRoute(row: RouteRow): Route {
  const parsed = sessionSpecSchema.safeParse(row.spec);
  const ready = findCondition(row.status, 'Ready');
  const endpoints = row.status.endpoints ?? {};
  const ports = new Map<string, Upstream>();
  for (const port of parsed.success ? parsed.data.ports : []) {
    const endpoint = typeof endpoints[port.name] === 'string' ? parseEndpoint(endpoints[port.name]) : undefined;
    if (port.protocol === 'TCP' && endpoint) ports.set(port.name, endpoint);
  }
  const isReady = parsed.success && !row.deleting && ready?.status === 'True' && ports.size > 0;
  return {
    name: row.name,
    ports,
    defaultPort: ports.values().next().value,
    ready: isReady,
    reason: !parsed.success
      ? 'InvalidSpec'
      : row.deleting
        ? 'Terminating'
        : ready?.status === 'True'
          ? 'NoEndpoints'
          : (ready?.reason ?? 'Pending'),
    message: !parsed.success
      ? 'the spec does not validate'
      : row.deleting
        ? 'the session is being deleted'
        : (ready?.message ?? 'the controller has not reported on this session yet'),
    idleStopped:
      parsed.success &&
      !row.deleting &&
      parsed.data.idleAction === 'Stop' &&
      ready?.status !== 'True' &&
      ready?.reason === 'IdleTimeout',
    stripPrefix: (parsed.success ? parsed.data.gateway?.prefix : undefined) !== 'Keep',
    tokenHeader: (parsed.success ? parsed.data.gateway?.tokenHeader : undefined) ?? 'X-Session-Token',
    tokenHash:
      row.tokenSha256 && /^[0-9a-f]{64}$/.test(row.tokenSha256) ? Buffer.from(row.tokenSha256, 'hex') : undefined,
    tokenExpiresAt: row.tokenExpiresAt ? row.tokenExpiresAt.getTime() : 0,
  };
}

/** The table itself. `changed` fires with the session name after each replacement, for wake waiters. */
export class RouteTable extends EventEmitter {
  private readonly routes = new Map<string, Route>();

  get size(): number {
    return this.routes.size;
  }

  get(name: string): Route | undefined {
    return this.routes.get(name);
  }

  /** Sets the routes of `names` from `rows`; a name without a row is gone. */
  update(names: readonly string[], rows: RouteRow[]): void {
    const found = new Map(rows.map((row) => [row.name, row]));
    for (const name of names) {
      const row = found.get(name);
      if (row) this.routes.set(name, toRoute(row));
      else this.routes.delete(name);
      this.emit('changed', name);
    }
  }

  /** After a (re)connect: everything, and forget what no longer exists. */
  replaceAll(rows: RouteRow[]): void {
    const names = new Set([...this.routes.keys(), ...rows.map((row) => row.name)]);
    this.update([...names], rows);
  }

  readyCount(): number {
    let ready = 0;
    for (const route of this.routes.values()) if (route.ready) ready++;
    return ready;
  }

  /** Every upstream origin in use, so that pools of vanished endpoints can be closed. */
  origins(): Set<string> {
    const origins = new Set<string>();
    for (const route of this.routes.values()) for (const upstream of route.ports.values()) origins.add(upstream.origin);
    return origins;
  }
}
