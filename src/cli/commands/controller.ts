/**
 * `sessionctl controller` (the reconciling controller in the foreground) and `sessionctl migrate`.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config';
import { loadDockerHostConfig } from '../../config/docker-host';
import { loadFleetConfig } from '../../config/fleet';
import { createPool } from '../../store/db';
import { readInstallationId } from '../../store/installation';
import { migrate } from '../../store/migrate';
import { databaseUrl } from '../database';

async function runController(version: string): Promise<void> {
  // Loaded here, not at the top: every other command starts faster without Docker, metrics and logging.
  const [{ createLogger, maskUrl }, { createMetrics }, { SessionControllerManager }] = await Promise.all([
    import('../../log/index.js'),
    import('../../metrics/registry.js'),
    import('../../../controllers/session/manager.js'),
  ]);
  const config = loadConfig();
  const dockerHost = loadDockerHostConfig();
  const fleet = loadFleetConfig();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const url = await databaseUrl(config);
  logger.info({ database: maskUrl(url), dockerHost: dockerHost.url, version }, 'starting controller');
  const pool = createPool(url, { applicationName: 'sessionctl-controller', max: config.workers + 4 });
  await migrate(pool, { roles: config.roles });
  const installation = await readInstallationId(pool);
  // The fleet (docs/fleet.md): with only DOCKER_HOST, that daemon is the one registered host.
  const { registerConfiguredHost } = await import('../../fleet/default-host.js');
  await registerConfiguredHost(pool, config, dockerHost, logger);
  const manager = new SessionControllerManager({
    config,
    fleet,
    dockerHost,
    pool,
    connectionString: url,
    logger,
    metrics: createMetrics(),
    version,
    installation,
  });
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

export function registerController(program: Command, version: string): void {
  program
    .command('controller')
    .description('Run the reconciling controller in the foreground (SIGTERM stops it; containers keep running)')
    .addHelpText('after', '\nExample:\n  . .sessionctl/env && sessionctl controller')
    .action(() => runController(version));

  program
    .command('migrate')
    .description('Apply pending database migrations and exit')
    .addHelpText('after', '\nExample:\n  DATABASE_URL=postgres://user:pass@127.0.0.1/sessionctl sessionctl migrate')
    .action(async () => {
      const config = loadConfig();
      const pool = createPool(await databaseUrl(config), { applicationName: 'sessionctl-migrate', max: 1 });
      try {
        const applied = await migrate(pool, { roles: config.roles });
        console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await pool.end();
      }
    });
}
