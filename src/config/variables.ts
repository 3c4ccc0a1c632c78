/**
 * What each environment variable of the configuration means, for people. The names and defaults come
 * from the zod schema in ./env-schema.ts; the type below makes a variable without a description a
 * compile error. `npm run docs:generate` renders this into docs/configuration.md, and
 * test/unit/docs.test.ts fails when that table is stale.
 *
 * To add a variable: add it to `envSchema` in ./env-schema.ts (or another schema listed in
 * docs/generate/configuration.ts), describe it here, run `npm run docs:generate`.
 */
import type { fleetEnvSchema } from './fleet';
import type { gatewayEnvSchema } from './gateway';
import type { envSchema } from './env-schema';

/**
 * Every variable name of every env schema. A component with its own schema (in src/config) adds
 * `| keyof typeof itsSchema.shape` here and the schema to ENV_SCHEMAS in docs/generate/configuration.ts.
 */
export type EnvVariableName =
  keyof typeof envSchema.shape | keyof typeof gatewayEnvSchema.shape | keyof typeof fleetEnvSchema.shape;

/** The sections of docs/configuration.md, in the order they appear. */
export const VARIABLE_GROUPS = [
  'Database',
  'Docker hosts',
  'Controller',
  'Session containers',
  'Admission',
  'Images and registries',
  'Gateway',
  'Logs',
  'Development',
] as const;

export interface VariableDoc {
  /** What the variable changes, in one or two sentences. */
  description: string;
  /** Shown instead of the schema's default where the real default is computed or absent. */
  defaultText?: string;
  /** The table section the variable is listed under. */
  group: (typeof VARIABLE_GROUPS)[number];
}

