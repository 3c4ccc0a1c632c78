/**
 * Per-session access tokens (migration 005): minted by the controller, stored in plaintext only in
 * sessionctl.session_tokens (readable by the writer role, never in spec, status or events), with a
 * SHA-256 for checks. A deleted row is a rotation request.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './db';
import type { SessionTokenInfo } from './sessions';

export interface Token extends SessionTokenInfo {
  token: string;
  sha256: string;
}

export function tokenSha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function readToken(db: Db, session: string): Promise<Token | undefined> {
  const result = await db.query<{
    session_uid: string;
    token_id: string;
    expires_at: Date;
    token: string;
    token_sha256: string;
  }>(
    'SELECT session_uid, token_id, expires_at, token, token_sha256 FROM sessionctl.session_tokens WHERE session_name = $1',
    [session],
  );
  const row = result.rows[0];
  return (
    row && {
      sessionUid: row.session_uid,
      tokenId: row.token_id,
      expiresAt: row.expires_at,
      token: row.token,
      sha256: row.token_sha256,
    }
  );
}

/**
 * Mints a fresh 32-byte token for the session, replacing any older one in the same statement, so the
 * old token's hash is gone the moment the new one exists. Guarded by uid: a row re-created under the
 * same name meanwhile gets nothing.
 */
export async function mintToken(
  db: Db,
  session: string,
  uid: string,
  ttlSeconds: number,
): Promise<SessionTokenInfo | undefined> {
  const token = randomBytes(32).toString('base64url');
  const result = await db.query<{ token_id: string; expires_at: Date }>(
    `INSERT INTO sessionctl.session_tokens (session_name, session_uid, token_id, token, token_sha256, expires_at)
     SELECT name, uid, $3, $4, $5, now() + make_interval(secs => $6) FROM sessionctl.sessions WHERE name = $1 AND uid = $2
     ON CONFLICT (session_name) DO UPDATE SET session_uid = EXCLUDED.session_uid, token_id = EXCLUDED.token_id, token = EXCLUDED.token,
       token_sha256 = EXCLUDED.token_sha256, created_at = now(), expires_at = EXCLUDED.expires_at
     RETURNING token_id, expires_at`,
    [session, uid, randomUUID(), token, tokenSha256(token), ttlSeconds],
  );
  const row = result.rows[0];
  return row && { sessionUid: uid, tokenId: row.token_id, expiresAt: row.expires_at };
}

/** `sessionctl rotate-token`: the controller mints a new token and recreates the container. */
export async function requestTokenRotation(db: Db, session: string): Promise<boolean> {
  const result = await db.query('DELETE FROM sessionctl.session_tokens WHERE session_name = $1', [session]);
  return result.rowCount === 1;
}

export async function deleteToken(db: Db, session: string): Promise<void> {
  await db.query('DELETE FROM sessionctl.session_tokens WHERE session_name = $1', [session]);
}
