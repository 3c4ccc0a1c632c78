/**
 * The sessions repository: every SQL statement the controller and the CLI run against
 * `sessionctl.sessions`. Status writes are guarded by the generation that was read.
 */
import type { SessionStatus } from '../../crds/status';
import type { Db } from './db';
import { selectorSql, type Requirement } from './selector';

/** The finalizer the controller holds while a container may exist for the row. */
export const CONTAINER_FINALIZER = 'sessionctl.dev/container';

export interface SessionRow {
  name: string;
  uid: string;
  labels: Record<string, string>;
  /** Unvalidated: other services write it directly. */
  spec: unknown;
  generation: number;
  resourceVersion: number;
  createdAt: Date;
  updatedAt: Date;
  generationChangedAt: Date;
  deletionRequestedAt: Date | null;
  finalizers: string[];
  status: Partial<SessionStatus>;
  host: string | null;
  lastActivityAt: Date | null;
  restartRequestedAt: Date | null;
  /** The host placement gave the session (015); null until placed. */
  placedHost: string | null;
  /** A drain asked to move the session off its host (017). */
  evictRequestedAt: Date | null;
  evictReason: string | null;
}

const COLUMNS = `name, uid, labels, spec, generation, resource_version, created_at, updated_at,
  generation_changed_at, deletion_requested_at, finalizers, status, host, last_activity_at, restart_requested_at,
  placed_host, evict_requested_at, evict_reason`;

interface RawRow {
  name: string;
  uid: string;
  labels: Record<string, string>;
  spec: unknown;
  generation: string;
  resource_version: string;
  created_at: Date;
  updated_at: Date;
  generation_changed_at: Date;
  deletion_requested_at: Date | null;
  finalizers: string[];
  status: Partial<SessionStatus>;
  host: string | null;
  last_activity_at: Date | null;
  restart_requested_at: Date | null;
  placed_host: string | null;
  evict_requested_at: Date | null;
  evict_reason: string | null;
}

function toRow(raw: RawRow): SessionRow {
  return {
    name: raw.name,
    uid: raw.uid,
    labels: raw.labels,
    spec: raw.spec,
    generation: Number(raw.generation),
    resourceVersion: Number(raw.resource_version),
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
    generationChangedAt: raw.generation_changed_at,
    deletionRequestedAt: raw.deletion_requested_at,
    finalizers: raw.finalizers,
    status: raw.status,
    host: raw.host,
    lastActivityAt: raw.last_activity_at,
    restartRequestedAt: raw.restart_requested_at,
    placedHost: raw.placed_host,
    evictRequestedAt: raw.evict_requested_at,
    evictReason: raw.evict_reason,
  };
}

/** The access token's bookkeeping (never its plaintext), when the session has one. */
export interface SessionTokenInfo {
  sessionUid: string;
  tokenId: string;
  expiresAt: Date;
}

/** One row with its token's bookkeeping: what a reconcile reads, in one query. */
export async function getSession(
  db: Db,
  name: string,
): Promise<(SessionRow & { token?: SessionTokenInfo }) | undefined> {
  const result = await db.query<
    RawRow & { token_uid: string | null; token_id: string | null; token_expires_at: Date | null }
  >(
    `SELECT ${COLUMNS.split(',')
      .map((column) => `s.${column.trim()}`)
      .join(', ')}, t.session_uid AS token_uid, t.token_id, t.expires_at AS token_expires_at
       FROM sessionctl.sessions s LEFT JOIN sessionctl.session_tokens t ON t.session_name = s.name
      WHERE s.name = $1`,
    [name],
  );
  const raw = result.rows[0];
  if (!raw) return undefined;
  const row: SessionRow & { token?: SessionTokenInfo } = toRow(raw);
  if (raw.token_id) row.token = { sessionUid: raw.token_uid!, tokenId: raw.token_id, expiresAt: raw.token_expires_at! };
  return row;
}

/** Where one session is placed (null: waiting for a host); undefined when there is no such row. */
export async function getPlacement(db: Db, name: string): Promise<{ placedHost: string | null } | undefined> {
  const result = await db.query<{ placed_host: string | null }>(
    'SELECT placed_host FROM sessionctl.sessions WHERE name = $1',
    [name],
  );
  return result.rows[0] ? { placedHost: result.rows[0].placed_host } : undefined;
}