export const VARIABLES: Record<EnvVariableName, VariableDoc> = {
  DATABASE_URL: {
    group: 'Database',
    description: '`postgres://` URL of the database holding the `sessionctl` schema.',
    defaultText: 'embedded PostgreSQL under the state directory',
  },
  SESSIONCTL_WRITER_ROLE: {
    group: 'Database',
    description:
      'Group role that migration 003 creates and grants the writer privileges to (lowercase identifier; read only when 003 runs).',
  },
  SESSIONCTL_ADMIN_ROLE: {
    group: 'Database',
    description:
      "Group role that migration 009 creates: it sees and changes every writer's sessions and may reassign their owner; writers see only their own.",
  },
  SESSIONCTL_CONTROLLER_ROLE: {
    group: 'Database',
    description:
      'Group role that migration 003 creates and grants the controller privileges to; must differ from the writer role.',
  },
  DOCKER_HOST: {
    group: 'Docker hosts',
    description: '`tcp://HOST:PORT` of the Docker daemon, as for the docker CLI. Plain TCP without TLS is refused.',
    defaultText: '— (required)',
  },
  DOCKER_TLS_VERIFY: {
    group: 'Docker hosts',
    description: 'Must be `1`: the daemon is reached over mutual TLS only.',
    defaultText: '— (required)',
  },
  DOCKER_CERT_PATH: {
    group: 'Docker hosts',
    description: 'Folder holding `ca.pem`, `cert.pem` and `key.pem` for mutual TLS.',
    defaultText: '`~/.docker`',
  },
  SESSIONCTL_DOCKER_HOST_NAME: {
    group: 'Docker hosts',
    description: 'Short host name used in metrics labels and `status.host`.',
  },
  SESSIONCTL_DEV_ALLOW_UNIX_SOCKET: {
    group: 'Docker hosts',
    description: 'Set to `1` to allow `DOCKER_HOST=unix://…`, for local development only.',
    defaultText: 'unset (refused)',
  },
  SESSIONCTL_DOCKER_CONCURRENCY: { group: 'Docker hosts', description: 'Concurrent Docker API calls per host.' },
  SESSIONCTL_DOCKER_TLS_MIN_VERSION: {
    group: 'Docker hosts',
    description: 'Lowest TLS version the controller accepts from a Docker host (`TLSv1.2` or `TLSv1.3`).',
  },
  SESSIONCTL_DOCKER_TIMEOUT_SECONDS: {
    group: 'Docker hosts',
    description:
      'Deadline of one Docker API call (stop and restart add their grace period; the event stream and pulls have none). A call past it frees its slot, is counted, and marks the host degraded for a minute.',
  },
  SESSIONCTL_METRICS_ADDR: {
    group: 'Controller',
    description: '`host:port` serving `/metrics`, `/health`, `/healthz` and `/readyz`.',
  },
  SESSIONCTL_WORKERS: {
    group: 'Controller',
    description: 'Concurrent reconciles per Docker host held (the pool grows and shrinks with the hosts).',
  },
  SESSIONCTL_RESYNC_SECONDS: {
    group: 'Controller',
    description: 'Period of the full resync (one container list per host), jittered by ±10%.',
  },
  SESSIONCTL_POLL_SECONDS: {
    group: 'Controller',
    description: 'Period of the safety poll of rows whose status lags their generation.',
  },
  SESSIONCTL_SHUTDOWN_TIMEOUT_SECONDS: {
    group: 'Controller',
    description: 'How long SIGTERM waits for in-flight reconciles before exiting.',
  },
  SESSIONCTL_PUBLISH_ADDRESS: {
    group: 'Session containers',
    description: 'Host address container ports are published on (ephemeral host ports).',
  },
  SESSIONCTL_ADVERTISE_ADDRESS: {
    group: 'Session containers',
    description: 'Address written into `status.endpoints` for proxies.',
    defaultText: "the publish address, or `DOCKER_HOST`'s host for `0.0.0.0`",
  },
  SESSIONCTL_DEFAULT_MEMORY: {
    group: 'Session containers',
    description: 'Memory limit of a session whose spec sets none.',
  },
  SESSIONCTL_DEFAULT_CPUS: {
    group: 'Session containers',
    description: 'CPU limit of a session whose spec sets none (`1`, `0.5`, `500m`).',
  },
  SESSIONCTL_DEFAULT_PIDS: {
    group: 'Session containers',
    description: 'Pids limit of a session whose spec sets none (at least 16).',
  },
  SESSIONCTL_NETWORK_MODE: {
    group: 'Session containers',
    description:
      '`PerSession`: each session gets a Docker network of its own, so sessions cannot reach each other; `Shared`: every session on the default bridge, as before.',
  },
  SESSIONCTL_DEFAULT_EGRESS: {
    group: 'Session containers',
    description:
      'Outbound access of a session whose spec sets no `network.egress`: `Internet` or `None` (an internal network).',
  },
  SESSIONCTL_MAX_MEMORY: {
    group: 'Session containers',
    description: 'Largest memory limit a spec may ask for; a spec over it is refused with its field path.',
  },
  SESSIONCTL_MAX_CPUS: { group: 'Session containers', description: 'Largest CPU limit a spec may ask for.' },
  SESSIONCTL_MAX_PIDS: {
    group: 'Session containers',
    description: 'Largest pids limit a spec may ask for (16 to 4194304).',
  },
  SESSIONCTL_MAX_ENV: { group: 'Session containers', description: 'Most environment entries a spec may set.' },
  SESSIONCTL_MAX_SPEC_BYTES: {
    group: 'Session containers',
    description: 'Largest spec, in bytes of JSON, the controller accepts.',
  },
  SESSIONCTL_CAPABILITIES: {
    group: 'Session containers',
    description:
      'Comma-separated capabilities session containers keep; all others are dropped. `SYS_ADMIN` and the like are refused.',
  },
  SESSIONCTL_ALLOWED_HOST_PATHS: {
    group: 'Session containers',
    description: 'Comma-separated absolute host directories that `spec.volumes[].hostPath` may be under.',
    defaultText: 'empty (no bind mounts)',
  },
  SESSIONCTL_HOST_MAX_SESSIONS: {
    group: 'Admission',
    description: 'Most sessions the host runs at once; others wait `Pending` with `MaxSessionsReached`.',
    defaultText: 'unlimited',
  },
  SESSIONCTL_HOST_ALLOCATABLE_MEMORY: {
    group: 'Admission',
    description: 'Sum of session memory limits the host admits, e.g. `48g`; others wait with `InsufficientMemory`.',
    defaultText: 'unlimited',
  },
  SESSIONCTL_PULL_CONCURRENCY: {
    group: 'Images and registries',
    description: 'Concurrent image pulls per host, apart from the API calls.',
  },
  SESSIONCTL_IMAGE_UPDATE_BATCH_SIZE: {
    group: 'Images and registries',
    description: 'Sessions recreated at once when a followed tag (`imageUpdatePolicy: Poll`) moves.',
  },
  SESSIONCTL_REGISTRY_TOKEN_TTL_SECONDS: {
    group: 'Images and registries',
    description: 'Longest a registry bearer token is cached, whatever its own expiry.',
  },
  SESSIONCTL_ALLOWED_REGISTRIES: {
    group: 'Images and registries',
    description:
      'Comma-separated registry hosts images may come from; an image from another registry waits with `ImageNotAllowed` and is never pulled or inspected. Empty allows any.',
    defaultText: 'empty (any)',
  },
  SESSIONCTL_INSECURE_REGISTRIES: {
    group: 'Images and registries',
    description: 'Comma-separated registry hosts reached over plain HTTP for digest checks (loopback always is).',
    defaultText: 'empty',
  },
  DOCKER_CONFIG: {
    group: 'Images and registries',
    description: 'Folder of the `config.json` registry credentials are read from (after the credentials table).',
    defaultText: '`~/.docker`',
  },
  SESSIONCTL_REPLICA_ID: {
    group: 'Docker hosts',
    description:
      'This controller replica in host leases. Must be unique per running process; a restarted replica that keeps its identity takes its hosts back at once instead of after the 15 s lease.',
    defaultText: 'hostname-pid-random',
  },
  SESSIONCTL_PLACEMENT_POLICY: {
    group: 'Docker hosts',
    description:
      '`spread`: a new session goes to the host with the least allocated memory, then the fewest sessions; `binpack`: to the fullest host that still fits.',
  },
  SESSIONCTL_HOST_LOST_AFTER_SECONDS: {
    group: 'Docker hosts',
    description:
      'A host unreachable this long is Lost: its sessions without volumes are placed on other hosts; sessions with volumes wait for it.',
  },
  SESSIONCTL_GATEWAY_ADDR: { group: 'Gateway', description: 'Where `sessionctl gateway` listens (host:port).' },
  SESSIONCTL_GATEWAY_TLS_CERT: {
    group: 'Gateway',
    description:
      'PEM certificate file: the gateway serves HTTPS (with `SESSIONCTL_GATEWAY_TLS_KEY`) and its cookies are Secure.',
    defaultText: 'unset (HTTP)',
  },
  SESSIONCTL_GATEWAY_TLS_KEY: {
    group: 'Gateway',
    description: 'PEM private key file for `SESSIONCTL_GATEWAY_TLS_CERT`.',
    defaultText: 'unset (HTTP)',
  },
  SESSIONCTL_GATEWAY_DOMAIN: {
    group: 'Gateway',
    description: "Route `<session>.<domain>` by Host header to the session's first port.",
    defaultText: 'unset (path routing only)',
  },
  SESSIONCTL_GATEWAY_METRICS_ADDR: {
    group: 'Gateway',
    description: 'Where the gateway serves `/metrics`, `/healthz` and `/readyz`.',
  },
  SESSIONCTL_GATEWAY_WAKE_TIMEOUT_SECONDS: {
    group: 'Gateway',
    description: 'How long a request for an idle-stopped session waits for it to be Ready.',
  },
  SESSIONCTL_GATEWAY_HEADERS_TIMEOUT_MS: {
    group: 'Gateway',
    description: 'The whole request head must arrive within this (slowloris); answered 408.',
  },
  SESSIONCTL_GATEWAY_MAX_HEADER_BYTES: { group: 'Gateway', description: 'Largest request head; answered 431.' },
  SESSIONCTL_GATEWAY_KEEPALIVE_TIMEOUT_SECONDS: {
    group: 'Gateway',
    description: 'An idle client connection between requests is closed after this.',
  },
  SESSIONCTL_GATEWAY_IDLE_TIMEOUT_SECONDS: {
    group: 'Gateway',
    description: 'A request or WebSocket with no byte either way for this long is closed.',
  },
  SESSIONCTL_GATEWAY_UPSTREAM_CONNECTIONS: {
    group: 'Gateway',
    description: 'Most keep-alive connections to one session endpoint.',
  },
  SESSIONCTL_GATEWAY_UPSTREAM_KEEPALIVE_SECONDS: {
    group: 'Gateway',
    description: 'How long an idle upstream connection is kept.',
  },
  SESSIONCTL_GATEWAY_ACTIVITY_FLUSH_MS: {
    group: 'Gateway',
    description: 'How often batched activity is written (one statement per flush).',
  },
  SESSIONCTL_GATEWAY_ACTIVITY_INTERVAL_SECONDS: {
    group: 'Gateway',
    description: 'Least time between two activity writes for one session.',
  },
  SESSIONCTL_GATEWAY_TRUST_FORWARDED: {
    group: 'Gateway',
    description: 'Set to `1` behind a trusted proxy: append to its `X-Forwarded-*` instead of replacing them.',
  },
  LOG_LEVEL: { group: 'Logs', description: 'pino log level.' },
  SESSIONCTL_LOG_FORMAT: {
    group: 'Logs',
    description: 'Log format.',
    defaultText: '`pretty` on a terminal, else `json`',
  },
  SESSIONCTL_STATE_DIR: {
    group: 'Development',
    description: 'Folder of the development environment (certificates, dockerd, embedded PostgreSQL).',
    defaultText: '`.sessionctl`',
  },
  SESSIONCTL_PG_PORT: {
    group: 'Development',
    description: 'Port of the embedded PostgreSQL when `DATABASE_URL` is unset.',
  },
};
