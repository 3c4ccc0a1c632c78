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
import type { SessionStatus } from '../../crds/status';
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
        `UPDATE sessionctl.sessions s SET placed_host = p.host, placed_memory_bytes = p.memory, placed_at = now(),
                  evict_requested_at = NULL, evict_reason = NULL
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
 * What taking a session off its host writes: no host, no capacity held, and no observed host either,
 * so that the placer never mistakes the old host for one the session still runs on.
 */
export const UNPLACE_SET = 'placed_host = NULL, placed_memory_bytes = NULL, placed_at = NULL, host = NULL';

/**
 * Takes a session off its host (drain, a lost host), only if it is still on the host the caller
 * means: its capacity is free at commit. Returns false when the row moved on.
 */
export async function unplaceSession(db: Db, name: string, uid: string, fromHost: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE sessionctl.sessions SET ${UNPLACE_SET} WHERE name = $1 AND uid = $2 AND placed_host = $3`,
    [name, uid, fromHost],
  );
  return result.rowCount === 1;
}

/** Sessions waiting for a host (not being deleted), oldest change first: what a placer works through. */
export async function listUnplacedSessions(db: Db, limit = 500): Promise<Array<{ name: string; uid: string }>> {
  return (await listPendingPlacements(db, limit)).map(({ name, uid }) => ({ name, uid }));
}

/** A session waiting for a host, with what placing it needs. */
export interface PendingPlacement {
  name: string;
  uid: string;
  generation: number;
  /** Unvalidated, as written. */
  spec: unknown;
  /**
   * The host a controller last observed the session's container on, before placement existed (a
   * database from an earlier version): the session is placed there, where its container runs.
   */
  runningOn: string | null;
  /** Scheduled=False is already written for this generation with this message. */
  unscheduledMessage: string | null;
  status: Partial<SessionStatus>;
  /** When the spec last changed (or the row was made): scheduling latency counts from here. */
  changedAt: Date;
}

/** Where a pass through the waiting sessions has got to: (generation_changed_at, name) of the last one seen. */
export interface PlacementCursor {
  changedAt: Date;
  name: string;
}

export async function listPendingPlacements(db: Db, limit = 500, after?: PlacementCursor): Promise<PendingPlacement[]> {
  const result = await db.query<{
    name: string;
    uid: string;
    generation: string;
    spec: unknown;
    running_on: string | null;
    unscheduled_message: string | null;
    status: Partial<SessionStatus>;
    generation_changed_at: Date;
  }>(
    `SELECT s.name, s.uid, s.generation, s.spec, s.status, s.generation_changed_at,
            CASE WHEN s.status ->> 'containerId' IS NOT NULL THEN h.name END AS running_on,
            (SELECT c ->> 'message' FROM jsonb_array_elements(coalesce(s.status -> 'conditions', '[]')) c
              WHERE c ->> 'type' = 'Scheduled' AND c ->> 'status' = 'False'
                AND (s.status ->> 'observedGeneration')::bigint = s.generation) AS unscheduled_message
       FROM sessionctl.sessions s LEFT JOIN sessionctl.hosts h ON h.name = s.host
      WHERE s.placed_host IS NULL AND s.deletion_requested_at IS NULL
        AND ($2::timestamptz IS NULL OR (s.generation_changed_at, s.name) > ($2, $3))
      ORDER BY s.generation_changed_at, s.name LIMIT $1`,
    [limit, after?.changedAt ?? null, after?.name ?? null],
  );
  return result.rows.map((row) => ({
    name: row.name,
    uid: row.uid,
    generation: Number(row.generation),
    spec: row.spec,
    runningOn: row.running_on,
    unscheduledMessage: row.unscheduled_message,
    status: row.status,
    changedAt: row.generation_changed_at,
  }));
}

/**
 * Status of a session no host has taken yet (Scheduled=False): only at the generation acted on and
 * only while it is still unplaced, so a placement committed meanwhile is never painted over.
 */
export async function writeUnplacedStatus(
  db: Db,
  write: { name: string; generation: number; status: object },
): Promise<boolean> {
  const result = await db.query(
    `UPDATE sessionctl.sessions SET status = $3
      WHERE name = $1 AND generation = $2 AND placed_host IS NULL AND deletion_requested_at IS NULL`,
    [write.name, write.generation, JSON.stringify(write.status)],
  );
  return result.rowCount === 1;
}

/**
 * Rows whose deletion was asked while they had no host: no container of theirs runs anywhere this
 * controller reconciles (a lost host's strays are removed when it returns), so they go at once.
 */
export async function finishUnplacedDeletions(db: Db): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    `DELETE FROM sessionctl.sessions WHERE placed_host IS NULL AND deletion_requested_at IS NOT NULL RETURNING name`,
  );
  return result.rows.map((row) => row.name);
}

/** A session placed on a host, as the host's leaseholder needs it when the host stops answering. */
export interface PlacedSession {
  name: string;
  uid: string;
  generation: number;
  status: Partial<SessionStatus>;
  /** Named volumes or host directories: its data lives on this host, so it waits for it. */
  keepsDataOnHost: boolean;
  /** A drain asked to move it (with --force, even with its data left behind). */
  evicting: boolean;
}

export async function listPlacedSessions(db: Db, host: string): Promise<PlacedSession[]> {
  const result = await db.query<{
    name: string;
    uid: string;
    generation: string;
    status: Partial<SessionStatus>;
    keeps_data: boolean;
    evicting: boolean;
  }>(
    `SELECT name, uid, generation, status, evict_requested_at IS NOT NULL AS evicting,
            coalesce(jsonb_typeof(spec -> 'volumes') = 'array' AND jsonb_array_length(spec -> 'volumes') > 0, false) AS keeps_data
       FROM sessionctl.sessions WHERE placed_host = $1 AND deletion_requested_at IS NULL ORDER BY name`,
    [host],
  );
  return result.rows.map((row) => ({
    name: row.name,
    uid: row.uid,
    generation: Number(row.generation),
    status: row.status,
    keepsDataOnHost: row.keeps_data,
    evicting: row.evicting,
  }));
}

/** Names of the sessions placed on a host (deleting ones included: their deletion is the host's to finish). */
export async function listPlacedSessionNames(db: Db, host: string): Promise<string[]> {
  const result = await db.query<{ name: string }>('SELECT name FROM sessionctl.sessions WHERE placed_host = $1', [
    host,
  ]);
  return result.rows.map((row) => row.name);
}

/** Hosts other than this one that could take a session now (open, and Pending or Ready). */
export async function countOtherAvailableHosts(db: Db, host: string): Promise<number> {
  const result = await db.query<{ count: string }>(
    `SELECT count(*) FROM sessionctl.hosts WHERE name <> $1 AND NOT cordoned AND state IN ('Pending', 'Ready')`,
    [host],
  );
  return Number(result.rows[0].count);
}
