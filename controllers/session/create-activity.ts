/**
 * Which sessions a Docker host is creating containers for, now or a moment ago. A crash loop's next
 * restart waits while other sessions are being created: on a small host it is the daemon's work of
 * starting and tearing down the crash-looping container that slows a batch of creates, whatever
 * its place in the call queue. Waiting sessions are woken once the host goes quiet, so none of
 * them polls.
 */

/**
 * How long after a session's create ends the host still counts as busy with it: longer than the
 * gap between two creates of one batch, so that a batch reads as one busy stretch.
 */
export const CREATE_QUIET_AFTER_MS = 1_000;

export interface CreateActivityOptions {
  now?: () => number;
  /** Told which waiting sessions to look again at, once no create has run for the quiet time. */
  onQuiet?: (sessions: string[]) => void;
}

export class CreateActivity {
  private readonly pending = new Map<string, number>();
  private readonly endedAt = new Map<string, number>();
  private readonly waiting = new Set<string>();
  private quietTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private onQuiet: (sessions: string[]) => void;

  constructor(options: CreateActivityOptions = {}) {
    this.now = options.now ?? Date.now;
    this.onQuiet = options.onQuiet ?? (() => undefined);
  }

  /** Where waiting sessions are sent when the host goes quiet (the controller's work queue). */
  wakeWith(onQuiet: (sessions: string[]) => void): void {
    this.onQuiet = onQuiet;
  }

  /** Counts the create of the session's container while it is queued and running. */
  async track<T>(session: string, create: () => Promise<T>): Promise<T> {
    this.pending.set(session, (this.pending.get(session) ?? 0) + 1);
    this.cancelQuiet();
    try {
      return await create();
    } finally {
      const left = this.pending.get(session)! - 1;
      if (left > 0) this.pending.set(session, left);
      else this.pending.delete(session);
      this.endedAt.set(session, this.now());
      if (this.pending.size === 0) this.scheduleQuiet(CREATE_QUIET_AFTER_MS);
    }
  }

  /** Whether a session other than `session` has a create queued, running, or ended within the quiet time. */
  busyWithOthers(session: string): boolean {
    for (const other of this.pending.keys()) if (other !== session) return true;
    const now = this.now();
    let busy = false;
    for (const [other, at] of this.endedAt) {
      if (now - at >= CREATE_QUIET_AFTER_MS) this.endedAt.delete(other);
      else if (other !== session) busy = true;
    }
    return busy;
  }

  /** Wakes the session when the host goes quiet (at once if it already is). */
  wakeWhenQuiet(session: string): void {
    this.waiting.add(session);
    if (this.pending.size === 0 && this.quietTimer === undefined) {
      const last = Math.max(Number.NEGATIVE_INFINITY, ...this.endedAt.values());
      this.scheduleQuiet(Math.max(0, last + CREATE_QUIET_AFTER_MS - this.now()));
    }
  }

  private scheduleQuiet(afterMs: number): void {
    this.cancelQuiet();
    // A little late rather than early: a timer may fire a millisecond before its time.
    this.quietTimer = setTimeout(() => this.wake(), afterMs > 0 ? afterMs + 10 : 0);
    this.quietTimer.unref();
  }

  private cancelQuiet(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
  }

  private wake(): void {
    this.quietTimer = undefined;
    if (this.pending.size > 0 || this.waiting.size === 0) return;
    const sessions = [...this.waiting];
    this.waiting.clear();
    this.onQuiet(sessions);
  }
}
