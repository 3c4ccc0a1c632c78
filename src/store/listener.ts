/**
 * The LISTEN source: a dedicated connection that turns generation-change notifications into keys.
 * On every (re)connect it LISTENs first and only then asks for a full resync, so that nothing
 * written while it was away is missed. A periodic ping notices a dead connection that TCP has not.
 */
import { Client } from 'pg';
import type { Logger } from 'pino';
import { backoffDelay, sleep } from '../runtime/backoff';

export const SESSIONS_CHANNEL = 'sessionctl_sessions';

export interface SessionNotification {
  /** The channel it came on: a session's name on sessionctl_sessions, a host's on sessionctl_hosts. */
  channel: string;
  name: string;
  generation: number;
  /** Epoch seconds at which the trigger fired; lets the controller measure pickup latency. */
  at: number;
  /** Where the session is placed (null: waiting for a host), and was before this change (017). */
  host?: string | null;
  previousHost?: string | null;
}

export interface ListenerOptions {
  connectionString: string;
  logger: Logger;
  onNotification(notification: SessionNotification): void;
  /** Called after every successful LISTEN, including the first: the caller resyncs everything. */
  onConnected(reconnect: boolean): void;
  onDisconnected?(): void;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Channels to LISTEN on; the controller's generation channel by default. */
  channels?: string[];
  applicationName?: string;
}

export class SessionListener {
  private client: Client | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  connected = false;
  private connections = 0;
  lastNotificationAt: Date | undefined;

  constructor(private readonly options: ListenerOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await Promise.race([this.client?.end().catch(() => undefined), sleep(1_000)]);
    await this.running;
  }

  private async loop(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      try {
        await this.connect();
        attempt = 0;
        await this.watch();
      } catch (error) {
        if (this.abort.signal.aborted) break;
        logger.warn({ err: error }, 'listener connection lost');
      } finally {
        if (this.connected) this.options.onDisconnected?.();
        this.connected = false;
        const client = this.client;
        this.client = undefined;
        // end() waits for the server's goodbye, which a half-dead socket never sends.
        await Promise.race([client?.end().catch(() => undefined), sleep(1_000)]);
      }
      if (this.abort.signal.aborted) break;
      const delay = backoffDelay(attempt++, { baseMs: 1_000, maxMs: 30_000 });
      logger.info({ delayMs: delay }, 'listener reconnecting');
      await sleep(delay, this.abort.signal);
    }
  }

  private async connect(): Promise<void> {
    const client = new Client({
      connectionString: this.options.connectionString,
      keepAlive: true,
      application_name: this.options.applicationName ?? 'sessionctl-listener',
      connectionTimeoutMillis: 5_000,
    });
    this.client = client;
    const channels = this.options.channels ?? [SESSIONS_CHANNEL];
    client.on('notification', (message) => {
      if (!channels.includes(message.channel) || !message.payload) return;
      const notification = parseNotification(message.payload, message.channel);
      if (!notification) {
        this.options.logger.warn({ payload: message.payload }, 'ignoring malformed notification');
        return;
      }
      this.lastNotificationAt = new Date();
      this.options.onNotification(notification);
    });
    await client.connect();
    for (const channel of channels) await client.query(`LISTEN ${channel}`);
    this.connected = true;
    this.options.logger.info({ reconnect: this.connections > 0 }, 'listener connected');
    this.options.onConnected(this.connections++ > 0);
  }

  /** Returns (by throwing) when the connection dies or a ping fails; returns normally on stop. */
  private async watch(): Promise<void> {
    const client = this.client!;
    const lost = new Promise<never>((_, reject) => {
      client.once('error', reject);
      client.once('end', () => reject(new Error('connection ended')));
    });
    lost.catch(() => undefined);
    const interval = this.options.pingIntervalMs ?? 10_000;
    while (!this.abort.signal.aborted) {
      await Promise.race([
        lost,
        new Promise<void>((resolve) => {
          this.wake = resolve;
          void sleep(interval, this.abort.signal).then(resolve);
        }),
      ]);
      if (this.abort.signal.aborted) return;
      await Promise.race([lost, this.ping(client)]);
    }
  }

  private async ping(client: Client): Promise<void> {
    const timeoutMs = this.options.pingTimeoutMs ?? 5_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`listener ping got no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([client.query('SELECT 1'), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export function parseNotification(payload: string, channel = SESSIONS_CHANNEL): SessionNotification | undefined {
  try {
    const value = JSON.parse(payload) as Partial<SessionNotification>;
    if (typeof value.name !== 'string') return undefined;
    const hostOf = (field: unknown) => (typeof field === 'string' ? field : field === null ? null : undefined);
    return {
      channel,
      name: value.name,
      generation: Number(value.generation ?? 0),
      at: Number(value.at ?? 0),
      host: hostOf(value.host),
      previousHost: hostOf(value.previousHost),
    };
  } catch {
    return undefined;
  }
}
