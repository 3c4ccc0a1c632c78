/**
 * Controller configuration: environment variables (the same DOCKER_* ones the docker CLI reads)
 * parsed once at start-up into a typed object. Nothing outside src/config reads process.env.
 * The variables themselves are in ./env-schema.ts; the Docker host's in ./docker-host.ts.
 */
import os from 'node:os';
import path from 'node:path';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { normaliseHostPath } from '../../crds/runtime-fields';
import type { Ceilings } from '../../crds/limits';
import type { NetworkMode } from '../docker/networks';
import type { DatabaseRoles } from '../store/migrate';
import { ConfigError } from './config-error';
import type { DockerHostConfig } from './docker-host';
import { parseEnv, splitList, splitRegistries, type EnvValues } from './env-schema';

export interface Config {
  databaseUrl?: string;
  stateDir: string;
  embeddedPostgresPort: number;
  metricsHost: string;
  metricsPort: number;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  workers: number;
  dockerConcurrency: number;
  /** Deadline of one Docker call (stop and restart add their grace period). */
  dockerTimeoutMs: number;
  resyncIntervalMs: number;
  pollIntervalMs: number;
  publishAddress: string;
  /** The address written into status.endpoints; defaults from the publish address and DOCKER_HOST. */
  advertiseAddress?: string;
  shutdownTimeoutMs: number;
  /** Limits a container gets when its spec sets none (the old manager's 4g and one CPU). */
  defaultResources: { memoryBytes: number; nanoCpus: number; pids: number };
  /** Capabilities session containers keep; every other one is dropped. */
  capabilities: string[];
  /** Host directories under which spec.volumes[].hostPath may bind-mount; none by default. */
  allowedHostPaths: string[];
  /** How sessions are networked: a Docker network each (PerSession) or the default bridge (Shared). */
  networkMode: NetworkMode;
  /** Egress of a session whose spec.network.egress is unset. */
  defaultEgress: 'Internet' | 'None';
  /** Per-session maximums a spec may ask for (controllers/session/ceilings.ts). */
  ceilings: Ceilings;
  /** Host admission; unlimited where unset. */
  capacity: { maxSessions?: number; allocatableMemoryBytes?: number };
  /** Images: pulls at once per host, registry settings, and how many sessions a moved tag recreates at once. */
  images: {
    pullConcurrency: number;
    tokenTtlMs: number;
    updateBatchSize: number;
    insecureRegistries: string[];
    dockerConfigDir: string;
    allowedRegistries: string[];
  };
  /** The group roles migration 003 creates and grants to: pass to migrate() as `roles`. */
  roles: DatabaseRoles;
}

/** The ceilings, each at least the default a spec without that limit gets. */
function ceilingsFrom(values: EnvValues): Ceilings {
  const ceilings: Ceilings = {
    maxMemoryBytes: parseMemoryBytes(values.SESSIONCTL_MAX_MEMORY)!,
    maxNanoCpus: parseNanoCpus(values.SESSIONCTL_MAX_CPUS)!,
    maxPids: values.SESSIONCTL_MAX_PIDS,
    maxEnvEntries: values.SESSIONCTL_MAX_ENV,
    maxSpecBytes: values.SESSIONCTL_MAX_SPEC_BYTES,
  };
  const below = [
    ceilings.maxMemoryBytes < parseMemoryBytes(values.SESSIONCTL_DEFAULT_MEMORY)! &&
      'SESSIONCTL_MAX_MEMORY is below SESSIONCTL_DEFAULT_MEMORY',
    ceilings.maxNanoCpus < parseNanoCpus(values.SESSIONCTL_DEFAULT_CPUS)! &&
      'SESSIONCTL_MAX_CPUS is below SESSIONCTL_DEFAULT_CPUS',
    ceilings.maxPids < values.SESSIONCTL_DEFAULT_PIDS && 'SESSIONCTL_MAX_PIDS is below SESSIONCTL_DEFAULT_PIDS',
  ].filter((problem): problem is string => typeof problem === 'string');
  if (below.length > 0)
    throw new ConfigError(
      `invalid configuration:\n  ${below.join('\n  ')}: a spec that sets no limit gets the default, which must be allowed`,
    );
  return ceilings;
}

