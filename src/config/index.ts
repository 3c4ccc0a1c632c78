/**
 * Controller configuration: environment variables (the same DOCKER_* ones the docker CLI reads)
 * parsed once at start-up into a typed object. Nothing else in the code base reads process.env.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { REGISTRY_HOST_PATTERN } from '../../crds/image-policy';
import { MIN_MEMORY_BYTES, parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { forbiddenHostPath, normaliseHostPath } from '../../crds/runtime-fields';
import { ENV_ENTRIES_CEILING, SPEC_BYTES_CEILING, type Ceilings } from '../../crds/limits';
import type { NetworkMode } from '../docker/networks';
import { DEFAULT_ROLES, ROLE_NAME_PATTERN, type DatabaseRoles } from '../store/migrate';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

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

const truthy = (value: string | undefined) =>
  value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const roleName = (fallback: string) =>
  z
    .string()
    .regex(
      ROLE_NAME_PATTERN,
      'expected a lowercase SQL identifier of at most 63 characters: letters, digits and "_", not starting with a digit or "pg_"',
    )
    .default(fallback);

/** Capabilities that amount to root on the host: no allow-list may grant them. */
const FORBIDDEN_CAPABILITIES = [
  'SYS_ADMIN',
  'SYS_MODULE',
  'SYS_PTRACE',
  'SYS_RAWIO',
  'SYS_BOOT',
  'NET_ADMIN',
  'DAC_READ_SEARCH',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'BPF',
  'SYS_TIME',
  'ALL',
];

