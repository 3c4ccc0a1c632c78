/**
 * `sessionctl gateway`: the authenticating reverse proxy to session containers, in the foreground.
 * SIGTERM stops taking connections, flushes pending activity and exits 0.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config';
import { loadGatewayConfig } from '../../config/gateway';
import { createPool } from '../../store/db';
import { migrate } from '../../store/migrate';
import { databaseUrl } from '../database';

async function runGateway(version: string): Promise<void> {
  const [{ createLogger, maskUrl }, { createGatewayMetrics }, { Gateway }, { MetricsServer }] = await Promise.all([
    import('../../log/index.js'),
    import('../../gateway/metrics.js'),
    import('../../gateway/gateway.js'),
    import('../../metrics/server.js'),
  ]);
  const config = loadConfig();
  const gatewayConfig = loadGatewayConfig();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, name: 'sessionctl-gateway' });
  const url = await databaseUrl(config);
  const pool = createPool(url, { applicationName: 'sessionctl-gateway', max: 4 });
  // Only reads schema_migrations when nothing is pending, so a gateway with the writer role starts fine.
  await migrate(pool);
  const metrics = createGatewayMetrics();
  const gateway = new Gateway({ config: gatewayConfig, pool, connectionString: url, logger, metrics });
  const metricsServer = new MetricsServer({
    host: gatewayConfig.metricsHost,
    port: gatewayConfig.metricsPort,
    registry: metrics.registry,
    ready: () => gateway.ready(),
  });
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'shutting down');
    void Promise.all([gateway.stop(), metricsServer.stop()])
      .then(() => pool.end())
      .then(() => logger.flush())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  const [address, metricsAddress] = await Promise.all([gateway.start(), metricsServer.start()]);
  logger.info(
    {
      database: maskUrl(url),
      address: `${address.address}:${address.port}`,
      tls: gatewayConfig.tls !== undefined,
      metrics: `${metricsAddress.address}:${metricsAddress.port}`,
      domain: gatewayConfig.domain,
      version,
    },
    'gateway listening',
  );
}

export function registerGateway(program: Command, version: string): void {
  program
    .command('gateway')
    .description(
      'Run the session gateway in the foreground: /s/<session>/... to the session, token-checked, recording activity and waking idle sessions',
    )
    .addHelpText(
      'after',
      '\nExample:\n  DATABASE_URL=postgres://gateway@db/sessionctl SESSIONCTL_GATEWAY_ADDR=0.0.0.0:8000 sessionctl gateway',
    )
    .action(() => runGateway(version));
}
