/**
 * The benchmark's session, written as the controller would write it (a row, a Ready status whose
 * endpoint is the upstream, and a token), in a database of its own: the gateway cannot tell the
 * difference, and no container is needed to measure the proxy itself.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { tokenSha256 } from '../../../src/store/tokens';

export type Endpoints = Record<string, string>;

function status(ready: boolean, endpoints: Endpoints | undefined) {
  const now = new Date().toISOString();
  return {
    observedGeneration: 1,
    phase: ready ? 'Running' : 'Stopped',
    restartCount: 0,
    conditions: [
      {
        type: 'Ready',
        status: ready ? 'True' : 'False',
        reason: ready ? 'SessionReady' : 'Benchmark',
        message: 'written by the benchmark',
        lastTransitionTime: now,
        observedGeneration: 1,
      },
    ],
    ...(endpoints ? { endpoints } : {}),
  };
}

/** Creates the session with a token, one port per endpoint (the first is the default); returns the token. */
export async function createBenchSession(pool: Pool, name: string, endpoints: Endpoints): Promise<string> {
  const spec = {
    image: 'sessionctl/base:dev',
    ports: Object.keys(endpoints).map((port, index) => ({ name: port, containerPort: 8080 + index })),
    auth: { tokenTtlSeconds: 86_400 },
  };
  const inserted = await pool.query<{ uid: string }>(
    'INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2) RETURNING uid',
    [name, JSON.stringify(spec)],
  );
  const token = randomBytes(32).toString('base64url');
  await pool.query(
    `INSERT INTO sessionctl.session_tokens (session_name, session_uid, token_id, token, token_sha256, expires_at)
     VALUES ($1, $2, gen_random_uuid(), $3, $4, now() + interval '1 day')`,
    [name, inserted.rows[0].uid, token, tokenSha256(token)],
  );
  await setReady(pool, name, true, endpoints);
  return token;
}

export async function setReady(pool: Pool, name: string, ready: boolean, endpoints?: Endpoints): Promise<void> {
  await pool.query('UPDATE sessionctl.sessions SET status = $2 WHERE name = $1', [
    name,
    JSON.stringify(status(ready, endpoints)),
  ]);
}
