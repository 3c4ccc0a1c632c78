/**
 * Which sessions a Docker host is creating containers for, now or a moment ago. A crash loop's next
 * restart waits while other sessions are being created: on a small host it is the daemon's work of
 * starting and tearing down the crash-looping container that slows a batch of creates, whatever
 * its place in the call queue.
 */

/**
 * How long after a session's create ends the host still counts as busy with it: longer than the
 * gap between two creates of one batch, so that a batch reads as one busy stretch.
 */
export const CREATE_QUIET_AFTER_MS = 1_000;

export class CreateActivity {
  private readonly pending = new Map<string, number>();
  private readonly endedAt = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Counts the create of the session's container while it is queued and running. */
  async track<T>(session: string, create: () => Promise<T>): Promise<T> {
    this.pending.set(session, (this.pending.get(session) ?? 0) + 1);
    try {
      return await create();
    } finally {
      const left = this.pending.get(session)! - 1;
      if (left > 0) this.pending.set(session, left);
      else this.pending.delete(session);
      this.endedAt.set(session, this.now());
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
}
