/**
 * What CLI commands share: the parsed config, a session client on the chosen database, and the
 * errors every command reports the same way.
 */
import { loadConfig, type Config } from '../config';
import { createSessionClient, type SessionClient } from '../client';
import { createPool } from '../store/db';
import { databaseUrl } from './database';
import type { Pool } from 'pg';

/** A failure the user caused or can fix; the message says what and how. Exit code 1. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface CommandContext {
  config: Config;
  url: string;
  pool: Pool;
  client: SessionClient;
}

export async function withClient<T>(work: (context: CommandContext) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const url = await databaseUrl(config);
  const pool = createPool(url, { applicationName: 'sessionctl-cli', max: 4 });
  const client = createSessionClient({ pool, connectionString: url });
  try {
    return await work({ config, url, pool, client });
  } finally {
    await pool.end();
  }
}

/** `session/alice`, `sessions/alice` or `alice` -> `alice`. */
export function sessionName(reference: string): string {
  const match = /^(?:(sessions?|sess)\/)?([^/]+)$/.exec(reference);
  if (!match) throw new CommandError(`"${reference}" is not a session reference: expected NAME or session/NAME`, 2);
  return match[2];
}
