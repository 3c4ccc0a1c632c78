/**
 * The `sessionctl` command. Exit codes: 0 ok, 1 failure, 2 usage.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, loadDockerHostConfig } from '../config';
import { createLogger, maskUrl } from '../log';
import { createMetrics } from '../metrics/registry';
import { packageRoot } from '../store/migrate';
import { migrate } from '../store/migrate';
import { createPool } from '../store/db';
import { upsertSessions } from '../store/sessions';
import { SessionControllerManager } from '../../controllers/session/manager';
import { databaseUrl, openDatabase } from './database';
import { ManifestError, readManifests } from './manifests';

const version = (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

async function runController(): Promise<void> {
  const config = loadConfig();
  const dockerHost = loadDockerHostConfig();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const url = await databaseUrl(config);
  logger.info({ database: maskUrl(url), dockerHost: dockerHost.url, version }, 'starting controller');
  const pool = createPool(url, { applicationName: 'sessionctl-controller', max: config.workers + 4 });
  await migrate(pool);
  const manager = new SessionControllerManager({ config, dockerHost, pool, connectionString: url, logger, metrics: createMetrics() });
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'shutting down');
    void manager
      .stop()
      .then(() => pool.end())
      .then(() => logger.flush())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await manager.start();
}

export function buildProgram(): Command {
  const program = new Command('sessionctl')
    .description('Run per-user session containers on Docker hosts from rows in PostgreSQL')
    .version(version)
    .showSuggestionAfterError(true)
    .exitOverride();

  program
    .command('controller')
    .description('Run the reconciling controller in the foreground (SIGTERM stops it; containers keep running)')
    .addHelpText('after', '\nExample:\n  source .sessionctl/env && sessionctl controller')
    .action(runController);

  program
    .command('migrate')
    .description('Apply pending database migrations and exit')
    .addHelpText('after', '\nExample:\n  DATABASE_URL=postgres://user:pass@127.0.0.1/sessionctl sessionctl migrate')
    .action(async () => {
      const config = loadConfig();
      const pool = createPool(await databaseUrl(config), { applicationName: 'sessionctl-migrate', max: 1 });
      try {
        const applied = await migrate(pool);
        console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await pool.end();
      }
    });

  program
    .command('apply')
    .description('Create or update sessions from YAML or JSON manifests, all in one transaction')
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin')
    .option('-R, --recursive', 'read directories recursively', false)
    .addHelpText('after', '\nExample:\n  sessionctl apply -f crds/examples/')
    .action(async (options: { filename: string[]; recursive: boolean }) => {
      const manifests = readManifests(options.filename, { recursive: options.recursive });
      const { pool } = await openDatabase(loadConfig(), 'sessionctl-apply');
      try {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const results = await upsertSessions(
            client,
            manifests.map((manifest) => ({ name: manifest.document.metadata.name, labels: manifest.document.metadata.labels, spec: manifest.rawSpec })),
          );
          await client.query('COMMIT');
          for (const result of results) console.log(`session/${result.name} ${result.outcome}`);
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      } finally {
        await pool.end();
      }
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof ConfigError || error instanceof ManifestError) {
      console.error(`error: ${error.message}`);
      return 1;
    }
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
}

/** Entry point of bin/sessionctl.js. */
export function run(): void {
  main(process.argv).then(
    (code) => {
      // The controller keeps running after its action returns; every other command exits.
      if (process.argv[2] !== 'controller' || code !== 0) process.exit(code);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
