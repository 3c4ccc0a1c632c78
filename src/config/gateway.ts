/**
 * Gateway configuration (`sessionctl gateway`): its own variables, parsed once at start-up like the
 * controller's. The database, log level and log format come from the shared loadConfig().
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './config-error';

export interface GatewayConfig {
  host: string;
  port: number;
  /** HTTPS when set; cookies are then Secure and X-Forwarded-Proto is https. */
  tls?: { certPath: string; keyPath: string };
  /** Host-name routing: <session>.<domain> reaches the session's first port. */
  domain?: string;
  metricsHost: string;
  metricsPort: number;
  /** How long a request for an idle-stopped session waits for it to be Ready. */
  wakeTimeoutMs: number;
  /** Slowloris: the whole request head must arrive within this. */
  headersTimeoutMs: number;
  maxHeaderBytes: number;
  /** A client connection with no request in flight is closed after this. */
  keepAliveTimeoutMs: number;
  /** A request (or WebSocket) with no byte either way for this long is closed. */
  idleTimeoutMs: number;
  /** Most connections kept to one upstream endpoint, and how long an idle one is kept. */
  upstreamConnections: number;
  upstreamKeepAliveMs: number;
  /** How often activity is written, and the least time between two writes for one session. */
  activityFlushMs: number;
  activityIntervalMs: number;
  /** Append to (rather than replace) X-Forwarded-For/Proto/Host sent by a proxy in front. */
  trustForwarded: boolean;
}

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const address = (fallback: string) =>
  z
    .string()
    .regex(/^[^:\s]+:\d+$/, `expected host:port such as ${fallback}`)
    .default(fallback);

export const gatewayEnvSchema = z
  .object({
    SESSIONCTL_GATEWAY_ADDR: address('127.0.0.1:8000'),
    SESSIONCTL_GATEWAY_TLS_CERT: z.string().optional(),
    SESSIONCTL_GATEWAY_TLS_KEY: z.string().optional(),
    SESSIONCTL_GATEWAY_DOMAIN: z
      .string()
      .regex(
        /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
        'expected a lowercase DNS domain such as sessions.example.org (no scheme, no port)',
      )
      .optional(),
    SESSIONCTL_GATEWAY_METRICS_ADDR: address('127.0.0.1:9465'),
    SESSIONCTL_GATEWAY_WAKE_TIMEOUT_SECONDS: positiveInt(60),
    SESSIONCTL_GATEWAY_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    SESSIONCTL_GATEWAY_MAX_HEADER_BYTES: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
    SESSIONCTL_GATEWAY_KEEPALIVE_TIMEOUT_SECONDS: positiveInt(65),
    SESSIONCTL_GATEWAY_IDLE_TIMEOUT_SECONDS: positiveInt(3_600),
    SESSIONCTL_GATEWAY_UPSTREAM_CONNECTIONS: positiveInt(100),
    SESSIONCTL_GATEWAY_UPSTREAM_KEEPALIVE_SECONDS: positiveInt(300),
    SESSIONCTL_GATEWAY_ACTIVITY_FLUSH_MS: z.coerce.number().int().min(50).default(5_000),
    SESSIONCTL_GATEWAY_ACTIVITY_INTERVAL_SECONDS: z.coerce.number().min(0).default(30),
    SESSIONCTL_GATEWAY_TRUST_FORWARDED: z.enum(['0', '1', 'true', 'false']).default('0'),
  })
  .refine(
    (values) =>
      (values.SESSIONCTL_GATEWAY_TLS_CERT === undefined) === (values.SESSIONCTL_GATEWAY_TLS_KEY === undefined),
    {
      message:
        'set both SESSIONCTL_GATEWAY_TLS_CERT and SESSIONCTL_GATEWAY_TLS_KEY (PEM files) for HTTPS, or neither for plain HTTP',
      path: ['SESSIONCTL_GATEWAY_TLS_KEY'],
    },
  );

function parseGatewayEnv(env: NodeJS.ProcessEnv): z.output<typeof gatewayEnvSchema> {
  const parsed = gatewayEnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid gateway configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

function tlsFiles(cert: string | undefined, key: string | undefined, cwd: string): GatewayConfig['tls'] {
  if (cert === undefined || key === undefined) return undefined;
  const tls = { certPath: path.resolve(cwd, cert), keyPath: path.resolve(cwd, key) };
  for (const [name, file] of [
    ['SESSIONCTL_GATEWAY_TLS_CERT', tls.certPath],
    ['SESSIONCTL_GATEWAY_TLS_KEY', tls.keyPath],
  ]) {
    if (!existsSync(file))
      throw new ConfigError(
        `${name}=${file}: no such file. Point it at a PEM file, or unset both TLS variables for plain HTTP.`,
      );
  }
  return tls;
}

/** Parses the gateway's variables; throws ConfigError naming each bad one and what to do. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): GatewayConfig {
  const values = parseGatewayEnv(env);
  const [host, port] = values.SESSIONCTL_GATEWAY_ADDR.split(':');
  const [metricsHost, metricsPort] = values.SESSIONCTL_GATEWAY_METRICS_ADDR.split(':');
  return {
    host,
    port: Number(port),
    tls: tlsFiles(values.SESSIONCTL_GATEWAY_TLS_CERT, values.SESSIONCTL_GATEWAY_TLS_KEY, cwd),
    domain: values.SESSIONCTL_GATEWAY_DOMAIN,
    metricsHost,
    metricsPort: Number(metricsPort),
    wakeTimeoutMs: values.SESSIONCTL_GATEWAY_WAKE_TIMEOUT_SECONDS * 1000,
    headersTimeoutMs: values.SESSIONCTL_GATEWAY_HEADERS_TIMEOUT_MS,
    maxHeaderBytes: values.SESSIONCTL_GATEWAY_MAX_HEADER_BYTES,
    keepAliveTimeoutMs: values.SESSIONCTL_GATEWAY_KEEPALIVE_TIMEOUT_SECONDS * 1000,
    idleTimeoutMs: values.SESSIONCTL_GATEWAY_IDLE_TIMEOUT_SECONDS * 1000,
    upstreamConnections: values.SESSIONCTL_GATEWAY_UPSTREAM_CONNECTIONS,
    upstreamKeepAliveMs: values.SESSIONCTL_GATEWAY_UPSTREAM_KEEPALIVE_SECONDS * 1000,
    activityFlushMs: values.SESSIONCTL_GATEWAY_ACTIVITY_FLUSH_MS,
    activityIntervalMs: values.SESSIONCTL_GATEWAY_ACTIVITY_INTERVAL_SECONDS * 1000,
    trustForwarded:
      values.SESSIONCTL_GATEWAY_TRUST_FORWARDED === '1' || values.SESSIONCTL_GATEWAY_TRUST_FORWARDED === 'true',
  };
}
