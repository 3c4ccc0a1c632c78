/**
 * Connection pools to session endpoints, one undici Pool per "host:port", created on first use and
 * closed once the endpoint leaves the routing table (a restarted container gets a new port).
 * Keep-alive like the old session manager's client: many connections, kept for minutes.
 */
import { Pool } from 'undici';

export interface UpstreamOptions {
  connections: number;
  keepAliveMs: number;
  /** No byte from the upstream for this long fails the request. */
  idleTimeoutMs: number;
}

export class Upstreams {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly options: UpstreamOptions) {}

  get(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(`http://${origin}`, {
        connections: this.options.connections,
        keepAliveTimeout: this.options.keepAliveMs,
        keepAliveMaxTimeout: this.options.keepAliveMs,
        // One request at a time per connection: pipelining stalls behind a slow response.
        pipelining: 1,
        headersTimeout: this.options.idleTimeoutMs,
        bodyTimeout: this.options.idleTimeoutMs,
        connectTimeout: 5_000,
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes pools whose endpoint no routed session uses any more. */
  retain(origins: Set<string>): void {
    for (const [origin, pool] of this.pools) {
      if (origins.has(origin)) continue;
      this.pools.delete(origin);
      void pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}
