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
  await db.query('SELECT pg_notify($1, $2)', [
    SESSIONS_CHANNEL,
    JSON.stringify({ name, generation: 0, at: Date.now() }),
  ]);
  await waitFor(() => received.includes(name), {
    timeoutMs: 10_000,
    intervalMs: 5,
    what: `the notification barrier ${name}`,
  });
}

/** What wakeAndSettle needs of a running controller (test/helpers/controller.ts). */
interface MetricsReader {
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/**
 * Wakes `names` (one notification each, as a writer's change would send) and waits until the
 * controller has picked every one up and has nothing queued or running: whatever those reconciles
 * do has been done. Use it to show that a reconcile does nothing, instead of watching a quiet window.
 */
export async function wakeAndSettle(db: Pool, controller: MetricsReader, names: string[]): Promise<void> {
  const pickedUp = await controller.metric('sessionctl_notify_pickup_seconds_count');
  for (const name of names)
    await db.query('SELECT pg_notify($1, $2)', [
      SESSIONS_CHANNEL,
      JSON.stringify({ name, generation: 0, at: Date.now() / 1000 }),
    ]);
  await waitFor(
    async () => (await controller.metric('sessionctl_notify_pickup_seconds_count')) >= pickedUp + names.length,
    { what: `the controller to pick up ${names.join(', ')}` },
  );
  await waitFor(
    async () =>
      (await controller.metric('workqueue_depth')) === 0 &&
      (await controller.metric('controller_runtime_active_workers')) === 0,
    { what: 'the controller to go idle' },
  );
}
