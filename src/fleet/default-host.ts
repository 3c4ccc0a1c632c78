/**
 * The one-host installation as a fleet of one: a controller started with only DOCKER_HOST registers
 * that daemon as a host (unlimited capacity) so that hosts, placement and `sessionctl get hosts`
 * work unchanged. Idempotent; a host already registered for the endpoint, under any name, is kept.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { advertiseAddressFor, type Config } from '../config';
import type { DockerHostConfig } from '../config/docker-host';
import type { Db } from '../store/db';
import { registerDefaultHost, type RegistrationOutcome } from '../store/hosts';

export async function registerConfiguredHost(
  db: Db,
  config: Pick<Config, 'advertiseAddress' | 'publishAddress'>,
  dockerHost: DockerHostConfig,
  logger: Pick<Logger, 'info' | 'warn'>,
): Promise<RegistrationOutcome | undefined> {
  // A unix socket (local development only) is no fleet endpoint: nothing to register.
  if (!dockerHost.tls) return undefined;
  const host = dockerHost.host.includes(':') ? `[${dockerHost.host}]` : dockerHost.host;
  let outcome: RegistrationOutcome;
  try {
    outcome = await registerDefaultHost(db, {
      name: dockerHost.name,
      endpoint: `tcp://${host}:${dockerHost.port}`,
      certDir: path.resolve(path.dirname(dockerHost.tls.caPath)),
      advertiseAddress: advertiseAddressFor(config, dockerHost),
    });
  } catch (error) {
    // A login role without migration 014's grants still runs the one host it was started for.
    if ((error as { code?: string }).code !== '42501') throw error;
    logger.warn({ err: error }, 'may not register the Docker host: grant the controller role (migration 014)');
    return undefined;
  }
  if (outcome.outcome === 'conflict')
    logger.warn(
      { host: outcome.name, endpoint: outcome.endpoint, dockerHost: dockerHost.url },
      'a host of this name is registered for another endpoint; DOCKER_HOST was not registered (set SESSIONCTL_DOCKER_HOST_NAME)',
    );
  else logger.info({ host: outcome.name, outcome: outcome.outcome }, 'Docker host registered');
  return outcome;
}
