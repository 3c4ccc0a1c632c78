/**
 * A periodic task in the style of pg-boss's worker loop: abortable waits, jitter between runs,
 * `trigger()` to run early, errors caught per run so that none escapes, and `stop()` that awaits
 * the run in progress and is safe to call twice.
 */
import { sleep } from './backoff';

export interface PeriodicOptions {
  intervalMs: number;
  /** Spread each wait by ±jitter of the interval, so that many controllers do not run in lockstep. */
  jitter?: number;
  runImmediately?: boolean;
  run(): Promise<void>;
  onError(error: unknown): void;
}

export class Periodic {
  private abort = new AbortController();
  private early: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: PeriodicOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  trigger(): void {
    this.early?.abort();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.early?.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    let first = true;
    while (!this.abort.signal.aborted) {
      if (!first || !this.options.runImmediately) {
        const jitter = this.options.jitter ?? 0.1;
        const wait = this.options.intervalMs * (1 - jitter + 2 * jitter * Math.random());
        this.early = new AbortController();
        await sleep(wait, AbortSignal.any([this.abort.signal, this.early.signal]));
        if (this.abort.signal.aborted) return;
      }
      first = false;
      try {
        await this.options.run();
      } catch (error) {
        this.options.onError(error);
      }
    }
  }
}
