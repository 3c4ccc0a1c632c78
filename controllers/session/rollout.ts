/**
 * Rolling a moved tag out to the sessions on it, in batches: at most `batchSize` sessions of one image
 * are recreated at a time, and the next batch starts only when every session of the current one runs
 * the new image (or left). So a bad new image stops after one batch instead of taking every user
 * down at once, and the host is not asked for a burst of creates.
 */
export interface RolloutOptions {
  batchSize: number;
  /** Queues sessions that waited for a batch, when one ends. */
  wake: (sessions: string[]) => void;
  /** A member that has not finished after this long no longer holds the batch (a crash loop must not stall it). */
  stuckAfterMs?: number;
  now?: () => number;
}

interface Batch {
  digest: string;
  number: number;
  members: Set<string>;
  done: Set<string>;
  startedAt: number;
}

export type RolloutDecision = { granted: true; batch: number } | { granted: false; message: string };

export class ImageRollout {
  private readonly batches = new Map<string, Batch>();
  private readonly waiting = new Map<string, Set<string>>();
  private readonly counters = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: RolloutOptions) {
    this.now = options.now ?? Date.now;
  }

  /** What request would answer now, changing nothing: for the planner's snapshot. */
  peek(image: string, digest: string, session: string): RolloutDecision {
    let batch = this.batches.get(image);
    if (batch && (batch.digest !== digest || this.finished(batch))) batch = undefined;
    if (!batch) return { granted: true, batch: (this.counters.get(image) ?? 0) + 1 };
    if (batch.members.has(session) || (batch.members.size < this.options.batchSize && batch.done.size === 0))
      return { granted: true, batch: batch.number };
    return { granted: false, message: this.waitMessage(batch, digest) };
  }

  /** May `session` be recreated now to move `image` to `digest`? */
  request(image: string, digest: string, session: string): RolloutDecision {
    let batch = this.batches.get(image);
    if (batch && batch.digest !== digest) {
      // The tag moved again mid-rollout: start over towards the newest digest.
      this.batches.delete(image);
      batch = undefined;
    }
    if (batch && this.finished(batch)) {
      this.batches.delete(image);
      batch = undefined;
    }
    if (batch?.members.has(session)) return { granted: true, batch: batch.number };
    if (!batch) {
      const number = (this.counters.get(image) ?? 0) + 1;
      this.counters.set(image, number);
      batch = { digest, number, members: new Set(), done: new Set(), startedAt: this.now() };
      this.batches.set(image, batch);
    }
    // A batch takes members until it is full or one of them is done: batches never overlap.
    if (batch.members.size < this.options.batchSize && batch.done.size === 0) {
      batch.members.add(session);
      this.waiting.get(image)?.delete(session);
      return { granted: true, batch: batch.number };
    }
    const waiting = this.waiting.get(image) ?? new Set<string>();
    waiting.add(session);
    this.waiting.set(image, waiting);
    return { granted: false, message: this.waitMessage(batch, digest) };
  }

  private waitMessage(batch: Batch, digest: string): string {
    return `a new image digest ${digest.slice(0, 19)} waits for its batch: ${batch.members.size - batch.done.size} of ${batch.members.size} sessions of batch ${batch.number} still updating`;
  }

  /** The session runs `digest` now (or left the image): it no longer holds its batch. */
  complete(image: string, session: string): void {
    const batch = this.batches.get(image);
    if (!batch?.members.has(session) || batch.done.has(session)) {
      this.waiting.get(image)?.delete(session);
      return;
    }
    batch.done.add(session);
    if (this.finished(batch)) this.release(image);
  }

  /** A deleted session, or one that moved to another image. */
  forget(session: string): void {
    for (const [image, batch] of this.batches) {
      if (batch.members.has(session)) this.complete(image, session);
    }
    for (const waiting of this.waiting.values()) waiting.delete(session);
  }

  private finished(batch: Batch): boolean {
    const stuck = this.options.stuckAfterMs !== undefined && this.now() - batch.startedAt > this.options.stuckAfterMs;
    return stuck || (batch.members.size > 0 && batch.done.size === batch.members.size);
  }

  private release(image: string): void {
    this.batches.delete(image);
    const waiting = this.waiting.get(image);
    this.waiting.delete(image);
    if (waiting && waiting.size > 0) this.options.wake([...waiting]);
  }
}
