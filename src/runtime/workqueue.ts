/**
 * A work queue of keys in the style of client-go: a key added many times is processed once,
 * a key is never handed to two workers at once (an add while it is processing re-queues it after),
 * failures requeue with per-key exponential backoff plus jitter, and `addAfter` serves timers.
 */
import { backoffDelay, type BackoffOptions } from './backoff';

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkQueueObserver {
  added(): void;
  depth(depth: number): void;
  waited(seconds: number): void;
  worked(seconds: number): void;
  retried(): void;
}

export interface WorkQueueOptions {
  rateLimit?: BackoffOptions;
  observer?: WorkQueueObserver;
  now?: () => number;
}

const DEFAULT_RATE_LIMIT: BackoffOptions = { baseMs: 500, maxMs: 300_000, jitter: 0.2 };

export class WorkQueue {
  private readonly ready: string[] = [];
  private readonly dirty = new Map<string, number>();
  private readonly processing = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: WorkQueueOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  add(key: string): void {
    if (this.closed || this.dirty.has(key)) return;
    this.dirty.set(key, this.now());
    this.options.observer?.added();
    if (this.processing.has(key)) return;
    this.push(key);
  }

  addAfter(key: string, requestedMs: number): void {
    if (this.closed) return;
    if (requestedMs <= 0) return this.add(key);
    // setTimeout fires at once for delays past 2^31-1 ms (about 24.8 days): cap, and look again then.
    const delayMs = Math.min(requestedMs, MAX_TIMER_MS);
    const at = this.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Requeues after this key's next backoff step and returns that delay. */
  addRateLimited(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.options.observer?.retried();
    const delay = backoffDelay(failures, this.options.rateLimit ?? DEFAULT_RATE_LIMIT);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Waits for the next key; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.ready.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined) this.options.observer?.worked((this.now() - started) / 1000);
    if (this.dirty.has(key) && !this.closed) this.push(key);
  }

  shutDown(): void {
    this.closed = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.ready.length = 0;
    this.dirty.clear();
    for (const resolve of this.getters.splice(0)) resolve(undefined);
    this.options.observer?.depth(0);
  }

  get depth(): number {
    return this.ready.length;
  }

  /** Keys being processed and since when (ms epoch), for the unfinished-work gauges. */
  inFlight(): ReadonlyMap<string, number> {
    return this.processing;
  }

  /** Enqueue time of the oldest key waiting for a worker. */
  oldestWaiting(): number | undefined {
    const first = this.ready[0];
    return first === undefined ? undefined : this.dirty.get(first);
  }

  private push(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      getter(this.take(key));
      return;
    }
    this.ready.push(key);
    this.options.observer?.depth(this.ready.length);
  }

  private take(key: string): string {
    const addedAt = this.dirty.get(key) ?? this.now();
    this.dirty.delete(key);
    this.processing.set(key, this.now());
    this.options.observer?.waited((this.now() - addedAt) / 1000);
    this.options.observer?.depth(this.ready.length);
    return key;
  }
}
