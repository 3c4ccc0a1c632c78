/**
 * Where the Docker host is and how to reach it: DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH,
 * read as the docker CLI reads them, except that plain TCP is refused and a unix socket is allowed for
 * local development only. Only the controller (and tooling that talks to Docker) needs it.
 */
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './config-error';
import { parseEnv, truthy } from './env-schema';

export interface DockerHostConfig {
  /** Short name used in metrics and status (`status.host`). */
  name: string;
  /** As given in DOCKER_HOST, for messages. */
  url: string;
  host: string;
  port: number;
  /** Absent only for a unix socket allowed for local development. */
  tls?: { caPath: string; certPath: string; keyPath: string };
  socketPath?: string;
  /** The lowest TLS version the client accepts (SESSIONCTL_DOCKER_TLS_MIN_VERSION). */
  tlsMinVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export function parseDockerHost(env: {
  DOCKER_HOST?: string;
  DOCKER_TLS_VERIFY?: string;
  DOCKER_CERT_PATH?: string;
  name: string;
  allowUnixSocket: boolean;
  home: string;
}): DockerHostConfig {
  const url = env.DOCKER_HOST;
  if (!url) {
    throw new ConfigError(
      'DOCKER_HOST is not set. Point it at a Docker daemon that requires mutual TLS, for example ' +
        'DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/path/to/certs, ' +
        'or run `npm run env:up` and `source .sessionctl/env` for a local one.',
    );
  }
  if (url.startsWith('unix://')) {
    if (!env.allowUnixSocket) {
      throw new ConfigError(
        `DOCKER_HOST=${url} is a unix socket. sessionctl talks to Docker only over mutual TLS; ` +
          'a socket is allowed for local development only, with SESSIONCTL_DEV_ALLOW_UNIX_SOCKET=1.',
      );
    }
    return { name: env.name, url, host: 'localhost', port: 0, socketPath: url.slice('unix://'.length) };
  }
  const match = /^(tcp|https):\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(url);
  if (!match) {
    throw new ConfigError(
      `DOCKER_HOST=${url} is not understood: expected tcp://HOST:PORT, for example tcp://127.0.0.1:2376.`,
    );
  }
  if (!truthy(env.DOCKER_TLS_VERIFY)) {
    throw new ConfigError(
      `DOCKER_HOST=${url} without DOCKER_TLS_VERIFY=1 would be plain TCP, which gives anyone on the network root on the host. ` +
        'Refusing. Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to a folder holding ca.pem, cert.pem and key.pem.',
    );
  }
  const certDir = env.DOCKER_CERT_PATH || path.join(env.home, '.docker');
  return {
    name: env.name,
    url,
    host: match[2].replace(/^\[|\]$/g, ''),
    port: Number(match[3]),
    tls: {
      caPath: path.join(certDir, 'ca.pem'),
      certPath: path.join(certDir, 'cert.pem'),
      keyPath: path.join(certDir, 'key.pem'),
    },
  };
}

/** The Docker host, from the same variables the docker CLI reads. Only the controller needs it. */
export function loadDockerHostConfig(env: NodeJS.ProcessEnv = process.env): DockerHostConfig {
  const values = parseEnv(env);
  const host = parseDockerHost({
    DOCKER_HOST: values.DOCKER_HOST,
    DOCKER_TLS_VERIFY: values.DOCKER_TLS_VERIFY,
    DOCKER_CERT_PATH: values.DOCKER_CERT_PATH,
    name: values.SESSIONCTL_DOCKER_HOST_NAME,
    allowUnixSocket: truthy(values.SESSIONCTL_DEV_ALLOW_UNIX_SOCKET),
    home: os.homedir(),
  });
  return { ...host, tlsMinVersion: values.SESSIONCTL_DOCKER_TLS_MIN_VERSION };
}
