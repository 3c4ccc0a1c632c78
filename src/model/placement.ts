/**
 * Placement: which host a session goes to. Pure: the store hands in the candidate hosts with what
 * they already hold (read under row locks, src/store/placement.ts) and the sessions to place, and
 * gets back a host per session or the reason none fits, with the numbers for `Scheduled=False`.
 */

/** spread: least allocated memory, then fewest sessions (the default). binpack: the fullest host that still fits. */
export type PlacementPolicy = 'spread' | 'binpack';

export interface PlacementHost {
  name: string;
  labels: Record<string, string>;
  cordoned: boolean;
  /** Placement uses Pending (never contacted yet) and Ready hosts only. */
  available: boolean;
  /** null = unlimited. */
  maxSessions: number | null;
  allocatableMemoryBytes: number | null;
  sessions: number;
  allocatedMemoryBytes: number;
}

export interface PlacementRequest {
  session: string;
  memoryBytes: number;
  /** spec.hostSelector: every label must match. */
  hostSelector?: Record<string, string>;
  /** A pinned host: only this one. */
  hostName?: string;
  /**
   * The host the session's container already runs on (a database from before placement): it is
   * placed there whatever the capacity, cordon or state, since moving it would lose nothing but
   * still restart the user's session.
   */
  runningOn?: string;
}

export type UnscheduledReason = 'NoMatchingHost' | 'AllHostsCordoned' | 'AllHostsUnavailable' | 'AllHostsFull';

export interface Unscheduled {
  reason: UnscheduledReason;
  /** For the condition: what was asked, how many hosts exist, match, are cordoned, unavailable, full. */
  message: string;
  hosts: number;
  matching: number;
  cordoned: number;
  unavailable: number;
  full: number;
}

export type PlacementDecision = { session: string; host: string } | ({ session: string } & Unscheduled);

const GiB = 1024 ** 3;

/** Memory as people read it in messages and tables: 4Gi, 512Mi. */
export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${+(bytes / GiB).toFixed(2)}Gi`;
  return `${+(bytes / 1024 ** 2).toFixed(1)}Mi`;
}

function matches(host: PlacementHost, request: PlacementRequest): boolean {
  if (request.hostName !== undefined && host.name !== request.hostName) return false;
  return Object.entries(request.hostSelector ?? {}).every(([key, value]) => host.labels[key] === value);
}

function fits(host: PlacementHost, memoryBytes: number): boolean {
  if (host.maxSessions !== null && host.sessions + 1 > host.maxSessions) return false;
  if (host.allocatableMemoryBytes !== null && host.allocatedMemoryBytes + memoryBytes > host.allocatableMemoryBytes)
    return false;
  return true;
}

/** Negative when a is the better host. Ties end on the name, so every replica decides alike. */
function compare(policy: PlacementPolicy, a: PlacementHost, b: PlacementHost): number {
  const sign = policy === 'spread' ? 1 : -1;
  return (
    sign * (a.allocatedMemoryBytes - b.allocatedMemoryBytes) ||
    sign * (a.sessions - b.sessions) ||
    a.name.localeCompare(b.name)
  );
}

function requested(request: PlacementRequest): string {
  const restrictions = [
    request.hostName !== undefined ? `host ${request.hostName}` : '',
    Object.keys(request.hostSelector ?? {}).length
      ? `hostSelector ${Object.entries(request.hostSelector!)
          .map(([key, value]) => `${key}=${value}`)
          .join(',')}`
      : '',
  ].filter(Boolean);
  return `${formatBytes(request.memoryBytes)}${restrictions.length ? ` on ${restrictions.join(' and ')}` : ''}`;
}

function unscheduled(hosts: PlacementHost[], request: PlacementRequest): Unscheduled {
  const matching = hosts.filter((host) => matches(host, request));
  const cordoned = matching.filter((host) => host.cordoned).length;
  const open = matching.filter((host) => !host.cordoned);
  const unavailable = open.filter((host) => !host.available).length;
  const full = open.filter((host) => host.available && !fits(host, request.memoryBytes)).length;
  const counts = { hosts: hosts.length, matching: matching.length, cordoned, unavailable, full };
  const asked = `needs ${requested(request)}`;
  if (matching.length === 0)
    return { reason: 'NoMatchingHost', message: `${asked}: none of the ${hosts.length} hosts match`, ...counts };
  if (cordoned === matching.length)
    return { reason: 'AllHostsCordoned', message: `${asked}: all ${cordoned} matching hosts are cordoned`, ...counts };
  if (full === 0)
    return {
      reason: 'AllHostsUnavailable',
      message: `${asked}: of ${matching.length} matching hosts ${cordoned} are cordoned and ${unavailable} unreachable or lost`,
      ...counts,
    };
  const room = open
    .filter((host) => host.available)
    .map(
      (host) =>
        `${host.name} ${host.sessions}/${host.maxSessions ?? '∞'} sessions, ` +
        `${formatBytes(host.allocatedMemoryBytes)}/${host.allocatableMemoryBytes === null ? '∞' : formatBytes(host.allocatableMemoryBytes)}`,
    );
  const shown = room.slice(0, 5).join('; ') + (room.length > 5 ? `; and ${room.length - 5} more` : '');
  return {
    reason: 'AllHostsFull',
    message: `${asked}: all ${full} open matching hosts are full (${shown})${cordoned + unavailable ? `; ${cordoned} cordoned, ${unavailable} unreachable or lost` : ''}`,
    ...counts,
  };
}

/**
 * Places the requests in order, each seeing the ones before it: the hosts' usage is updated in
 * place on copies, so a batch never overcommits a host either.
 */
export function placeAll(
  hosts: readonly PlacementHost[],
  requests: readonly PlacementRequest[],
  policy: PlacementPolicy = 'spread',
): PlacementDecision[] {
  const state = hosts.map((host) => ({ ...host }));
  return requests.map((request) => {
    const adopted = request.runningOn === undefined ? undefined : state.find((host) => host.name === request.runningOn);
    const best =
      adopted ??
      state
        .filter((host) => host.available && !host.cordoned && matches(host, request) && fits(host, request.memoryBytes))
        .sort((a, b) => compare(policy, a, b))[0];
    if (!best) return { session: request.session, ...unscheduled(state, request) };
    best.sessions += 1;
    best.allocatedMemoryBytes += request.memoryBytes;
    return { session: request.session, host: best.name };
  });
}
