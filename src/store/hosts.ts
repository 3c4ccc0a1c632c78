/**
 * The hosts repository: every SQL statement against `sessionctl.hosts` (migration 014), the fleet's
 * Docker daemons. What a host holds (sessions, memory) is counted from the sessions placed on it
 * (015), never kept as a counter that could drift.
 */
import type { Db } from './db';

export type HostState = 'Pending' | 'Ready' | 'Unreachable' | 'Lost';

/**
 * Where migration 014 announces a host change that can make room or take it away (insert, delete,
 * a new generation or a new state): payload {"name", "op", "generation", "state"}.
 */
export const HOSTS_CHANNEL = 'sessionctl_hosts';

/** What an operator declares (a DockerHost manifest). */
export interface HostWrite {
  name: string;
  labels: Record<string, string>;
  endpoint: string;
  certDir: string;
  advertiseAddress?: string;
  maxSessions?: number;
  allocatableMemoryBytes?: number;
}

export interface HostRow extends Required<
  Omit<HostWrite, 'advertiseAddress' | 'maxSessions' | 'allocatableMemoryBytes'>
> {
  uid: string;
  advertiseAddress: string | null;
  maxSessions: number | null;
  allocatableMemoryBytes: number | null;
  cordoned: boolean;
  state: HostState;
  stateMessage: string | null;
  stateChangedAt: Date;
  source: 'manifest' | 'DOCKER_HOST';
  generation: number;
  createdAt: Date;
  updatedAt: Date;
  /** Sessions placed on the host, and the memory they were counted with. */
  sessions: number;
  allocatedMemoryBytes: number;
  /** The replica holding a live lease on the host (016), if any. */
  leaseHolder: string | null;
  leaseEpoch: number | null;
  leaseExpiresAt: Date | null;
}

interface RawHost {
  name: string;
  uid: string;
  labels: Record<string, string>;
  endpoint: string;
  cert_dir: string;
  advertise_address: string | null;
  max_sessions: number | null;
  allocatable_memory_bytes: string | null;
  cordoned: boolean;
  state: HostState;
  state_message: string | null;
  state_changed_at: Date;
  source: 'manifest' | 'DOCKER_HOST';
  generation: string;
  created_at: Date;
  updated_at: Date;
  sessions: string;
  allocated_memory_bytes: string;
  lease_holder: string | null;
  lease_epoch: string | null;
  lease_expires_at: Date | null;
}

const numberOrNull = (value: string | number | null) => (value === null ? null : Number(value));

function toRow(raw: RawHost): HostRow {
  return {
    name: raw.name,
    uid: raw.uid,
    labels: raw.labels,
    endpoint: raw.endpoint,
    certDir: raw.cert_dir,
    advertiseAddress: raw.advertise_address,
    maxSessions: raw.max_sessions,
    allocatableMemoryBytes: numberOrNull(raw.allocatable_memory_bytes),
    cordoned: raw.cordoned,
    state: raw.state,
    stateMessage: raw.state_message,
    stateChangedAt: raw.state_changed_at,
    source: raw.source,
    generation: Number(raw.generation),
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
    sessions: Number(raw.sessions),
    allocatedMemoryBytes: Number(raw.allocated_memory_bytes),
    leaseHolder: raw.lease_holder,
    leaseEpoch: numberOrNull(raw.lease_epoch),
    leaseExpiresAt: raw.lease_expires_at,
  };
}

/** Hosts with their usage and live lease, in name order; all of them when no names are given. */
export async function listHosts(db: Db, names?: string[]): Promise<HostRow[]> {
  const result = await db.query<RawHost>(
    `SELECT h.*, coalesce(u.sessions, 0) AS sessions, coalesce(u.memory, 0) AS allocated_memory_bytes,
            l.holder AS lease_holder, l.epoch AS lease_epoch, l.expires_at AS lease_expires_at
       FROM sessionctl.hosts h
       LEFT JOIN (SELECT placed_host, count(*) AS sessions, sum(placed_memory_bytes) AS memory
                    FROM sessionctl.sessions WHERE placed_host IS NOT NULL GROUP BY placed_host) u
              ON u.placed_host = h.name
       LEFT JOIN sessionctl.host_leases l ON l.host = h.name AND l.holder IS NOT NULL AND l.expires_at > now()
      WHERE $1::text[] IS NULL OR h.name = ANY($1::text[])
      ORDER BY h.name`,
    [names?.length ? names : null],
  );
  return result.rows.map(toRow);
}

