/**
 * The controller runner: a fixed pool of workers pulling keys from a work queue and calling one
 * reconcile function. Results map onto controller-runtime semantics: success forgets the key's
 * backoff, an error requeues it with backoff, `requeueAfterMs` schedules a timer, and a
 * `TerminalError` is logged and counted but not retried.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { WorkQueue } from './workqueue';

export const RECONCILE_RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;
type ResultLabel = (typeof RECONCILE_RESULTS)[number];
export type { ResultLabel as ReconcileResult };

/** The series the runtime reports, under controller-runtime's and client-go's workqueue names. */
export interface RuntimeMetrics {
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  activeWorkers: Gauge<'controller'>;
  maxConcurrentReconciles: Gauge<'controller'>;
  queueDepth: Gauge<'name'>;
  queueAdds: Counter<'name'>;
  queueLatency: Histogram<'name'>;
  workDuration: Histogram<'name'>;
  queueRetries: Counter<'name'>;
  /** Lets the queue report its in-flight start times (ms epoch) for the unfinished-work gauges. */
  trackInFlight(name: string, startTimes: () => Iterable<number>): void;
}

export interface ReconcileOutcome {
  /** Reconcile again after this long, for timers such as crash backoff. */
  requeueAfterMs?: number;
  /** Reconcile again with the key's backoff, without counting an error. */
  requeue?: boolean;
}

export interface ReconcileContext {
  key: string;
  reconcileId: string;
  logger: Logger;
}

export type Reconciler = (context: ReconcileContext) => Promise<ReconcileOutcome | void>;

/** An error that retrying cannot fix. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  workers: number;
  logger: Logger;
  metrics: RuntimeMetrics;
  queue?: WorkQueue;
}

export interface ControllerEvents {
  reconciled: [key: string, result: ResultLabel];
}

export class Controller extends EventEmitter<ControllerEvents> {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  private active = 0;
  /** Workers wanted, and workers running (a pool shrinks as workers finish their current key). */
  private wanted: number;
  private running = 0;

  constructor(private readonly options: ControllerOptions) {
    super();
    const { metrics, name } = options;
    this.wanted = options.workers;
    this.queue =
      options.queue ??
      new WorkQueue({
        observer: {
          added: () => metrics.queueAdds.inc({ name }),
          depth: (depth) => metrics.queueDepth.set({ name }, depth),
          waited: (seconds) => metrics.queueLatency.observe({ name }, seconds),
          worked: (seconds) => metrics.workDuration.observe({ name }, seconds),
          retried: () => metrics.queueRetries.inc({ name }),
        },
      });
    metrics.maxConcurrentReconciles.set({ controller: name }, options.workers);
    metrics.activeWorkers.set({ controller: name }, 0);
    metrics.trackInFlight(name, () => this.queue.inFlight().values());
  }

  start(): void {
    if (this.workers.length > 0) return;
    this.grow();
  }

  /** Sets the number of workers: new ones start at once, extra ones stop after their current key. */
  resize(workers: number): void {
    if (workers === this.wanted) return;
    this.wanted = workers;
    this.options.metrics.maxConcurrentReconciles.set({ controller: this.options.name }, workers);
    if (this.workers.length > 0) this.grow();
  }

  private grow(): void {
    for (; this.running < this.wanted; this.running++) this.workers.push(this.work());
  }

  /** Stops handing out keys and waits for in-flight reconciles, up to `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    this.queue.shutDown();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.all(this.workers).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return finished;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = this.running > this.wanted ? undefined : await this.queue.get();
      if (key === undefined) {
        this.running--;
        return;
      }
      await this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const { metrics, name: controller } = this.options;
    const reconcileId = randomBytes(6).toString('hex');
    const logger = this.options.logger.child({ session: key, reconcileId });
    const stopTimer = metrics.reconcileTime.startTimer({ controller });
    metrics.activeWorkers.set({ controller }, ++this.active);
    let result: ResultLabel;
    try {
      const outcome = (await this.options.reconcile({ key, reconcileId, logger })) ?? {};
      if (outcome.requeueAfterMs !== undefined) {
        this.queue.forget(key);
        this.queue.addAfter(key, outcome.requeueAfterMs);
        result = 'requeue_after';
      } else if (outcome.requeue) {
        this.queue.addRateLimited(key);
        result = 'requeue';
      } else {
        this.queue.forget(key);
        result = 'success';
      }
    } catch (error) {
      result = 'error';
      metrics.reconcileErrors.inc({ controller });
      if (error instanceof TerminalError) {
        this.queue.forget(key);
        logger.error({ err: error }, 'reconcile failed terminally');
      } else {
        const delayMs = this.queue.addRateLimited(key);
        logger.warn({ err: error, retryInMs: delayMs }, 'reconcile failed');
      }
    } finally {
      metrics.activeWorkers.set({ controller }, --this.active);
      stopTimer();
      this.queue.done(key);
    }
    metrics.reconcileTotal.inc({ controller, result });
    this.emit('reconciled', key, result);
  }
}