/** A session's name and the host it is placed on (null: waiting for placement). */
export interface SessionPlacement {
  name: string;
  placedHost: string | null;
}

export async function listSessionNames(db: Db): Promise<string[]> {
  return (await listSessionPlacements(db)).map((row) => row.name);
}

export async function listSessionPlacements(db: Db): Promise<SessionPlacement[]> {
  const result = await db.query<{ name: string; placed_host: string | null }>(
    'SELECT name, placed_host FROM sessionctl.sessions',
  );
  return result.rows.map((row) => ({ name: row.name, placedHost: row.placed_host }));
}

/** Rows whose current generation the controller has not yet written status for. */
export async function listUnobservedSessionNames(db: Db, limit = 1000): Promise<string[]> {
  return (await listUnobservedSessions(db, limit)).map((row) => row.name);
}

/** listUnobservedSessionNames, with where each is placed. */
export async function listUnobservedSessions(db: Db, limit = 1000): Promise<SessionPlacement[]> {
  const result = await db.query<{ name: string; placed_host: string | null }>(
    `SELECT name, placed_host FROM sessionctl.sessions
      WHERE coalesce((status ->> 'observedGeneration')::bigint, 0) < generation
      ORDER BY generation_changed_at LIMIT $1`,
    [limit],
  );
  return result.rows.map((row) => ({ name: row.name, placedHost: row.placed_host }));
}

/**
 * Writes status only if the row is still at the generation the controller acted on.
 * Returns false when the row moved on (or is gone): the caller requeues, it never overwrites the spec.
 */
export async function writeStatus(
  db: Db,
  name: string,
  generation: number,
  status: SessionStatus,
  host: string | null,
): Promise<boolean> {
  const result = await db.query(
    'UPDATE sessionctl.sessions SET status = $3, host = $4 WHERE name = $1 AND generation = $2',
    [name, generation, JSON.stringify(status), host],
  );
  return result.rowCount === 1;
}

/** Claims the row's deletion before any container exists, so a DELETE waits for cleanup. */
export async function addFinalizer(
  db: Db,
  name: string,
  uid: string,
  finalizer = CONTAINER_FINALIZER,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE sessionctl.sessions SET finalizers = array_append(finalizers, $3)
      WHERE name = $1 AND uid = $2 AND deletion_requested_at IS NULL AND NOT ($3 = ANY (finalizers))`,
    [name, uid, finalizer],
  );
  return result.rowCount === 1;
}

/**
 * Ends a graceful deletion: drops the finalizer and deletes the row in one statement pair.
 * Guarded by uid so that a row re-created under the same name is never deleted by mistake.
 */
export async function finishDeletion(
  db: Db,
  name: string,
  uid: string,
  finalizer = CONTAINER_FINALIZER,
): Promise<boolean> {
  await db.query(
    `UPDATE sessionctl.sessions SET finalizers = array_remove(finalizers, $3)
      WHERE name = $1 AND uid = $2 AND deletion_requested_at IS NOT NULL`,
    [name, uid, finalizer],
  );
  const result = await db.query(
    `DELETE FROM sessionctl.sessions WHERE name = $1 AND uid = $2 AND deletion_requested_at IS NOT NULL AND cardinality(finalizers) = 0`,
    [name, uid],
  );
  return result.rowCount === 1;
}

export async function countSessionsByPhase(db: Db): Promise<Map<string, number>> {
  const result = await db.query<{ phase: string | null; count: string }>(
    `SELECT coalesce(status ->> 'phase', 'Pending') AS phase, count(*) AS count FROM sessionctl.sessions GROUP BY 1`,
  );
  return new Map(result.rows.map((row) => [row.phase ?? 'Pending', Number(row.count)]));
}

export interface SessionWrite {
  name: string;
  labels: Record<string, string>;
  spec: object;
}

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

/**
 * Upserts many sessions in one statement. "unchanged" means the generation did not move:
 * the trigger ignores jsonb key order, so re-applying the same file changes nothing.
 */
export async function upsertSessions(
  db: Db,
  writes: SessionWrite[],
): Promise<Array<{ name: string; outcome: ApplyOutcome; generation: number }>> {
  if (writes.length === 0) return [];
  const result = await db.query<{ name: string; generation: string; before: string | null }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::jsonb[], $3::jsonb[]) AS t(name, labels, spec)
     ), before AS (
       SELECT s.name, s.generation FROM sessionctl.sessions s JOIN input USING (name)
     ), written AS (
       INSERT INTO sessionctl.sessions (name, labels, spec)
       SELECT name, labels, spec FROM input
       ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, labels = EXCLUDED.labels
       RETURNING name, generation
     )
     SELECT w.name, w.generation, b.generation AS before FROM written w LEFT JOIN before b USING (name)`,
    [
      writes.map((write) => write.name),
      writes.map((write) => JSON.stringify(write.labels)),
      writes.map((write) => JSON.stringify(write.spec)),
    ],
  );
  const byName = new Map(result.rows.map((row) => [row.name, row]));
  return writes.map((write) => {
    const row = byName.get(write.name)!;
    const outcome: ApplyOutcome =
      row.before === null ? 'created' : Number(row.before) === Number(row.generation) ? 'unchanged' : 'configured';
    return { name: write.name, outcome, generation: Number(row.generation) };
  });
}