function splitList(value: string): string[] {
  return value
    .split(/[,:]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

function splitRegistries(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '');
}

function memoryQuantity(fallback?: string) {
  const schema = z
    .string()
    .refine(
      (value) => (parseMemoryBytes(value) ?? 0) >= MIN_MEMORY_BYTES,
      'expected a memory quantity of at least 6Mi such as "4g" or "512Mi"',
    );
  return fallback === undefined ? schema : schema.default(fallback);
}

/** Every variable the configuration reads. Each needs a description in ./variables.ts (docs/configuration.md is generated from both). */
export const envSchema = z
  .object({
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// connection URL')
      .optional(),
    DOCKER_HOST: z.string().optional(),
    DOCKER_TLS_VERIFY: z.string().optional(),
    DOCKER_CERT_PATH: z.string().optional(),
    SESSIONCTL_DOCKER_HOST_NAME: z
      .string()
      .regex(/^[a-z0-9][-a-z0-9.]{0,62}$/)
      .default('default'),
    SESSIONCTL_DEV_ALLOW_UNIX_SOCKET: z.string().optional(),
    SESSIONCTL_DOCKER_TLS_MIN_VERSION: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    SESSIONCTL_STATE_DIR: z.string().optional(),
    SESSIONCTL_PG_PORT: positiveInt(54329),
    SESSIONCTL_METRICS_ADDR: z
      .string()
      .regex(/^[^:]+:\d+$/, 'expected host:port such as 127.0.0.1:9464')
      .default('127.0.0.1:9464'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    SESSIONCTL_LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
    SESSIONCTL_WORKERS: positiveInt(16),
    SESSIONCTL_DOCKER_CONCURRENCY: positiveInt(8),
    SESSIONCTL_DOCKER_TIMEOUT_SECONDS: positiveInt(30),
    SESSIONCTL_RESYNC_SECONDS: positiveInt(300),
    SESSIONCTL_POLL_SECONDS: positiveInt(10),
    SESSIONCTL_PUBLISH_ADDRESS: z.string().default('127.0.0.1'),
    SESSIONCTL_SHUTDOWN_TIMEOUT_SECONDS: positiveInt(20),
    SESSIONCTL_ADVERTISE_ADDRESS: z
      .string()
      .regex(/^[^\s:]+$|^\[[0-9a-fA-F:]+\]$/, 'expected a host name or IP address (IPv6 in brackets)')
      .optional(),
    SESSIONCTL_DEFAULT_MEMORY: memoryQuantity('4g'),
    SESSIONCTL_DEFAULT_CPUS: z
      .string()
      .default('1')
      .refine(
        (value) => (parseNanoCpus(value) ?? 0) > 0,
        'expected a positive number of CPUs such as "1", "0.5" or "500m"',
      ),
    SESSIONCTL_DEFAULT_PIDS: z.coerce.number().int().min(16).default(1024),
    SESSIONCTL_NETWORK_MODE: z.enum(['PerSession', 'Shared']).default('PerSession'),
    SESSIONCTL_DEFAULT_EGRESS: z.enum(['Internet', 'None']).default('Internet'),
    SESSIONCTL_MAX_MEMORY: memoryQuantity('16g'),
    SESSIONCTL_MAX_CPUS: z
      .string()
      .default('4')
      .refine((value) => (parseNanoCpus(value) ?? 0) > 0, 'expected a positive number of CPUs such as "4" or "0.5"'),
    SESSIONCTL_MAX_PIDS: z.coerce.number().int().min(16).max(4_194_304).default(4096),
    SESSIONCTL_MAX_ENV: z.coerce.number().int().min(0).max(ENV_ENTRIES_CEILING).default(256),
    SESSIONCTL_MAX_SPEC_BYTES: z.coerce.number().int().min(1024).max(SPEC_BYTES_CEILING).default(65_536),
    SESSIONCTL_CAPABILITIES: z
      .string()
      .default('CHOWN,DAC_OVERRIDE,FOWNER,SETGID,SETUID,NET_BIND_SERVICE,KILL')
      .refine(
        (value) =>
          value === '' ||
          value.split(',').every((cap) => /^[A-Z_]+$/.test(cap.trim()) && !FORBIDDEN_CAPABILITIES.includes(cap.trim())),
        {
          message: `expected comma-separated capability names such as CHOWN,KILL (without CAP_); never ${'SYS_ADMIN and the like'}`,
        },
      ),
    SESSIONCTL_ALLOWED_HOST_PATHS: z
      .string()
      .default('')
      .superRefine((value, ctx) => {
        for (const entry of splitList(value)) {
          if (!entry.startsWith('/')) ctx.addIssue({ code: 'custom', message: `"${entry}" is not an absolute path` });
          else if (forbiddenHostPath(entry))
            ctx.addIssue({ code: 'custom', message: `"${entry}": ${forbiddenHostPath(entry)}` });
        }
      }),
    SESSIONCTL_HOST_MAX_SESSIONS: z.coerce.number().int().positive().optional(),
    SESSIONCTL_HOST_ALLOCATABLE_MEMORY: memoryQuantity().optional(),
    DOCKER_CONFIG: z.string().optional(),
    SESSIONCTL_PULL_CONCURRENCY: positiveInt(2),
    SESSIONCTL_REGISTRY_TOKEN_TTL_SECONDS: positiveInt(3600),
    SESSIONCTL_IMAGE_UPDATE_BATCH_SIZE: positiveInt(5),
    SESSIONCTL_INSECURE_REGISTRIES: z
      .string()
      .default('')
      .refine(
        (value) => splitRegistries(value).every((entry) => REGISTRY_HOST_PATTERN.test(entry)),
        'expected comma-separated registry hosts such as registry.lan:5000 (no scheme, no path)',
      ),
    SESSIONCTL_ALLOWED_REGISTRIES: z
      .string()
      .default('')
      .refine(
        (value) => splitRegistries(value).every((entry) => REGISTRY_HOST_PATTERN.test(entry)),
        'expected comma-separated registry hosts such as docker.io,registry.lan:5000 (no scheme, no path)',
      ),
    SESSIONCTL_WRITER_ROLE: roleName(DEFAULT_ROLES.writer),
    SESSIONCTL_CONTROLLER_ROLE: roleName(DEFAULT_ROLES.controller),
    SESSIONCTL_ADMIN_ROLE: roleName(DEFAULT_ROLES.admin),
  })
  .refine((values) => values.SESSIONCTL_WRITER_ROLE !== values.SESSIONCTL_CONTROLLER_ROLE, {
    message: 'must differ from SESSIONCTL_WRITER_ROLE: the writer role exists to be narrower than the controller role',
    path: ['SESSIONCTL_CONTROLLER_ROLE'],
  });

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

function parseEnv(env: NodeJS.ProcessEnv): z.output<typeof envSchema> {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
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

/** The ceilings, each at least the default a spec without that limit gets. */
function ceilingsFrom(values: z.output<typeof envSchema>): Ceilings {
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