/**
 * Sessions waiting for room as seen from one host: every session without a host and with
 * Scheduled=False, how many of those this host matches (pinned name and host selector, cordon and
 * capacity aside), and how many sessions on it have an eviction requested (drain).
 */
export async function hostBacklog(
  db: Db,
  name: string,
): Promise<{ waiting: number; matching: number; evicting: number }> {
  const result = await db.query<{ waiting: string; matching: string; evicting: string }>(
    `SELECT count(s.name) AS waiting,
            count(s.name) FILTER (WHERE (s.spec ->> 'host' IS NULL OR s.spec ->> 'host' = h.name)
                               AND coalesce(s.spec -> 'hostSelector', '{}'::jsonb) <@ h.labels) AS matching,
            (SELECT count(*) FROM sessionctl.sessions e
              WHERE e.placed_host = $1 AND e.evict_requested_at IS NOT NULL) AS evicting
       FROM sessionctl.hosts h
       LEFT JOIN sessionctl.sessions s
              ON s.placed_host IS NULL AND s.deletion_requested_at IS NULL
             AND jsonb_path_exists(s.status, '$.conditions[*] ? (@.type == "Scheduled" && @.status == "False")')
      WHERE h.name = $1
      GROUP BY h.name`,
    [name],
  );
  const row = result.rows[0];
  return {
    waiting: Number(row?.waiting ?? 0),
    matching: Number(row?.matching ?? 0),
    evicting: Number(row?.evicting ?? 0),
  };
}

export type HostApplyOutcome = 'created' | 'configured' | 'unchanged';

/** A manifest gives a second name to an endpoint that is registered already: one endpoint is one host. */
export class HostEndpointTakenError extends Error {
  override readonly name = 'HostEndpointTakenError';
}

/**
 * Creates or updates hosts from manifests in one statement. Never touches cordon or state: those
 * belong to `sessionctl cordon` and the controller. A second name for an endpoint that is already
 * registered is refused (HostEndpointTakenError, naming the host that has it); a concurrent apply
 * that races past the check fails on hosts_endpoint_unique.
 */
