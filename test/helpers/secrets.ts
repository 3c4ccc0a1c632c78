/**
 * The secrets test: everything an operator or another service can read (the controller's log,
 * every status, every event) searched for each secret, in clear and in the encodings it travels in.
 */
import type { Pool } from 'pg';

export function encodingsOf(secret: string): string[] {
  return [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')];
}

export async function readableRecords(pool: Pool, controllerOutput: string): Promise<string> {
  const statuses = await pool.query(`SELECT name, status::text AS status FROM sessionctl.sessions`);
  const events = await pool.query(`SELECT reason, message FROM sessionctl.events`);
  return [
    controllerOutput,
    ...statuses.rows.map((row) => row.status),
    ...events.rows.map((row) => `${row.reason} ${row.message}`),
  ].join('\n');
}

/** The secrets (or encodings of them) found in `text`; empty when none leaked. */
export function leakedSecrets(text: string, secrets: string[]): string[] {
  return secrets.filter((secret) =>
    encodingsOf(secret).some((encoded) => encoded.length >= 6 && text.includes(encoded)),
  );
}
