/** Writing and reading session rows with plain SQL, as other services do. */
import type { Pool } from 'pg';
import type { SessionSpecInput } from '../../crds/session';
import type { SessionStatus } from '../../crds/status';
import { waitFor } from './wait';

export const httpSpec = (extra: Partial<SessionSpecInput> = {}): SessionSpecInput => ({
  image: 'sessionctl/base:dev',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  env: { MODE: 'test' },
  ports: [{ name: 'http', containerPort: 8080 }],
  resources: { memory: '32Mi', cpus: '0.2' },
  ...extra,
});

export async function upsert(pool: Pool, name: string, spec: unknown): Promise<void> {
  await pool.query(
    'INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec',
    [name, JSON.stringify(spec)],
  );
}

export interface RowView {
  name: string;
  generation: number;
  status: Partial<SessionStatus>;
  finalizers: string[];
}

export async function row(pool: Pool, name: string): Promise<RowView | undefined> {
  const result = await pool.query(
    'SELECT name, generation, status, finalizers FROM sessionctl.sessions WHERE name = $1',
    [name],
  );
  const found = result.rows[0];
  return (
    found && {
      name: found.name,
      generation: Number(found.generation),
      status: found.status,
      finalizers: found.finalizers,
    }
  );
}

export function condition(view: RowView | undefined, type: string) {
  return view?.status.conditions?.find((entry) => entry.type === type);
}

/** Observed at the current generation and Ready as expected. */
export async function waitConverged(
  pool: Pool,
  name: string,
  ready: 'True' | 'False' = 'True',
  timeoutMs = 60_000,
): Promise<RowView> {
  return waitFor(
    async () => {
      const view = await row(pool, name);
      return view && view.status.observedGeneration === view.generation && condition(view, 'Ready')?.status === ready
        ? view
        : undefined;
    },
    { timeoutMs, what: `session ${name} to be observed with Ready=${ready}` },
  );
}

export async function waitAllReady(pool: Pool, names: string[], timeoutMs = 90_000): Promise<void> {
  await waitFor(
    async () => {
      const result = await pool.query(
        `SELECT count(*)::int AS ready FROM sessionctl.sessions
          WHERE name = ANY($1) AND (status->>'observedGeneration')::bigint = generation
            AND EXISTS (SELECT 1 FROM jsonb_array_elements(status->'conditions') c WHERE c->>'type' = 'Ready' AND c->>'status' = 'True')`,
        [names],
      );
      return result.rows[0].ready === names.length;
    },
    { timeoutMs, what: `${names.length} sessions to be Ready` },
  );
}

/**
 * Waits until the session's events include every reason. Events that follow a condition change
 * (FailedScheduling, Scheduled, Pulling, Pulled, ...) are written just after the status that
 * caused them, so a test that has just seen the status must wait for them rather than read once.
 */
export async function waitForEventReasons(
  pool: Pool,
  name: string,
  reasons: string[],
  timeoutMs = 10_000,
): Promise<string[]> {
  return waitFor(
    async () => {
      const result = await pool.query<{ reason: string }>(
        'SELECT reason FROM sessionctl.events WHERE session_name = $1',
        [name],
      );
      const seen = result.rows.map((event) => event.reason);
      return reasons.every((reason) => seen.includes(reason)) ? seen : undefined;
    },
    { timeoutMs, what: `events ${reasons.join(', ')} for session ${name}` },
  );
}