export async function upsertHosts(
  db: Db,
  writes: HostWrite[],
): Promise<Array<{ name: string; outcome: HostApplyOutcome; generation: number }>> {
  if (writes.length === 0) return [];
  await refuseTakenEndpoints(db, writes);
  const result = await db.query<{ name: string; generation: string; before: string | null }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
         AS t(name, labels, endpoint, cert_dir, advertise_address, max_sessions, allocatable_memory_bytes)
     ), before AS (
       SELECT h.name, h.generation FROM sessionctl.hosts h JOIN input USING (name)
     ), written AS (
       INSERT INTO sessionctl.hosts AS h (name, labels, endpoint, cert_dir, advertise_address, max_sessions, allocatable_memory_bytes, source)
       SELECT name, labels, endpoint, cert_dir, advertise_address, max_sessions, allocatable_memory_bytes, 'manifest' FROM input
       ON CONFLICT (name) DO UPDATE SET labels = EXCLUDED.labels, endpoint = EXCLUDED.endpoint,
         cert_dir = EXCLUDED.cert_dir, advertise_address = EXCLUDED.advertise_address,
         max_sessions = EXCLUDED.max_sessions, allocatable_memory_bytes = EXCLUDED.allocatable_memory_bytes,
         source = 'manifest'
       RETURNING name, generation
     )
     SELECT w.name, w.generation, b.generation AS before FROM written w LEFT JOIN before b USING (name)`,
    [
      writes.map((write) => write.name),
      writes.map((write) => JSON.stringify(write.labels)),
      writes.map((write) => write.endpoint),
      writes.map((write) => write.certDir),
      writes.map((write) => write.advertiseAddress ?? null),
      writes.map((write) => write.maxSessions ?? null),
      writes.map((write) => write.allocatableMemoryBytes ?? null),
    ],
  );
  const byName = new Map(result.rows.map((row) => [row.name, row]));
  return writes.map((write) => {
    const row = byName.get(write.name)!;
    const outcome: HostApplyOutcome =
      row.before === null ? 'created' : Number(row.before) === Number(row.generation) ? 'unchanged' : 'configured';
    return { name: write.name, outcome, generation: Number(row.generation) };
  });
}

async function refuseTakenEndpoints(db: Db, writes: HostWrite[]): Promise<void> {
  const taken = await db.query<{ wanted: string; name: string; endpoint: string; source: string }>(
    `SELECT t.name AS wanted, h.name, h.endpoint, h.source
       FROM unnest($1::text[], $2::text[]) AS t(name, endpoint)
       JOIN sessionctl.hosts h ON h.endpoint = t.endpoint AND h.name <> t.name
      ORDER BY t.name`,
    [writes.map((write) => write.name), writes.map((write) => write.endpoint)],
  );
  if (taken.rows.length === 0) return;
  const clashes = taken.rows.map(
    (row) =>
      `host ${row.wanted}: endpoint ${row.endpoint} is already host ${row.name}` +
      (row.source === 'DOCKER_HOST' ? ' (registered by a controller started with DOCKER_HOST)' : ''),
  );
  throw new HostEndpointTakenError(
    `${clashes.join('; ')}. One endpoint is one host: apply it under the name it has (metadata.name), or delete that host first (sessionctl delete host NAME)`,
  );
}

/** Sets the cordon of the named hosts; returns the names that exist. */
export async function setCordoned(db: Db, names: string[], cordoned: boolean): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    'UPDATE sessionctl.hosts SET cordoned = $2 WHERE name = ANY($1::text[]) RETURNING name',
    [names, cordoned],
  );
  return result.rows.map((row) => row.name).sort();
}

/**
 * Deletes hosts; their sessions become unplaced (015's ON DELETE SET NULL) and their leases go
 * (016's ON DELETE CASCADE). Returns each deleted host with how many sessions it unplaced.
 */
export async function deleteHosts(db: Db, names: string[]): Promise<Array<{ name: string; unplaced: number }>> {
  const result = await db.query<{ name: string; unplaced: string }>(
    `WITH counts AS (
       SELECT placed_host AS name, count(*) AS unplaced FROM sessionctl.sessions
        WHERE placed_host = ANY($1::text[]) GROUP BY placed_host
     ), deleted AS (
       DELETE FROM sessionctl.hosts WHERE name = ANY($1::text[]) RETURNING name
     )
     SELECT d.name, coalesce(c.unplaced, 0) AS unplaced FROM deleted d LEFT JOIN counts c USING (name) ORDER BY d.name`,
    [names],
  );
  return result.rows.map((row) => ({ name: row.name, unplaced: Number(row.unplaced) }));
}

export interface DefaultHost {
  name: string;
  endpoint: string;
  certDir: string;
  advertiseAddress?: string;
}

export type RegistrationOutcome =
  | { outcome: 'registered'; name: string }
  | { outcome: 'present'; name: string }
  | { outcome: 'conflict'; name: string; endpoint: string };

/**
 * Backward compatibility: a controller started with only DOCKER_HOST registers that daemon as a
 * host of unlimited capacity. Idempotent and safe against concurrent starters: a host already
 * registered for the endpoint (under any name, say from a manifest) is kept as it is; a name taken
 * by another endpoint is reported as a conflict rather than overwritten.
 */
export async function registerDefaultHost(db: Db, host: DefaultHost): Promise<RegistrationOutcome> {
  const inserted = await db.query<{ name: string }>(
    `INSERT INTO sessionctl.hosts (name, endpoint, cert_dir, advertise_address, source)
     VALUES ($1, $2, $3, $4, 'DOCKER_HOST') ON CONFLICT DO NOTHING RETURNING name`,
    [host.name, host.endpoint, host.certDir, host.advertiseAddress ?? null],
  );
  if (inserted.rowCount === 1) return { outcome: 'registered', name: host.name };
  const existing = await db.query<{ name: string; endpoint: string }>(
    'SELECT name, endpoint FROM sessionctl.hosts WHERE endpoint = $2 OR name = $1 ORDER BY endpoint = $2 DESC LIMIT 1',
    [host.name, host.endpoint],
  );
  const row = existing.rows[0];
  if (row && row.endpoint === host.endpoint) return { outcome: 'present', name: row.name };
  return { outcome: 'conflict', name: host.name, endpoint: row?.endpoint ?? '' };
}