/** Parses the environment once; throws ConfigError naming each bad variable and what to do. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const values = parseEnv(env);
  const [metricsHost, metricsPort] = values.SESSIONCTL_METRICS_ADDR.split(':');
  return {
    databaseUrl: values.DATABASE_URL,
    stateDir: path.resolve(cwd, values.SESSIONCTL_STATE_DIR ?? '.sessionctl'),
    embeddedPostgresPort: values.SESSIONCTL_PG_PORT,
    metricsHost,
    metricsPort: Number(metricsPort),
    logLevel: values.LOG_LEVEL,
    logFormat: values.SESSIONCTL_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    workers: values.SESSIONCTL_WORKERS,
    dockerConcurrency: values.SESSIONCTL_DOCKER_CONCURRENCY,
    dockerTimeoutMs: values.SESSIONCTL_DOCKER_TIMEOUT_SECONDS * 1000,
    resyncIntervalMs: values.SESSIONCTL_RESYNC_SECONDS * 1000,
    pollIntervalMs: values.SESSIONCTL_POLL_SECONDS * 1000,
    publishAddress: values.SESSIONCTL_PUBLISH_ADDRESS,
    advertiseAddress: values.SESSIONCTL_ADVERTISE_ADDRESS,
    defaultResources: {
      memoryBytes: parseMemoryBytes(values.SESSIONCTL_DEFAULT_MEMORY)!,
      nanoCpus: parseNanoCpus(values.SESSIONCTL_DEFAULT_CPUS)!,
      pids: values.SESSIONCTL_DEFAULT_PIDS,
    },
    ceilings: ceilingsFrom(values),
    networkMode: values.SESSIONCTL_NETWORK_MODE,
    defaultEgress: values.SESSIONCTL_DEFAULT_EGRESS,
    capabilities: splitList(values.SESSIONCTL_CAPABILITIES),
    allowedHostPaths: splitList(values.SESSIONCTL_ALLOWED_HOST_PATHS).map(normaliseHostPath),
    capacity: {
      maxSessions: values.SESSIONCTL_HOST_MAX_SESSIONS,
      allocatableMemoryBytes:
        values.SESSIONCTL_HOST_ALLOCATABLE_MEMORY === undefined
          ? undefined
          : parseMemoryBytes(values.SESSIONCTL_HOST_ALLOCATABLE_MEMORY),
    },
    shutdownTimeoutMs: values.SESSIONCTL_SHUTDOWN_TIMEOUT_SECONDS * 1000,
    images: {
      pullConcurrency: values.SESSIONCTL_PULL_CONCURRENCY,
      tokenTtlMs: values.SESSIONCTL_REGISTRY_TOKEN_TTL_SECONDS * 1000,
      updateBatchSize: values.SESSIONCTL_IMAGE_UPDATE_BATCH_SIZE,
      insecureRegistries: splitRegistries(values.SESSIONCTL_INSECURE_REGISTRIES),
      allowedRegistries: splitRegistries(values.SESSIONCTL_ALLOWED_REGISTRIES),
      dockerConfigDir: values.DOCKER_CONFIG
        ? path.resolve(cwd, values.DOCKER_CONFIG)
        : path.join(os.homedir(), '.docker'),
    },
    roles: {
      writer: values.SESSIONCTL_WRITER_ROLE,
      controller: values.SESSIONCTL_CONTROLLER_ROLE,
      admin: values.SESSIONCTL_ADMIN_ROLE,
    },
  };
}

/**
 * The address a proxy should use to reach published ports: the publish address itself, unless it is
 * a wildcard, in which case the Docker host's own address (from DOCKER_HOST) is the one that answers.
 */
export function advertiseAddressFor(
  config: Pick<Config, 'advertiseAddress' | 'publishAddress'>,
  dockerHost: Pick<DockerHostConfig, 'host' | 'socketPath'>,
): string {
  if (config.advertiseAddress) return config.advertiseAddress;
  if (config.publishAddress !== '0.0.0.0' && config.publishAddress !== '::' && config.publishAddress !== '')
    return config.publishAddress;
  if (dockerHost.socketPath) return '127.0.0.1';
  return dockerHost.host.includes(':') ? `[${dockerHost.host}]` : dockerHost.host;
}

/** The environment for a child process (the dev scripts), with some variables set. */
export function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}
