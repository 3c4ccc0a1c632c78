/**
 * The controller's environment variables as a zod schema: names, defaults and what a valid value
 * looks like. loadConfig (./index.ts) and loadDockerHostConfig (./docker-host.ts) parse the
 * environment with it; docs/configuration.md is generated from it and ./variables.ts.
 */
import { z } from 'zod';
import { REGISTRY_HOST_PATTERN } from '../../crds/image-policy';
import { MIN_MEMORY_BYTES, parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { forbiddenHostPath } from '../../crds/runtime-fields';
import { ENV_ENTRIES_CEILING, SPEC_BYTES_CEILING } from '../../crds/limits';
import { DEFAULT_ROLES, ROLE_NAME_PATTERN } from '../store/migrate';
import { ConfigError } from './config-error';

/** A boolean variable: anything but unset, empty, "0" or "false" (any case) is true. */
export const truthy = (value: string | undefined) =>
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

/** A list variable: entries separated by commas or colons (as in PATH), blanks dropped. */
export function splitList(value: string): string[] {
  return value
    .split(/[,:]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/** Registry hosts, comma-separated; lower-cased, as host names compare without case. */
export function splitRegistries(value: string): string[] {
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

export type EnvValues = z.output<typeof envSchema>;

/** Parses the environment with envSchema; throws ConfigError naming each bad variable. */
export function parseEnv(env: NodeJS.ProcessEnv): EnvValues {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}
