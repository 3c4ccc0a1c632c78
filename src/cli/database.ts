/**
 * How CLI commands reach the database: DATABASE_URL when given, else the embedded default.
 * Migrations run before any command touches the tables.
 */
import { childEnvironment, type Config } from '../config';
import { ensureEmbeddedPostgres } from '../store/embedded';

export async function databaseUrl(
  config: Pick<Config, 'databaseUrl' | 'stateDir' | 'embeddedPostgresPort'>,
): Promise<string> {
  return (
    config.databaseUrl ??
    ensureEmbeddedPostgres({
      stateDir: config.stateDir,
      port: config.embeddedPostgresPort,
      environment: childEnvironment({}),
    })
  );
}
