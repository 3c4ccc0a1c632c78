/**
 * Paces a host's crash-loop restarts: at most one per interval, handed out as booked turns in the
 * order asked. However many sessions crash-loop at once, their restarts take a bounded share of the
 * daemon, and few are under way when a batch of creates arrives.
 */

export const CRASH_RESTART_INTERVAL_MS = 500;
/** A turn not taken this long after its time is given up (the session was deleted or recovered). */
const TURN_KEPT_MS = 10_000;

export class RestartPacer {
  private readonly turns = new Map<string, number>();
  /** The time of the latest turn booked, so that the next is booked an interval after it. */
  private lastBookedAt = Number.NEGATIVE_INFINITY;
  private lastGrantedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs = CRASH_RESTART_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * 0 when the session may restart now (its turn is used up), else how long until its turn, which
   * stays booked for it. A turn that came while the session could not take it (it waited for a
   * busy host) is booked again behind the others rather than granted in a burst with them.
   */
  turnIn(session: string): number {
    const now = this.now();
    for (const [other, at] of this.turns) if (now - at > TURN_KEPT_MS) this.turns.delete(other);
    const booked = this.turns.get(session);
    const at = this.needsBooking(booked, now) ? this.book(session, now) : booked!;
    if (at > now) return at - now;
    this.turns.delete(session);
    this.lastGrantedAt = now;
    return 0;
  }

  /** What turnIn would answer now, without booking or granting anything: for the planner's snapshot. */
  peek(session: string): number {
    const now = this.now();
    const kept = this.turns.get(session);
    const booked = kept !== undefined && now - kept > TURN_KEPT_MS ? undefined : kept;
    const at = this.needsBooking(booked, now) ? this.nextSlot(now) : booked!;
    return Math.max(0, at - now);
  }

  /** No turn, or one that came while another was just granted: book the next free slot. */
  private needsBooking(at: number | undefined, now: number): boolean {
    return at === undefined || (at <= now && now - this.lastGrantedAt < this.intervalMs);
  }

  private nextSlot(now: number): number {
    return Math.max(now, this.lastBookedAt + this.intervalMs, this.lastGrantedAt + this.intervalMs);
  }

  private book(session: string, now: number): number {
    const at = this.nextSlot(now);
    this.lastBookedAt = at;
    this.turns.set(session, at);
    return at;
  }
}
