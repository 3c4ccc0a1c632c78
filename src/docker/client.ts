/**
 * The Docker client factory. Mutual TLS only: the config layer has already refused plain TCP,
 * and a unix socket reaches here only behind the explicit development flag.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { inspect } from 'node:util';
import Dockerode from 'dockerode';
import { ConfigError } from '../config/config-error';
import type { DockerHostConfig } from '../config/docker-host';

function readPem(filePath: string, what: string): Buffer {
  try {
    return readFileSync(filePath);
  } catch (error) {
    throw new ConfigError(
      `cannot read the ${what} at ${filePath} (${(error as NodeJS.ErrnoException).code}): check DOCKER_CERT_PATH`,
    );
  }
}

export interface DockerClientOptions {
  /**
   * Abort a request whose socket stays idle this long. Long-lived streams (events, followed logs) need
   * none: the event stream is silent whenever nothing changes, and an idle timeout would cut it.
   */
  idleTimeoutMs?: number;
}

export function createDockerClient(
  host: DockerHostConfig,
  options: DockerClientOptions = { idleTimeoutMs: 60_000 },
): Dockerode {
  // Not docker-modem's connectionTimeout: despite its name it bounds the whole response, and a
  // `stop` with a 10 s grace period or a removal under load legitimately takes longer.
  const timeouts = options.idleTimeoutMs ? { timeout: options.idleTimeoutMs } : {};
  if (host.socketPath) return new Dockerode({ socketPath: host.socketPath, ...timeouts });
  if (!host.tls)
    throw new ConfigError(`Docker host ${host.url} has no TLS material; refusing an unauthenticated connection`);
  // docker-modem passes `agent` to every request; @types/dockerode does not list it.
  const settings: Dockerode.DockerOptions & { agent: https.Agent } = {
    protocol: 'https',
    host: host.host,
    port: host.port,
    ca: readPem(host.tls.caPath, 'CA certificate'),
    cert: readPem(host.tls.certPath, 'client certificate'),
    key: readPem(host.tls.keyPath, 'client key'),
    agent: keepAliveAgent(host.tlsMinVersion ?? 'TLSv1.2'),
    ...timeouts,
  };
  return new Dockerode(settings);
}

/**
 * The connection pool, with an explicit TLS floor rather than whatever the Node release defaults to
 * (the daemon may offer 1.3). docker-modem 5 formats every request's options, this agent included,
 * with util.inspect({ showHidden: true, depth: null }) before its debug logger decides whether to print
 * them; walking the pooled TLS sockets cost 10-100 ms of CPU per call, half a core while creating
 * 200 sessions. The agent therefore describes itself in one line.
 */
function keepAliveAgent(minVersion: NonNullable<DockerHostConfig['tlsMinVersion']>): https.Agent {
  const agent = new https.Agent({ keepAlive: true, minVersion });
  Object.defineProperty(agent, inspect.custom, {
    value: () => `https.Agent { keepAlive: true, minVersion: '${minVersion}' }`,
  });
  return agent;
}

/** When the client certificate expires (ms since the epoch), for the expiry metric and alert. */
export function clientCertificateExpiry(host: DockerHostConfig): number | undefined {
  if (!host.tls) return undefined;
  return Date.parse(new X509Certificate(readPem(host.tls.certPath, 'client certificate')).validTo);
}
