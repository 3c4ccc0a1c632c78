import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/config/config-error';
import { loadDockerHostConfig, parseDockerHost } from '../../src/config/docker-host';

const base = { name: 'default', allowUnixSocket: false, home: '/home/u' };

describe('Docker host config', () => {
  it('accepts tcp with TLS verification and reads certificates from DOCKER_CERT_PATH', () => {
    expect(
      parseDockerHost({
        ...base,
        DOCKER_HOST: 'tcp://127.0.0.1:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: '/certs',
      }),
    ).toEqual({
      name: 'default',
      url: 'tcp://127.0.0.1:2376',
      host: '127.0.0.1',
      port: 2376,
      tls: { caPath: '/certs/ca.pem', certPath: '/certs/cert.pem', keyPath: '/certs/key.pem' },
    });
  });

  it('defaults the certificate folder to ~/.docker like the docker CLI', () => {
    expect(parseDockerHost({ ...base, DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1' }).tls?.caPath).toBe(
      '/home/u/.docker/ca.pem',
    );
  });

  it.each(['', '0', 'false', undefined])('refuses plain TCP when DOCKER_TLS_VERIFY=%p', (verify) => {
    expect(() => parseDockerHost({ ...base, DOCKER_HOST: 'tcp://127.0.0.1:2375', DOCKER_TLS_VERIFY: verify })).toThrow(
      /would be plain TCP.*Refusing/,
    );
  });

  it('refuses a unix socket unless the development flag is set', () => {
    expect(() => parseDockerHost({ ...base, DOCKER_HOST: 'unix:///var/run/docker.sock' })).toThrow(ConfigError);
    expect(parseDockerHost({ ...base, allowUnixSocket: true, DOCKER_HOST: 'unix:///tmp/d.sock' }).socketPath).toBe(
      '/tmp/d.sock',
    );
  });

  it('explains a missing or malformed DOCKER_HOST', () => {
    expect(() => parseDockerHost({ ...base })).toThrow(/DOCKER_HOST is not set/);
    expect(() => parseDockerHost({ ...base, DOCKER_HOST: 'ssh://host', DOCKER_TLS_VERIFY: '1' })).toThrow(
      /expected tcp:\/\/HOST:PORT/,
    );
  });

  it('reads the same variables from an environment', () => {
    expect(
      loadDockerHostConfig({
        DOCKER_HOST: 'tcp://localhost:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: '/c',
        SESSIONCTL_DOCKER_HOST_NAME: 'edge-1',
      }).name,
    ).toBe('edge-1');
  });
});

describe('loadConfig', () => {
  it('fills defaults', () => {
    expect(loadConfig({}, '/srv')).toMatchObject({
      stateDir: '/srv/.sessionctl',
      metricsHost: '127.0.0.1',
      metricsPort: 9464,
      workers: 16,
      dockerConcurrency: 8,
      resyncIntervalMs: 300_000,
      logLevel: 'info',
    });
  });

  it('names each bad variable', () => {
    const load = () =>
      loadConfig({ SESSIONCTL_METRICS_ADDR: 'nope', SESSIONCTL_WORKERS: '-1', DATABASE_URL: 'mysql://x' });
    expect(load).toThrow(/SESSIONCTL_METRICS_ADDR: expected host:port/);
    expect(load).toThrow(/SESSIONCTL_WORKERS: Too small/);
    expect(load).toThrow(/DATABASE_URL: expected a postgres:\/\/ connection URL/);
  });

  it('reads the image and registry settings', () => {
    expect(
      loadConfig(
        {
          DOCKER_CONFIG: 'cfg',
          SESSIONCTL_PULL_CONCURRENCY: '3',
          SESSIONCTL_INSECURE_REGISTRIES: 'Registry.lan:5000, other.lan',
        },
        '/srv',
      ).images,
    ).toEqual({
      pullConcurrency: 3,
      tokenTtlMs: 3_600_000,
      updateBatchSize: 5,
      insecureRegistries: ['registry.lan:5000', 'other.lan'],
      dockerConfigDir: '/srv/cfg',
      allowedRegistries: [],
    });
    expect(
      loadConfig({ SESSIONCTL_ALLOWED_REGISTRIES: 'Docker.io, registry.lan:5000' }).images.allowedRegistries,
    ).toEqual(['docker.io', 'registry.lan:5000']);
    expect(() => loadConfig({ SESSIONCTL_ALLOWED_REGISTRIES: 'https://registry.lan/' })).toThrow(
      /SESSIONCTL_ALLOWED_REGISTRIES: expected comma-separated registry hosts/,
    );
    expect(() => loadConfig({ SESSIONCTL_INSECURE_REGISTRIES: 'https://registry.lan/' })).toThrow(
      /SESSIONCTL_INSECURE_REGISTRIES: expected comma-separated registry hosts/,
    );
    expect(() => loadConfig({ SESSIONCTL_IMAGE_UPDATE_BATCH_SIZE: '0' })).toThrow(/SESSIONCTL_IMAGE_UPDATE_BATCH_SIZE/);
  });

  it('reads the isolation settings and keeps each maximum at or above its default', () => {
    const config = loadConfig({
      SESSIONCTL_MAX_MEMORY: '8g',
      SESSIONCTL_MAX_ENV: '10',
      SESSIONCTL_NETWORK_MODE: 'Shared',
      SESSIONCTL_DEFAULT_EGRESS: 'None',
    });
    expect(config.ceilings).toEqual({
      maxMemoryBytes: 8 * 1024 ** 3,
      maxNanoCpus: 4e9,
      maxPids: 4096,
      maxEnvEntries: 10,
      maxSpecBytes: 65_536,
    });
    expect([config.networkMode, config.defaultEgress]).toEqual(['Shared', 'None']);
    expect(() => loadConfig({ SESSIONCTL_MAX_MEMORY: '1g' })).toThrow(
      /SESSIONCTL_MAX_MEMORY is below SESSIONCTL_DEFAULT_MEMORY/,
    );
    expect(() => loadConfig({ SESSIONCTL_MAX_ENV: '2000' })).toThrow(/SESSIONCTL_MAX_ENV/);
  });
});
