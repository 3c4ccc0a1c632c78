/**
 * The parts of a Session spec that govern its life at run time rather than the shape of its
 * process: health check, security context, volumes, access token and lifetimes. Kept apart from
 * crds/session.ts so that each file stays one readable screen of schema.
 */
import { z } from 'zod';

const VOLUME_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const seconds = (what: string, fallback: number, min: number) =>
  z.number().int().min(min).max(86_400).default(fallback).describe(`${what} Default ${fallback}.`);

export const healthCheckSchema = z
  .strictObject({
    exec: z
      .array(z.string())
      .min(1, 'exec needs at least the program to run')
      .describe('A command run inside the container, not through a shell; exit code 0 is healthy.')
      .optional(),
    httpGet: z
      .strictObject({
        port: z
          .union([z.string(), z.number().int()])
          .describe('The container port to probe: the name of one of spec.ports, or a number from 1 to 65535.'),
        path: z
          .string()
          .startsWith('/', 'path must start with "/"')
          .default('/')
          .describe('The HTTP path to GET; a 2xx or 3xx answer is healthy.'),
      })
      .describe('An HTTP GET of 127.0.0.1:port inside the container, made with the wget or curl of the image.')
      .optional(),
    periodSeconds: seconds('Seconds between checks.', 10, 1),
    timeoutSeconds: seconds('Seconds before one check counts as failed.', 2, 1),
    failureThreshold: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe('Consecutive failures after which the container is unhealthy and restarted. Default 3.'),
    initialDelaySeconds: seconds('Seconds after start during which failures do not count.', 0, 0),
  })
  .superRefine((check, ctx) => {
    if ((check.exec === undefined) === (check.httpGet === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of exec and httpGet' });
    }
  })
  .describe(
    "Run by Docker itself (the image's HEALTHCHECK is replaced): after failureThreshold consecutive failures the session is Healthy=False and the controller restarts the container, which counts against maxRestarts.",
  );

export const securityContextSchema = z
  .strictObject({
    runAsUser: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .describe("User id the process runs as; the image's user when unset. Use a non-zero id to run as non-root.")
      .optional(),
    runAsGroup: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .describe('Group id the process runs as; needs runAsUser.')
      .optional(),
    readOnlyRootFilesystem: z
      .boolean()
      .default(false)
      .describe('Mount the root filesystem read-only; /tmp stays writable as a tmpfs, and volumes as mounted.'),
    privileged: z
      .literal(
        false,
        'privileged containers are never allowed: they are root on the Docker host. Remove the field; grant a capability on the controller instead if one is missing',
      )
      .describe('Always false: sessionctl never runs privileged containers.')
      .optional(),
  })
  .superRefine((context, ctx) => {
    if (context.runAsGroup !== undefined && context.runAsUser === undefined) {
      ctx.addIssue({ code: 'custom', path: ['runAsGroup'], message: 'runAsGroup needs runAsUser' });
    }
  })
  .describe(
    'Hardening on top of the defaults every session gets (no new privileges, all but a few capabilities dropped, a pids limit).',
  );

/** Paths that would hand a session the Docker daemon or the whole host, whatever the allow-list says. */
export function forbiddenHostPath(hostPath: string): string | undefined {
  const normalised = normaliseHostPath(hostPath);
  if (normalised === '/') return 'the host root filesystem is never mounted';
  if (/(^|\/)docker\.sock$/.test(normalised) || /(^|\/)containerd\.sock$/.test(normalised))
    return 'a container runtime socket is never mounted: it is root on the host';
  if (
    ['/var/run', '/run', '/var/lib/docker', '/proc', '/sys', '/dev', '/etc'].some(
      (prefix) => normalised === prefix || normalised.startsWith(`${prefix}/`),
    )
  ) {
    return `${normalised} is a system path and is never mounted`;
  }
  return undefined;
}

/** Lexical normalisation: no "." or ".." segments, no duplicate or trailing slashes. */
export function normaliseHostPath(hostPath: string): string {
  const parts: string[] = [];
  for (const part of hostPath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

export const volumeSchema = z
  .strictObject({
    name: z
      .string()
      .regex(VOLUME_NAME_PATTERN, 'volume names are lowercase letters, digits and "-", at most 32 characters')
      .describe(
        'Name of the volume, unique within the session. A named volume becomes the Docker volume sessionctl-<session>_<name> ("_" cannot occur in either part, so two sessions never share one).',
      ),
    mountPath: z
      .string()
      .startsWith('/', 'mountPath must be an absolute path')
      .describe('Where the volume appears inside the container.'),
    hostPath: z
      .string()
      .startsWith('/', 'hostPath must be an absolute path')
      .superRefine((hostPath, ctx) => {
        const forbidden = forbiddenHostPath(hostPath);
        if (forbidden) ctx.addIssue({ code: 'custom', message: forbidden });
      })
      .describe(
        "A directory of the Docker host to bind-mount instead of a named volume. Allowed only under the controller's SESSIONCTL_ALLOWED_HOST_PATHS; never a runtime socket or a system path.",
      )
      .optional(),
    readOnly: z.boolean().default(false).describe('Mount read-only.'),
  })
  .describe(
    'Storage for the session: a per-session named Docker volume that survives restarts and recreates, or an allowed host directory.',
  );

export const authSchema = z
  .strictObject({
    tokenTtlSeconds: z
      .number()
      .int()
      .min(60)
      .max(31_536_000)
      .default(86_400)
      .describe(
        'Lifetime of the access token; it is rotated (and the container recreated) when it expires. Default 86400 (one day).',
      ),
    delivery: z
      .enum(['File', 'Env'])
      .default('File')
      .describe(
        "File (the default): the token is the file /run/sessionctl/token, readable only by the session's user, and SESSION_TOKEN_FILE names it. Env: the token is the environment variable envName instead, which `docker inspect` and every process in the container can read.",
      ),
    envName: z
      .string()
      .regex(ENV_NAME_PATTERN, 'environment variable names are letters, digits and "_", not starting with a digit')
      .default('SESSION_TOKEN')
      .describe(
        'With delivery: Env, the environment variable that carries the token into the container. Default SESSION_TOKEN.',
      ),
  })
  .describe(
    "A per-session access token, minted by the controller: 32 random bytes, readable by its owner's writers in sessionctl.session_tokens and by `sessionctl token NAME`, never in spec, status, events or logs.",
  );

export const networkSchema = z
  .strictObject({
    egress: z
      .enum(['Internet', 'None'])
      .describe(
        "Internet: the container may open connections out of its network (as the Docker host's firewall allows). None: it may not (an internal Docker network), which also means it can publish no ports. The operator's SESSIONCTL_DEFAULT_EGRESS when unset.",
      )
      .optional(),
  })
  .describe(
    "The session's network. Each session gets a Docker network of its own (unless the operator chose SESSIONCTL_NETWORK_MODE=Shared): it can never open a connection to another session's container.",
  );

export const runtimeFieldsShape = {
  network: networkSchema.optional(),
  healthCheck: healthCheckSchema.optional(),
  maxRestarts: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .describe(
      'Restarts allowed (after crashes or failed health checks) before the session is Failed with RestartLimitExceeded. It stays Failed until the spec changes or `sessionctl restart`. Unlimited when unset.',
    )
    .optional(),
  securityContext: securityContextSchema.optional(),
  volumes: z.array(volumeSchema).describe('Volumes. Names and mount paths must be unique.').optional(),
  volumeReclaimPolicy: z
    .enum(['Retain', 'Delete'])
    .default('Retain')
    .describe(
      'What happens to named volumes when the session is deleted: Retain (the default, so that user data is never lost by accident) or Delete.',
    ),
  auth: authSchema.optional(),
  idleTimeoutSeconds: z
    .number()
    .int()
    .min(1)
    .describe(
      'Seconds without activity (last_activity_at, set by touch) after which idleAction is taken. Never when unset.',
    )
    .optional(),
  idleAction: z
    .enum(['Stop', 'Delete'])
    .default('Stop')
    .describe('Stop: stop the container until the next touch. Delete: delete the session.'),
  maxLifetimeSeconds: z
    .number()
    .int()
    .min(1)
    .describe('Seconds after creation at which the session is deleted. Never when unset.')
    .optional(),
};

interface CrossCheckedFields {
  healthCheck?: { httpGet?: { port: string | number } };
  volumes?: Array<{ name: string; mountPath: string }>;
  ports: Array<{ name: string }>;
}

/** Checks across fields, reported at the field's path; called from the spec's superRefine. */
export function checkRuntimeFields(spec: CrossCheckedFields, ctx: z.RefinementCtx): void {
  const port = spec.healthCheck?.httpGet?.port;
  if (typeof port === 'number' && (port < 1 || port > 65535)) {
    ctx.addIssue({
      code: 'custom',
      path: ['healthCheck', 'httpGet', 'port'],
      message: `port ${port} is out of range: expected 1 to 65535, or the name of one of spec.ports`,
    });
  }
  if (typeof port === 'string' && !spec.ports.some((candidate) => candidate.name === port)) {
    const names = spec.ports.map((candidate) => candidate.name);
    ctx.addIssue({
      code: 'custom',
      path: ['healthCheck', 'httpGet', 'port'],
      message: `names no port: spec.ports has ${names.length > 0 ? names.map((name) => `"${name}"`).join(', ') : 'none'}; use one of those names or a port number`,
    });
  }
  const names = new Set<string>();
  const paths = new Set<string>();
  (spec.volumes ?? []).forEach((volume, index) => {
    if (names.has(volume.name))
      ctx.addIssue({
        code: 'custom',
        path: ['volumes', index, 'name'],
        message: `duplicate volume name "${volume.name}"`,
      });
    if (paths.has(volume.mountPath))
      ctx.addIssue({
        code: 'custom',
        path: ['volumes', index, 'mountPath'],
        message: `duplicate mountPath "${volume.mountPath}"`,
      });
    names.add(volume.name);
    paths.add(volume.mountPath);
  });
}
