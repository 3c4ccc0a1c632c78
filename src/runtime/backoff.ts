/**
 * Exponential backoff with jitter, and an abortable sleep to wait it out.
 * Shared by the work queue's per-key rate limiter and every reconnecting source.
 */

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** 0.2 spreads each delay uniformly over ±20%, so that many keys failing together do not retry together. */
  jitter?: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  const jitter = options.jitter ?? 0.2;
  const random = options.random ?? Math.random;
  return Math.round(Math.min(options.maxMs, exponential * (1 - jitter + 2 * jitter * random())));
}

/** Resolves after `ms`, or early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