export interface ListOptions {
  names?: string[];
  selector?: Requirement[];
}

/** Rows by name and/or label selector, in name order: one query whatever the count. */
export async function listSessions(db: Db, options: ListOptions = {}): Promise<SessionRow[]> {
  const conditions: string[] = [];
  const values: unknown[] = [];
  if (options.names?.length) {
    values.push(options.names);
    conditions.push(`name = ANY($${values.length}::text[])`);
  }
  if (options.selector?.length) {
    const compiled = selectorSql(options.selector, 'labels', values.length + 1);
    conditions.push(compiled.sql);
    values.push(...compiled.values);
  }
  const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
  const result = await db.query<RawRow>(`SELECT ${COLUMNS} FROM sessionctl.sessions ${where} ORDER BY name`, values);
  return result.rows.map(toRow);
}

/** Deletes (gracefully, where a container remains) and returns the names that existed. */
export async function deleteSessions(db: Db, names: string[]): Promise<string[]> {
  const existing = await db.query<{ name: string }>(
    'SELECT name FROM sessionctl.sessions WHERE name = ANY($1::text[])',
    [names],
  );
  await db.query('DELETE FROM sessionctl.sessions WHERE name = ANY($1::text[])', [names]);
  return existing.rows.map((row) => row.name);
}

/** kubectl's --prune: delete the selected sessions that the applied set no longer names. */
export async function pruneSessions(db: Db, selector: Requirement[], keep: string[]): Promise<string[]> {
  const compiled = selectorSql(selector, 'labels', 2);
  const result = await db.query<{ name: string }>(
    `SELECT name FROM sessionctl.sessions WHERE NOT (name = ANY($1::text[])) AND deletion_requested_at IS NULL AND ${compiled.sql} ORDER BY name`,
    [keep, ...compiled.values],
  );
  const names = result.rows.map((row) => row.name);
  if (names.length > 0) await deleteSessions(db, names);
  return names;
}

/**
 * `sessionctl restart`: a new revision of the container. The trigger moves the generation, so the
 * container is recreated and a Failed session (restart budget spent) gets a fresh budget.
 */
export async function requestRestart(db: Db, name: string): Promise<boolean> {
  const result = await db.query(
    'UPDATE sessionctl.sessions SET restart_requested_at = clock_timestamp() WHERE name = $1 AND deletion_requested_at IS NULL',
    [name],
  );
  return result.rowCount === 1;
}

/**
 * Deletion on the controller's own initiative (lifetimes), by the same DELETE a writer runs: the
 * trigger turns it into a graceful deletion while the row still owns a container.
 */
export async function deleteSessionAs(db: Db, name: string, uid: string): Promise<void> {
  await db.query('DELETE FROM sessionctl.sessions WHERE name = $1 AND uid = $2', [name, uid]);
}

/** Records user activity, for idle timeouts. */
export async function touchSession(db: Db, name: string): Promise<boolean> {
  const result = await db.query('UPDATE sessionctl.sessions SET last_activity_at = now() WHERE name = $1', [name]);
  return result.rowCount === 1;
}
