/**
 * What the controller remembers about each session between reconciles, with one owner: the restart
 * history (backoff, the exit the last restart followed, the deferrals already counted) and whether
 * the session has had a container. Keyed by the session's uid, so that a new row of the same name
 * starts with nothing; the name index lets a deleted row's memory be dropped by its key.
 *
 * Only the reconciler's observe and report steps touch it: observe reads a copy into the snapshot,
 * report writes what the intents' results say happened.
 */
import type { DeferralReason, RestartHistory } from './plan';
import type { RecordedExit } from './late-oom';

interface Entry {
  restarts: RestartHistory;
  hadContainer: boolean;
}

/** What the plan's restart intent decided and the executor did, as report records it. */
export interface RestartRecord {
  consecutive: number;
  jitter: number;
  at: number;
  generation: number;
  lastExit: RecordedExit;
}

export class SessionMemory {
  private readonly entries = new Map<string, Entry>();
  private readonly uidByName = new Map<string, string>();

  /**
   * The session's memory as the snapshot sees it (a copy). A new generation (a spec change or a
   * restart request) starts a fresh crash backoff, as it renews the restart budget.
   */
  read(name: string, uid: string, generation: number): { restarts: RestartHistory; hadContainer: boolean } {
    this.index(name, uid);
    const entry = this.entries.get(uid);
    if (!entry) return { restarts: { consecutive: 0 }, hadContainer: false };
    if (entry.restarts.generation !== undefined && entry.restarts.generation !== generation)
      entry.restarts = { consecutive: 0 };
    return { restarts: { ...entry.restarts }, hadContainer: entry.hadContainer };
  }

  restarted(uid: string, record: RestartRecord): void {
    const entry = this.entry(uid);
    entry.restarts = {
      consecutive: record.consecutive,
      lastRestartAt: record.at,
      generation: record.generation,
      jitter: record.jitter,
      lastExit: record.lastExit,
    };
  }

  /** Whether this deferral reason is new for the due restart (so that each is counted once). */
  deferred(uid: string, reason: DeferralReason): boolean {
    const restarts = this.entries.get(uid)?.restarts;
    if (!restarts || restarts.deferred?.includes(reason)) return false;
    restarts.deferred = [...(restarts.deferred ?? []), reason];
    return true;
  }

  /** A deferral that ended without a restart (the container recovered) is counted afresh next time. */
  clearDeferrals(uid: string): void {
    const restarts = this.entries.get(uid)?.restarts;
    if (restarts) delete restarts.deferred;
  }

  /** A late oom event: the last restart's exit was an OOM kill after all. */
  correctLastExit(uid: string, lastExit: RecordedExit): void {
    const restarts = this.entries.get(uid)?.restarts;
    if (restarts) restarts.lastExit = lastExit;
  }

  sawContainer(uid: string): void {
    this.entry(uid).hadContainer = true;
  }

  /** The row is gone (or finalized): nothing of it is remembered. */
  forget(name: string): void {
    const uid = this.uidByName.get(name);
    this.uidByName.delete(name);
    if (uid !== undefined) this.entries.delete(uid);
  }

  private index(name: string, uid: string): void {
    const previous = this.uidByName.get(name);
    if (previous !== undefined && previous !== uid) this.entries.delete(previous);
    this.uidByName.set(name, uid);
  }

  private entry(uid: string): Entry {
    let entry = this.entries.get(uid);
    if (!entry) {
      entry = { restarts: { consecutive: 0 }, hadContainer: false };
      this.entries.set(uid, entry);
    }
    return entry;
  }
}
