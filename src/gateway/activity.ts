/**
 * Activity batching: every request and WebSocket message marks its session in memory (a Map set),
 * and a timer writes the marks in one statement per flush. A session is written at most once per
 * interval (30 s by default): idle timeouts are minutes, so finer writes would only load the database.
 */
import type { Logger } from 'pino';
import type { Db } from '../store/db';
import { recordActivity } from '../store/gateway';

export interface ActivityOptions {
  db: Db;
  logger: Logger;
  flushMs: number;
  intervalMs: number;
  onFlush?(written: number, error?: Error): void;
}

export class ActivityBatcher {
  /** Session -> latest activity not yet written (ms epoch). */
  private readonly pending = new Map<string, number>();
  /** Session -> when its activity was last written (ms epoch). */
  private readonly written = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(private readonly options: ActivityOptions) {}

  mark(session: string, now = Date.now()): void {
    this.pending.set(session, now);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
  }

  /** Writes what is due; a session written less than an interval ago waits for a later flush. */
  flush(now = Date.now()): Promise<void> {
    this.flushing ??= this.write(now).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(now: number): Promise<void> {
    const due: Array<{ name: string; at: Date }> = [];
    for (const [name, at] of this.pending) {
      if (now - (this.written.get(name) ?? 0) < this.options.intervalMs) continue;
      due.push({ name, at: new Date(at) });
    }
    if (due.length === 0) return;
    for (const entry of due) this.pending.delete(entry.name);
    try {
      const rows = await recordActivity(this.options.db, due);
      for (const entry of due) this.written.set(entry.name, now);
      this.options.onFlush?.(rows);
    } catch (error) {
      // Put the marks back unless newer ones arrived meanwhile; the next flush retries.
      for (const entry of due) if (!this.pending.has(entry.name)) this.pending.set(entry.name, entry.at.getTime());
      this.options.logger.warn(
        { err: error, sessions: due.length },
        'activity flush failed; retrying at the next flush',
      );
      this.options.onFlush?.(0, error as Error);
    }
  }

  /** Forgets sessions that no longer exist, so that the maps stay as small as the table. */
  forget(session: string): void {
    this.pending.delete(session);
    this.written.delete(session);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush(Number.MAX_SAFE_INTEGER);
  }
}
