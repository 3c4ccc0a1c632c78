/**
 * Liveness of a Docker event stream. A half-open connection (a dropped NAT entry, a frozen proxy)
 * delivers nothing and reports no error, so silence alone proves nothing: the stream may simply have
 * nothing to say. Every few seconds this asks the daemon, in a separate short call, for the events
 * of a window that has already passed (`/events?since&until`). An event there that the stream never
 * delivered means the stream is dead: the owner drops it, reconnects with `since` and re-lists.
 */
import type { Logger } from 'pino';
import type { DockerEvent } from './event';
import type { DockerHost } from './host';
import { onJsonLines } from './json-lines';

export interface StreamLivenessOptions {
  host: DockerHost;
  logger: Logger;
  /** The same filters as the stream, so that both see the same events. */
  filters: Record<string, string[]>;
  /** The stream missed an event: drop and reconnect it. */
  onStall(missed: DockerEvent): void;
  intervalMs?: number;
  /** How long an event may take to arrive on the stream before it counts as missed. */
  graceMs?: number;
  now?: () => number;
}

export const STREAM_CHECK = { intervalMs: 5_000, graceMs: 2_000 };
/** Keys of delivered events are kept this long: far longer than any window still to be checked. */
const REMEMBER_MS = 120_000;

export function eventKey(event: DockerEvent): string {
  return `${event.Actor?.ID ?? event.id ?? ''}|${event.Action ?? ''}|${event.timeNano ?? (event.time ?? 0) * 1e9}`;
}

export class StreamLiveness {
  private readonly delivered = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** The end (seconds) of the window checked last; the next window starts there. */
  private checkedUntil: number | undefined;
  private checking = false;
  private readonly now: () => number;

  constructor(private readonly options: StreamLivenessOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The stream connected: check from now on. */
  start(): void {
    this.stop();
    this.checkedUntil = this.now() / 1000;
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? STREAM_CHECK.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  noteDelivered(event: DockerEvent): void {
    this.delivered.set(eventKey(event), this.now());
  }

  /** One window: every event the daemon had for it must have come through the stream. */
  async check(): Promise<void> {
    if (this.checking || this.checkedUntil === undefined) return;
    this.checking = true;
    try {
      const since = this.checkedUntil;
      const until = (this.now() - (this.options.graceMs ?? STREAM_CHECK.graceMs)) / 1000;
      if (until <= since) return;
      const events = await this.eventsBetween(since, until);
      this.checkedUntil = until;
      this.forgetOld();
      const missed = events.find((event) => !this.delivered.has(eventKey(event)));
      if (missed) this.options.onStall(missed);
    } catch (error) {
      // The daemon did not answer the check: the calls' own deadlines and errors report that.
      this.options.logger.debug({ host: this.options.host.name, err: error }, 'event stream check failed');
    } finally {
      this.checking = false;
    }
  }

  private async eventsBetween(since: number, until: number): Promise<DockerEvent[]> {
    const { host, filters } = this.options;
    return host.measure('events_check', async (abortSignal) => {
      const stream = (await host.docker.getEvents({
        since: since.toFixed(9),
        until: until.toFixed(9),
        filters,
        abortSignal,
      } as object)) as NodeJS.ReadableStream;
      const events: DockerEvent[] = [];
      await new Promise<void>((resolve, reject) => {
        onJsonLines(stream, (line) => {
          try {
            events.push(JSON.parse(line) as DockerEvent);
          } catch {
            // An unreadable line cannot prove a miss.
          }
        });
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
      return events;
    });
  }

  private forgetOld(): void {
    const oldest = this.now() - REMEMBER_MS;
    for (const [key, at] of this.delivered) if (at < oldest) this.delivered.delete(key);
  }
}
