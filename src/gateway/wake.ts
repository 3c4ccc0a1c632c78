/**
 * Wake on request: a session stopped by its idle timeout (idleAction Stop) is brought back by
 * recording activity, which the notify trigger of migration 005 turns into a controller wake-up.
 * Requests then wait on the routing table, which the change notifications keep current, until the
 * session is Ready. Concurrent requests for one session share one wake.
 */
import type { Logger } from 'pino';
import type { Db } from '../store/db';
import { touchSession } from '../store/sessions';
import type { RouteTable } from './routes';

/**
 * A held request is activity: while it waits, the wake is recorded again this often, so that a
 * start slower than a short idle timeout cannot idle the session out again before it is Ready.
 */
const RETOUCH_MS = 2_000;

export type WakeResult = 'ready' | 'timeout' | 'gone' | 'error';

export interface WakerOptions {
  db: Db;
  table: RouteTable;
  logger: Logger;
  timeoutMs: number;
  onWoken?(result: WakeResult, seconds: number): void;
}

export class Waker {
  private readonly inFlight = new Map<string, Promise<WakeResult>>();

  constructor(private readonly options: WakerOptions) {
    options.table.setMaxListeners(0);
  }

  /** Starts (or joins) the wake of `session`; resolves when it is Ready, gone, or the timeout passed. */
  wake(session: string): Promise<WakeResult> {
    let running = this.inFlight.get(session);
    if (!running) {
      running = this.run(session).finally(() => this.inFlight.delete(session));
      this.inFlight.set(session, running);
    }
    return running;
  }

  /** Whether a wake is under way: a browser's reload then only shows progress. */
  waking(session: string): boolean {
    return this.inFlight.has(session);
  }

  private async run(session: string): Promise<WakeResult> {
    const started = performance.now();
    const ready = this.waitReady(session, this.options.timeoutMs);
    try {
      await touchSession(this.options.db, session);
    } catch (error) {
      this.options.logger.warn({ err: error, session }, 'wake failed: could not record activity');
      ready.cancel();
      this.options.onWoken?.('error', (performance.now() - started) / 1000);
      return 'error';
    }
    this.options.logger.info({ session }, 'waking idle session');
    const retouch = setInterval(() => void touchSession(this.options.db, session).catch(() => undefined), RETOUCH_MS);
    const result = await ready.promise.finally(() => clearInterval(retouch));
    this.options.onWoken?.(result, (performance.now() - started) / 1000);
    this.options.logger.info({ session, result, ms: Math.round(performance.now() - started) }, 'wake finished');
    return result;
  }

  /** Resolves on the first table change that makes the session Ready (or removes it). */
  private waitReady(session: string, timeoutMs: number): { promise: Promise<WakeResult>; cancel(): void } {
    const { table } = this.options;
    let finish: (result: WakeResult) => void = () => undefined;
    const promise = new Promise<WakeResult>((resolve) => {
      const onChanged = (name: string) => {
        if (name !== session) return;
        const route = table.get(session);
        if (!route) finish('gone');
        else if (route.ready) finish('ready');
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      finish = (result) => {
        clearTimeout(timer);
        table.off('changed', onChanged);
        resolve(result);
      };
      table.on('changed', onChanged);
    });
    return { promise, cancel: () => finish('error') };
  }
}
