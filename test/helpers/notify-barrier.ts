/**
 * "No notification came" without sleeping: PostgreSQL delivers notifications in commit order, so
 * once a barrier sent after a write has arrived, any notification of that write has arrived too.
 */
import type { Pool, PoolClient, Client } from 'pg';
import { SESSIONS_CHANNEL } from '../../src/store/listener';
import { waitFor } from './wait';

let barriers = 0;

/** Sends a barrier notification on the sessions channel and waits until `received` (names, in order) holds it. */
export async function notifyBarrier(db: Pool | PoolClient | Client, received: string[]): Promise<void> {
  const name = `barrier-${process.pid}-${++barriers}`;
  await db.query('SELECT pg_notify($1, $2)', [SESSIONS_CHANNEL, JSON.stringify({ name, generation: 0, at: Date.now() })]);
  await waitFor(() => received.includes(name), { timeoutMs: 10_000, intervalMs: 5, what: `the notification barrier ${name}` });
}
