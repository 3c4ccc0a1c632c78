/**
 * Keeps the routing table current: LISTEN on the watchers' channel (every session change, status
 * included) and the token channel (migration 007); LISTEN first, then a full load, on every
 * (re)connect. Notifications arriving together are read back in one query.
 */
import type { Logger } from 'pino';
import { WATCH_CHANNEL } from '../client/watch';
import type { Db } from '../store/db';
import { listRouteRows, TOKENS_CHANNEL } from '../store/gateway';
import { SessionListener } from '../store/listener';
import type { RouteTable } from './routes';

export interface RouteSourceOptions {
  db: Db;
  connectionString: string;
  table: RouteTable;
  logger: Logger;
  /** Called after each load, e.g. to refresh the route-count gauge and close unused pools. */
  onLoaded?(): void;
  onLoadFailed?(): void;
}

export class RouteSource {
  private readonly listener: SessionListener;
  private readonly pending = new Set<string>();
  private fullLoad = false;
  private loading: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The first full load has completed: /readyz answers 200 from then on. */
  loaded = false;

  constructor(private readonly options: RouteSourceOptions) {
    this.listener = new SessionListener({
      connectionString: options.connectionString,
      logger: options.logger,
      channels: [WATCH_CHANNEL, TOKENS_CHANNEL],
      applicationName: 'sessionctl-gateway-listener',
      onConnected: () => {
        this.fullLoad = true;
        this.schedule();
      },
      onNotification: (notification) => {
        this.pending.add(notification.name);
        this.schedule();
      },
    });
  }

  start(): void {
    this.listener.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.listener.stop();
    await this.loading;
  }

  get connected(): boolean {
    return this.listener.connected;
  }

  private schedule(): void {
    if (this.loading || this.stopped) return;
    this.loading = this.drain().finally(() => {
      this.loading = undefined;
      if (!this.stopped && (this.fullLoad || this.pending.size > 0) && this.retryTimer === undefined) this.schedule();
    });
  }

  /** Loads until nothing is pending; on a database error keeps the names and retries in a second. */
  private async drain(): Promise<void> {
    while (!this.stopped && (this.fullLoad || this.pending.size > 0)) {
      const full = this.fullLoad;
      const names = [...this.pending];
      this.fullLoad = false;
      this.pending.clear();
      try {
        if (full) this.options.table.replaceAll(await listRouteRows(this.options.db));
        else this.options.table.update(names, await listRouteRows(this.options.db, names));
        if (full) this.loaded = true;
        this.options.onLoaded?.();
      } catch (error) {
        this.options.onLoadFailed?.();
        if (full) this.fullLoad = true;
        for (const name of names) this.pending.add(name);
        this.options.logger.warn({ err: error, sessions: names.length, full }, 'route load failed; retrying');
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.schedule();
        }, 1_000);
        return;
      }
    }
  }
}
