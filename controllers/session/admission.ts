/**
 * Host admission: a Docker host runs at most `maxSessions` sessions and `allocatableMemoryBytes` of
 * memory limits. A session that does not fit waits, Pending with Scheduled=False, and is admitted by
 * itself, oldest first, when room frees. Decisions are synchronous, so two workers can never admit
 * past capacity between a check and a create.
 */
import type { ObservedContainer } from '../../src/model/container';
import { LABELS } from '../../src/model/labels';

export interface HostCapacity {
  maxSessions?: number;
  allocatableMemoryBytes?: number;
}

export type UnschedulableReason = 'InsufficientMemory' | 'MaxSessionsReached';
export type AdmissionResult = { admitted: true } | { admitted: false; reason: UnschedulableReason; message: string };

interface WaitingClaim {
  createdAt: number;
  memoryBytes: number;
}

export interface AdmissionOptions {
  host: string;
  capacity: HostCapacity;
  /** Room freed up: these waiting sessions (oldest first) should try again. */
  onFreed(sessions: string[]): void;
  /** Admitted sessions and memory changed. */
  onUsage?(usage: { sessions: number; memoryBytes: number }): void;
}

export function formatBytes(bytes: number): string {
  const units: Array<[string, number]> = [
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ];
  for (const [unit, size] of units) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))}${unit}`;
  }
  return `${bytes}B`;
}

export class Admission {
  /** Sessions that run, or are about to: session name -> memory limit. */
  private readonly admitted = new Map<string, number>();
  private readonly waiting = new Map<string, WaitingClaim>();

  constructor(private readonly options: AdmissionOptions) {}

  get limited(): boolean {
    const { maxSessions, allocatableMemoryBytes } = this.options.capacity;
    return maxSessions !== undefined || allocatableMemoryBytes !== undefined;
  }

  usage(): { sessions: number; memoryBytes: number } {
    let memoryBytes = 0;
    for (const bytes of this.admitted.values()) memoryBytes += bytes;
    return { sessions: this.admitted.size, memoryBytes };
  }

  /** After a (re)list: running containers hold their room before any waiting session is considered. */
  seed(containers: Iterable<ObservedContainer>): void {
    for (const container of containers) {
      const session = container.labels[LABELS.session];
      if (!session || !['running', 'restarting', 'paused'].includes(container.state)) continue;
      this.admitted.set(session, Number(container.labels[LABELS.memoryBytes] ?? 0) || 0);
    }
    this.report();
  }

  /** A session that already runs keeps its room, even over a capacity that was lowered since. */
  hold(session: string, memoryBytes: number): void {
    if (this.admitted.get(session) === memoryBytes) return;
    this.admitted.set(session, memoryBytes);
    this.waiting.delete(session);
    this.report();
  }

  isAdmitted(session: string): boolean {
    return this.admitted.has(session);
  }

  /**
   * Admits the session if it fits once every older waiting session that fits has been given room:
   * oldest first, but a large session that cannot fit does not hold back smaller ones behind it.
   */
  tryAdmit(session: string, createdAt: number, memoryBytes: number): AdmissionResult {
    const decision = this.check(session, createdAt, memoryBytes);
    if (decision.admitted) this.hold(session, memoryBytes);
    else this.waiting.set(session, { createdAt, memoryBytes });
    return decision;
  }

  /** What tryAdmit would answer now, changing nothing: for the planner's snapshot. */
  check(session: string, createdAt: number, memoryBytes: number): AdmissionResult {
    if (this.admitted.has(session)) return { admitted: true };
    const { maxSessions = Infinity, allocatableMemoryBytes = Infinity } = this.options.capacity;
    let { sessions, memoryBytes: used } = this.usage();
    let ahead = 0;
    const claims = new Map(this.waiting).set(session, { createdAt, memoryBytes });
    const queue = [...claims.entries()].sort(
      ([nameA, a], [nameB, b]) => a.createdAt - b.createdAt || nameA.localeCompare(nameB),
    );
    for (const [name, candidate] of queue) {
      const fitsCount = sessions + 1 <= maxSessions;
      const fitsMemory = used + candidate.memoryBytes <= allocatableMemoryBytes;
      if (name === session)
        return fitsCount && fitsMemory ? { admitted: true } : this.refusal(fitsCount, memoryBytes, ahead);
      if (fitsCount && fitsMemory) {
        sessions += 1;
        used += candidate.memoryBytes;
        ahead += 1;
      }
    }
    throw new Error('unreachable: the session is in the waiting queue');
  }

  /** The session no longer runs (stopped, failed, deleted) or no longer waits. */
  release(session: string): void {
    const freed = this.admitted.delete(session);
    const left = this.waiting.delete(session);
    if (!freed && !left) return;
    if (freed) this.report();
    if (this.waiting.size > 0) {
      const oldestFirst = [...this.waiting.entries()]
        .sort(([, a], [, b]) => a.createdAt - b.createdAt)
        .map(([name]) => name);
      this.options.onFreed(oldestFirst);
    }
  }

  private refusal(fitsCount: boolean, memoryBytes: number, ahead: number): AdmissionResult {
    const { host, capacity } = this.options;
    const usage = this.usage();
    const queue =
      ahead > 0 ? `; ${ahead} older waiting session${ahead === 1 ? '' : 's'} go${ahead === 1 ? 'es' : ''} first` : '';
    if (!fitsCount) {
      return {
        admitted: false,
        reason: 'MaxSessionsReached',
        message: `host ${host} runs ${usage.sessions} of at most ${capacity.maxSessions} sessions${queue}; starts when one stops, oldest first`,
      };
    }
    const free = Math.max(0, capacity.allocatableMemoryBytes! - usage.memoryBytes);
    const never =
      memoryBytes > capacity.allocatableMemoryBytes!
        ? ' (more than the host can ever give: lower spec.resources.memory)'
        : '; starts when memory frees, oldest first';
    return {
      admitted: false,
      reason: 'InsufficientMemory',
      message: `needs ${formatBytes(memoryBytes)} of memory but host ${host} has ${formatBytes(free)} of ${formatBytes(capacity.allocatableMemoryBytes!)} allocatable free${queue}${never}`,
    };
  }

  private report(): void {
    this.options.onUsage?.(this.usage());
  }
}
