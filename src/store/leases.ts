/**
 * Host leases (migration 016): which controller replica reconciles a host. A lease is a row, its
 * times come from the database's clock only, and its epoch grows at every takeover, so that every
 * write the holder makes for the host can be fenced by (host, holder, epoch): see ./fencing.ts.
 *
 * Timing (DESIGN.md section 8): a 15 s lease renewed every 5 s. A holder must stop calling the
 * host's Docker API once it cannot be sure it still holds the lease: it takes the local monotonic
 * time just before sending a request, adds the `validForMs` the database answers, and treats that
 * as its deadline (the lease really started after the request was sent, so the deadline is early,
 * never late; no clock of any replica is compared with the database's).
 */
import type { Db } from './db';

export const LEASE_DURATION_MS = 15_000;
export const LEASE_RENEW_INTERVAL_MS = 5_000;

export interface Lease {
  host: string;
  holder: string;
  epoch: number;
  /** The database's time. For display and metrics; deadlines use validForMs. */
  expiresAt: Date;
  /** How long the lease is valid from the moment the database answered. */
  validForMs: number;
}

export type AcquireResult =
  | { acquired: true; lease: Lease; takeover: boolean }
  | { acquired: false; holder: string | null; epoch: number; validForMs: number };

interface RawLease {
  host: string;
  holder: string | null;
  epoch: string;
  expires_at: Date;
  valid_for_ms: string;
}

const VALID_FOR = `greatest(0, floor(extract(epoch FROM expires_at - now()) * 1000)) AS valid_for_ms`;

function toLease(raw: RawLease): Lease {
  return {
    host: raw.host,
    holder: raw.holder!,
    epoch: Number(raw.epoch),
    expiresAt: raw.expires_at,
    validForMs: Number(raw.valid_for_ms),
  };
}

/**
 * Takes the host's lease when it is free (never taken, released, or expired) or already ours and
 * live (then it is only renewed and keeps its epoch). Anything else is a takeover: epoch + 1. Two
 * replicas racing for a free lease serialise on the row: the second re-checks the row the first
 * wrote, finds it held, and gets `acquired: false`.
 */
export async function acquireLease(
  db: Db,
  host: string,
  holder: string,
  durationMs = LEASE_DURATION_MS,
): Promise<AcquireResult> {
  const result = await db.query<RawLease & { takeover: boolean }>(
    `INSERT INTO sessionctl.host_leases AS l (host, holder, epoch, acquired_at, renewed_at, expires_at)
     VALUES ($1, $2, 1, now(), now(), now() + $3 * interval '1 millisecond')
     ON CONFLICT (host) DO UPDATE SET
       holder = EXCLUDED.holder,
       epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
       acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
       renewed_at = now(),
       expires_at = EXCLUDED.expires_at
     WHERE l.holder IS NULL OR l.expires_at <= now() OR l.holder = EXCLUDED.holder
     RETURNING host, holder, epoch, expires_at, acquired_at = now() AS takeover, ${VALID_FOR}`,
    [host, holder, durationMs],
  );
  const row = result.rows[0];
  if (row) return { acquired: true, lease: toLease(row), takeover: row.takeover };
  const current = await db.query<RawLease>(
    `SELECT host, holder, epoch, expires_at, ${VALID_FOR} FROM sessionctl.host_leases WHERE host = $1`,
    [host],
  );
  const raw = current.rows[0];
  return {
    acquired: false,
    holder: raw?.holder ?? null,
    epoch: Number(raw?.epoch ?? 0),
    validForMs: Number(raw?.valid_for_ms ?? 0),
  };
}

/**
 * Extends a live lease of ours. Fails (undefined) once it expired or was taken over: the holder
 * must then stop working on the host and acquire again, which makes a new epoch.
 */
export async function renewLease(
  db: Db,
  lease: Pick<Lease, 'host' | 'holder' | 'epoch'>,
  durationMs = LEASE_DURATION_MS,
): Promise<Lease | undefined> {
  const result = await db.query<RawLease>(
    `UPDATE sessionctl.host_leases SET renewed_at = now(), expires_at = now() + $4 * interval '1 millisecond'
      WHERE host = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()
      RETURNING host, holder, epoch, expires_at, ${VALID_FOR}`,
    [lease.host, lease.holder, lease.epoch, durationMs],
  );
  return result.rows[0] ? toLease(result.rows[0]) : undefined;
}

/** Gives the lease up at once (clean shutdown, rebalancing): another replica may take it right away. */
export async function releaseLease(db: Db, lease: Pick<Lease, 'host' | 'holder' | 'epoch'>): Promise<boolean> {
  const result = await db.query(
    `UPDATE sessionctl.host_leases SET holder = NULL, expires_at = now()
      WHERE host = $1 AND holder = $2 AND epoch = $3`,
    [lease.host, lease.holder, lease.epoch],
  );
  return result.rowCount === 1;
}

/** Every lease a replica holds, released in one statement (its shutdown). Returns the hosts. */
export async function releaseAllLeases(db: Db, holder: string): Promise<string[]> {
  const result = await db.query<{ host: string }>(
    `UPDATE sessionctl.host_leases SET holder = NULL, expires_at = now()
      WHERE holder = $1 AND expires_at > now() RETURNING host`,
    [holder],
  );
  return result.rows.map((row) => row.host).sort();
}

/** Live leases, by host. */
export async function listLeases(db: Db): Promise<Lease[]> {
  const result = await db.query<RawLease>(
    `SELECT host, holder, epoch, expires_at, ${VALID_FOR} FROM sessionctl.host_leases
      WHERE holder IS NOT NULL AND expires_at > now() ORDER BY host`,
  );
  return result.rows.map(toLease);
}

/** A host as the lease keeper sees it: whether anyone holds it now, and whether someone did before. */
export interface HostLeaseState {
  host: string;
  holder: string | null;
  /** Held by `holder` now (not released, not expired). */
  live: boolean;
  /** Expired while still naming a holder: taking it is a takeover from a replica that stopped renewing. */
  abandoned: boolean;
}

/** Every host, with its lease if it has one: what a replica balances over, in one query. */
export async function hostLeaseStates(db: Db): Promise<HostLeaseState[]> {
  const result = await db.query<{ host: string; holder: string | null; live: boolean | null }>(
    `SELECT h.name AS host, l.holder, l.expires_at > now() AS live
       FROM sessionctl.hosts h LEFT JOIN sessionctl.host_leases l ON l.host = h.name ORDER BY h.name`,
  );
  return result.rows.map((row) => ({
    host: row.host,
    holder: row.holder,
    live: row.holder !== null && row.live === true,
    abandoned: row.holder !== null && row.live !== true,
  }));
}
