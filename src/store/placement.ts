/**
 * Placement in the database: a session is given a host once, in the same transaction that counts
 * what the host already holds, so that any number of replicas placing at once never overcommit a
 * host (the max-instances race of ShinyProxy #591 is the failure to avoid).
 *
 * How: every host row is locked (FOR NO KEY UPDATE, in name order, so two placers never deadlock)
 * before usage is summed from the sessions placed on them. A second placer waits for the first to
 * commit, and its next statement sees what the first placed: the sum is always the committed truth.
 * Host rows are few and a placement holds them for a couple of milliseconds; a batch places many
 * sessions under one lock. The choice itself is the pure src/model/placement.ts.
 */
import type { Pool } from 'pg';
import {
  placeAll,
  type PlacementHost,
  type PlacementPolicy,
  type PlacementRequest,
  type Unscheduled,
} from '../model/placement';
import { withTransaction, type Db } from './db';

export interface PlaceRequest extends PlacementRequest {
  /** When given, the row must still have this uid: a session re-created under the same name is another session. */
  uid?: string;
}

export type PlacementResult =
  | { session: string; outcome: 'placed' | 'already-placed'; host: string }
  | ({ session: string; outcome: 'unscheduled' } & Unscheduled)
  /** No such row (or another uid), or its deletion was requested: nothing to place. */
  | { session: string; outcome: 'gone' };

export interface PlaceOptions {
  policy?: PlacementPolicy;
}

async function lockHosts(db: Db): Promise<PlacementHost[]> {
  const hosts = await db.query<{
    name: string;
    labels: Record<string, string>;
    cordoned: boolean;
    state: string;
    max_sessions: number | null;
    allocatable_memory_bytes: string | null;
  }>(
    `SELECT name, labels, cordoned, state, max_sessions, allocatable_memory_bytes
       FROM sessionctl.hosts ORDER BY name FOR NO KEY UPDATE`,
  );
  // A new statement, so a new snapshot: it sees every placement committed before the locks were ours.
  const usage = await db.query<{ host: string; sessions: string; memory: string }>(
    `SELECT placed_host AS host, count(*) AS sessions, coalesce(sum(placed_memory_bytes), 0) AS memory
       FROM sessionctl.sessions WHERE placed_host IS NOT NULL GROUP BY placed_host`,
  );
  const used = new Map(usage.rows.map((row) => [row.host, row]));
  return hosts.rows.map((host) => ({
    name: host.name,
    labels: host.labels,
    cordoned: host.cordoned,
    available: host.state === 'Pending' || host.state === 'Ready',
    maxSessions: host.max_sessions,
    allocatableMemoryBytes: host.allocatable_memory_bytes === null ? null : Number(host.allocatable_memory_bytes),
    sessions: Number(used.get(host.name)?.sessions ?? 0),
    allocatedMemoryBytes: Number(used.get(host.name)?.memory ?? 0),
  }));
}

async function lockSessions(
  db: Db,
  requests: PlaceRequest[],
): Promise<Map<string, { uid: string; placedHost: string | null; deleting: boolean }>> {
  const result = await db.query<{ name: string; uid: string; placed_host: string | null; deleting: boolean }>(
    `SELECT name, uid, placed_host, deletion_requested_at IS NOT NULL AS deleting
       FROM sessionctl.sessions WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`,
    [requests.map((request) => request.session)],
  );
  return new Map(
    result.rows.map((row) => [row.name, { uid: row.uid, placedHost: row.placed_host, deleting: row.deleting }]),
  );
}

/**
 * Places each unplaced session of the batch, in order, and writes the host and the memory it was
 * counted with to its row. Idempotent: a session already placed keeps its host ('already-placed').
 */
export async function placeSessions(
  pool: Pool,
  requests: PlaceRequest[],
  options: PlaceOptions = {},
): Promise<PlacementResult[]> {
  if (requests.length === 0) return [];
  return withTransaction(pool, async (tx) => {
    const hosts = await lockHosts(tx);
    const rows = await lockSessions(tx, requests);
    const results = new Map<string, PlacementResult>();
    const toPlace: PlaceRequest[] = [];
    const seen = new Set<string>();
    for (const request of requests) {
      if (seen.has(request.session)) continue;
      seen.add(request.session);
      const row = rows.get(request.session);
      if (!row || row.deleting || (request.uid !== undefined && request.uid !== row.uid))
        results.set(request.session, { session: request.session, outcome: 'gone' });
      else if (row.placedHost !== null)
        results.set(request.session, { session: request.session, outcome: 'already-placed', host: row.placedHost });
      else toPlace.push(request);
    }
    const decisions = placeAll(hosts, toPlace, options.policy);
    const placed = decisions.flatMap((decision, index) =>
      'host' in decision ? [{ ...decision, memoryBytes: toPlace[index].memoryBytes }] : [],
    );
    if (placed.length > 0) {
      await tx.query(
        `UPDATE sessionctl.sessions s SET placed_host = p.host, placed_memory_bytes = p.memory, placed_at = now()
           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS p(name, host, memory)
          WHERE s.name = p.name AND s.placed_host IS NULL`,
        [placed.map((p) => p.session), placed.map((p) => p.host), placed.map((p) => p.memoryBytes)],
      );
    }
    for (const decision of decisions) {
      results.set(
        decision.session,
        'host' in decision
          ? { session: decision.session, outcome: 'placed', host: decision.host }
          : { ...decision, outcome: 'unscheduled' },
      );
    }
    return requests.map((request) => results.get(request.session)!);
  });
}

export async function placeSession(
  pool: Pool,
  request: PlaceRequest,
  options: PlaceOptions = {},
): Promise<PlacementResult> {
  return (await placeSessions(pool, [request], options))[0];
}

/**
 * Takes a session off its host (drain, a lost host), only if it is still on the host the caller
 * means: its capacity is free at commit. Returns false when the row moved on.
 */
export async function unplaceSession(db: Db, name: string, uid: string, fromHost: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE sessionctl.sessions SET placed_host = NULL, placed_memory_bytes = NULL, placed_at = NULL
      WHERE name = $1 AND uid = $2 AND placed_host = $3`,
    [name, uid, fromHost],
  );
  return result.rowCount === 1;
}

/** Sessions waiting for a host (not being deleted), oldest change first: what a placer works through. */
export async function listUnplacedSessions(db: Db, limit = 500): Promise<Array<{ name: string; uid: string }>> {
  const result = await db.query<{ name: string; uid: string }>(
    `SELECT name, uid FROM sessionctl.sessions
      WHERE placed_host IS NULL AND deletion_requested_at IS NULL
      ORDER BY generation_changed_at LIMIT $1`,
    [limit],
  );
  return result.rows;
}
