/**
 * Fencing: a write on behalf of a host's leaseholder happens only while (host, holder, epoch) is
 * still the live lease. A replica that was paused (SIGSTOP, a long GC, a frozen VM) and wakes after
 * another took the host over changes nothing, whatever it believes.
 *
 * The condition locks the lease row FOR SHARE. A takeover is an UPDATE of that row, so it waits
 * for every fenced write in flight to commit, and every fenced write that starts after the takeover
 * sees the new epoch: each fenced write commits entirely before a takeover or not at all.
 */
import type { Pool } from 'pg';
import type { SessionStatus } from '../../crds/status';
import { withTransaction, type Db } from './db';
import type { HostState } from './hosts';
import type { Lease } from './leases';
import { UNPLACE_SET } from './placement';

export type Fence = Pick<Lease, 'host' | 'holder' | 'epoch'>;

/**
 * An SQL condition (and its values, numbered from `firstParameter`) that is true only while the
 * fence is the live lease, for the WHERE clause of any UPDATE, INSERT ... SELECT or DELETE.
 */
export function fenceCondition(fence: Fence, firstParameter: number): { sql: string; values: unknown[] } {
  const [host, holder, epoch] = [firstParameter, firstParameter + 1, firstParameter + 2];
  return {
    sql: `EXISTS (SELECT 1 FROM sessionctl.host_leases fence
                   WHERE fence.host = $${host} AND fence.holder = $${holder} AND fence.epoch = $${epoch}
                     AND fence.expires_at > now() FOR SHARE)`,
    values: [fence.host, fence.holder, fence.epoch],
  };
}

/** Raised inside withFence when the lease is no longer ours: the transaction is rolled back. */
export class FencedOut extends Error {
  override readonly name = 'FencedOut';
  constructor(readonly fence: Fence) {
    super(`the lease on host ${fence.host} at epoch ${fence.epoch} is no longer held by ${fence.holder}`);
  }
}

/**
 * Several writes as one fenced unit (a status and its events): the lease row is share-locked first,
 * then `work` runs in the same transaction. Throws FencedOut, writing nothing, when the lease moved.
 */
export async function withFence<T>(pool: Pool, fence: Fence, work: (tx: Db) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (tx) => {
    const condition = fenceCondition(fence, 1);
    const held = await tx.query<{ held: boolean }>(`SELECT ${condition.sql} AS held`, condition.values);
    if (!held.rows[0].held) throw new FencedOut(fence);
    return work(tx);
  });
}

/**
 * writeStatus (./sessions.ts) for a fleet: only at the generation acted on, only on the session's
 * placed host, and only while the writer still holds that host's lease. False when any of these
 * moved on: the caller drops the result and, if the lease is gone, stops working on the host.
 */
export async function writeStatusFenced(
  db: Db,
  fence: Fence,
  write: { name: string; generation: number; status: SessionStatus },
): Promise<boolean> {
  const condition = fenceCondition(fence, 4);
  const result = await db.query(
    `UPDATE sessionctl.sessions SET status = $3, host = $4
      WHERE name = $1 AND generation = $2 AND placed_host = $4 AND ${condition.sql}`,
    [write.name, write.generation, JSON.stringify(write.status), ...condition.values],
  );
  return result.rowCount === 1;
}

/**
 * A session leaves the fenced host (eviction by a drain, or the host lost): only if it is still
 * placed there, and only while the caller holds the lease. Clears the observed host too
 * (UNPLACE_SET), so the placer never takes it for one the session still runs on.
 */
export async function unplaceSessionFenced(
  db: Db,
  fence: Fence,
  session: { name: string; uid: string },
): Promise<boolean> {
  const condition = fenceCondition(fence, 3);
  const result = await db.query(
    `UPDATE sessionctl.sessions SET ${UNPLACE_SET}
      WHERE name = $1 AND uid = $2 AND placed_host = $3 AND ${condition.sql}`,
    [session.name, session.uid, ...condition.values],
  );
  return result.rowCount === 1;
}

/** The host's observed state (Ready, Unreachable, Lost), written by its leaseholder only. */
export async function writeHostStateFenced(
  db: Db,
  fence: Fence,
  state: HostState,
  message: string | null,
): Promise<boolean> {
  const condition = fenceCondition(fence, 3);
  const result = await db.query(
    `UPDATE sessionctl.hosts SET state = $1, state_message = $2
      WHERE name = $3 AND (state IS DISTINCT FROM $1 OR state_message IS DISTINCT FROM $2) AND ${condition.sql}`,
    [state, message, ...condition.values],
  );
  return result.rowCount === 1;
}
