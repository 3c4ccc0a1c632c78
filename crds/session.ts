/**
 * The Session resource: the single source of truth for what a valid session is.
 * Every writer (SQL rows, `sessionctl apply`, the TypeScript client) is checked against this schema,
 * and the controller re-checks each row it reads because other services write rows directly.
 */
import { z } from 'zod';
import { MIN_MEMORY_BYTES, parseMemoryBytes, parseNanoCpus } from './quantity';
import { closest } from './suggest';
import { gatewaySchema } from './gateway-fields';
import { imagePolicyShape } from './image-policy';
import { ENV_ENTRIES_CEILING, SPEC_BYTES_CEILING, specBytes } from './limits';
import {
  authSchema,
  checkRuntimeFields,
  healthCheckSchema,
  networkSchema,
  runtimeFieldsShape,
  securityContextSchema,
  volumeSchema,
} from './runtime-fields';

export const API_VERSION = 'sessionctl.dev/v1alpha1';
export const KIND = 'Session';

/** DNS-1123 label: the session name becomes part of a container name and of label values. */
export const SESSION_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const LABEL_KEY_PATTERN = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_PATTERN = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PORT_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;
// A loose image reference check: the daemon has the final word, this only catches obvious typos.
const IMAGE_PATTERN =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

export const sessionNameSchema = z
  .string()
  .regex(
    SESSION_NAME_PATTERN,
    'must be a DNS-1123 label: lowercase letters, digits and "-", at most 63 characters, starting and ending with a letter or digit',
  )
  .describe(
    'Unique name of the session, a DNS-1123 label: lowercase letters, digits and "-", at most 63 characters, starting and ending with a letter or digit. The container is named sessionctl-<name>.',
  );

export const labelsSchema = z
  .record(
    z
      .string()
      .regex(LABEL_KEY_PATTERN, 'label keys are an optional DNS prefix and "/" then a name of at most 63 characters'),
    z.string().regex(LABEL_VALUE_PATTERN, 'label values are at most 63 letters, digits, "-", "_" or "."'),
  )
  .describe(
    'Labels for grouping and selecting sessions, with Kubernetes label syntax: keys are an optional DNS prefix and "/" then a name of at most 63 characters; values are at most 63 letters, digits, "-", "_" or ".".',
  );

const memorySchema = z
  .string()
  .superRefine((text, ctx) => {
    const bytes = parseMemoryBytes(text);
    if (bytes === undefined)
      ctx.addIssue({
        code: 'custom',
        message: `expected a memory quantity such as "256Mi", "512m" or "1g", got "${text}"`,
      });
    else if (bytes < MIN_MEMORY_BYTES)
      ctx.addIssue({ code: 'custom', message: 'memory must be at least 6Mi, the smallest limit Docker accepts' });
  })
  .describe(
    'Memory limit, swap included (the container gets no swap beyond it): a number of bytes with an optional unit b, k, m, g or t, optionally followed by "i" or "b". Units are binary whatever their spelling or case (1g = 1G = 1Gi = 1gb = 1 GiB), as `docker run --memory` reads them. At least 6Mi, the smallest limit Docker accepts.',
  );

const cpusSchema = z
  .union([z.string(), z.number()])
  .refine((value) => (parseNanoCpus(value) ?? 0) > 0, {
    message: 'expected a positive number of CPUs such as "0.5", 2 or "500m"',
  })
  .describe(
    'CPU limit: a positive number of CPUs with at most 9 decimals, such as 2 or "0.5", or millicores such as "500m".',
  );

export const portSchema = z
  .strictObject({
    name: z
      .string()
      .regex(PORT_NAME_PATTERN, 'port names are lowercase letters, digits and "-", at most 15 characters')
      .describe(
        'Name of the port, unique within the session: lowercase letters, digits and "-", at most 15 characters. Keys the port in status.endpoints.',
      ),
    containerPort: z.number().int().min(1).max(65535).describe('Port the process listens on inside the container.'),
    protocol: z.enum(['TCP', 'UDP']).default('TCP').describe('Protocol of the port.'),
  })
  .describe(
    'A container port, published on an ephemeral port of the Docker host (on its publish address, loopback by default) so that sessions never collide.',
  );

export const resourcesSchema = z
  .strictObject({
    memory: memorySchema.optional(),
    cpus: cpusSchema.optional(),
    pids: z
      .number()
      .int()
      .min(16, 'pids must be at least 16 so that a shell can start')
      .max(4_194_304)
      .describe(
        "Most processes and threads the container may have at once, at least 16 so that a shell can start, and at most the controller's maximum (SESSIONCTL_MAX_PIDS).",
      )
      .optional(),
  })
  .describe("Limits of the container. A limit left unset takes the controller's configured default.");

export const sessionSpecSchema = z
  .strictObject({
    image: z
      .string()
      .min(1)
      .max(512)
      .regex(IMAGE_PATTERN, 'expected an image reference such as "registry.example/team/image:tag"')
      .describe(
        'Image reference such as "registry.example/team/image:tag", optionally pinned with "@sha256:<digest>". It is pulled as imagePullPolicy says, with the credentials configured for its registry.',
      ),
    command: z
      .array(z.string())
      .describe(
        'Replaces the image\'s entrypoint (Docker\'s Entrypoint). Not run through a shell: use ["sh", "-c"] and put the script in args.',
      )
      .optional(),
    args: z
      .array(z.string())
      .describe(
        "Replaces the image's default arguments (Docker's Cmd): the arguments of command, or of the image's entrypoint.",
      )
      .optional(),
    workingDir: z
      .string()
      .startsWith('/', 'workingDir must be an absolute path')
      .describe("Absolute path the process starts in; the image's working directory when unset.")
      .optional(),
    env: z
      .record(
        z
          .string()
          .regex(ENV_NAME_PATTERN, 'environment variable names are letters, digits and "_", not starting with a digit'),
        z.string(),
      )
      .default({})
      .refine((env) => Object.keys(env).length <= ENV_ENTRIES_CEILING, {
        message: `at most ${ENV_ENTRIES_CEILING} environment variables; put bulk configuration in a file or volume instead`,
      })
      .describe(
        `Environment variables, name to value, added to those of the image. Names are letters, digits and "_", not starting with a digit. At most ${ENV_ENTRIES_CEILING} (the operator may set fewer).`,
      ),
    ports: z
      .array(portSchema)
      .default([])
      .describe('Ports to publish. Names must be unique, and so must containerPort and protocol together.'),
    resources: resourcesSchema.default({}),
    state: z
      .enum(['Running', 'Stopped'])
      .default('Running')
      .describe(
        'Running: the container is kept running. Stopped: the container is created, or stopped, and kept stopped.',
      ),
    restartPolicy: z
      .enum(['Always', 'OnFailure', 'Never'])
      .default('Always')
      .describe(
        'Whether the controller restarts a container that exited, with crash backoff: Always; OnFailure, after a non-zero exit code or an out-of-memory kill; or Never.',
      ),
    hostSelector: labelsSchema
      .describe(
        'Labels a Docker host must carry (every one) for the session to be placed there. Only read when the session is placed: a placed session stays on its host.',
      )
      .optional(),
    host: z
      .string()
      .regex(SESSION_NAME_PATTERN, 'expected the name of a DockerHost: a DNS-1123 label')
      .describe(
        'Pins the session to this Docker host (by name); it waits, Scheduled=False, while that host has no room.',
      )
      .optional(),
    ...runtimeFieldsShape,
    ...imagePolicyShape,
    gateway: gatewaySchema.optional(),
  })
  .superRefine((spec, ctx) => {
    const names = new Set<string>();
    const numbers = new Set<string>();
    spec.ports.forEach((port, index) => {
      if (names.has(port.name))
        ctx.addIssue({ code: 'custom', path: ['ports', index, 'name'], message: `duplicate port name "${port.name}"` });
      const key = `${port.containerPort}/${port.protocol}`;
      if (numbers.has(key))
        ctx.addIssue({
          code: 'custom',
          path: ['ports', index, 'containerPort'],
          message: `duplicate container port ${key}`,
        });
      names.add(port.name);
      numbers.add(key);
    });
    checkRuntimeFields(spec, ctx);
  })
  .describe('The desired state of the session: its container, and whether it runs.');

export const sessionMetadataSchema = z
  .strictObject({
    name: sessionNameSchema,
    labels: labelsSchema.default({}),
  })
  .describe('Name and labels of the session.');

export const sessionDocumentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION).describe(`Version of the Session schema: ${API_VERSION}.`),
    kind: z.literal(KIND).describe(`Always ${KIND}.`),
    metadata: sessionMetadataSchema,
    spec: sessionSpecSchema,
  })
  .describe(
    'A Session: one per-user container on a Docker host, which the sessionctl controller creates, keeps in the declared state and replaces when its spec changes.',
  );

/** What writers send: defaults may be omitted. */
export type SessionSpecInput = z.input<typeof sessionSpecSchema>;
/** What the controller works with: defaults filled in. */
export type SessionSpec = z.output<typeof sessionSpecSchema>;
export type SessionDocument = z.output<typeof sessionDocumentSchema>;
export type SessionDocumentInput = z.input<typeof sessionDocumentSchema>;
export type Port = z.output<typeof portSchema>;

export interface FieldProblem {
  /** Dotted path such as `spec.resources.memory` or `spec.ports[1].name`. */
  path: string;
  message: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; problems: FieldProblem[] };

export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let text = prefix;
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text ? `.${String(part)}` : String(part);
  }
  return text || '(root)';
}

/** Every field name the schema knows, for suggestions when a writer misspells one. */
const KNOWN_FIELDS = [
  ...Object.keys(sessionDocumentSchema.shape),
  ...Object.keys(sessionMetadataSchema.shape),
  ...Object.keys(sessionSpecSchema.shape),
  ...Object.keys(portSchema.shape),
  ...Object.keys(resourcesSchema.shape),
  ...Object.keys(healthCheckSchema.shape),
  ...Object.keys(securityContextSchema.shape),
  ...Object.keys(volumeSchema.shape),
  ...Object.keys(authSchema.shape),
  ...Object.keys(networkSchema.shape),
  ...Object.keys(gatewaySchema.shape),
];

/** Fields that are refused on purpose, with what to do instead, rather than a bare "unknown field". */
const REFUSED_FIELDS: Record<string, string> = {
  privileged: 'privileged containers are never allowed: they are root on the Docker host',
  hostNetwork: 'host networking is never allowed: ports are published on the controller-configured address',
  devices: 'host devices are never passed to session containers',
};

function toProblems(error: z.ZodError, prefix: string): FieldProblem[] {
  return error.issues
    .map((issue) => {
      // zod reports misspelled keys on the parent object; name the key itself so that the path points at it.
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => {
          if (key in REFUSED_FIELDS)
            return { path: formatPath([...issue.path, key], prefix), message: REFUSED_FIELDS[key] };
          const suggestion = closest(key, KNOWN_FIELDS);
          return {
            path: formatPath([...issue.path, key], prefix),
            message: suggestion ? `unknown field (did you mean "${suggestion}"?)` : 'unknown field',
          };
        });
      }
      return [{ path: formatPath(issue.path, prefix), message: issue.message }];
    })
    .flat();
}

/** Checked before parsing: a huge spec is refused without walking it. */
function tooLarge(bytes: number): FieldProblem {
  return {
    path: 'spec',
    message: `the spec is ${bytes} bytes, more than the ${SPEC_BYTES_CEILING} allowed; move large content into the image or a volume`,
  };
}

export function validateSpec(spec: unknown): Validation<SessionSpec> {
  const bytes = specBytes(spec);
  if (bytes > SPEC_BYTES_CEILING) return { ok: false, problems: [tooLarge(bytes)] };
  const result = sessionSpecSchema.safeParse(spec);
  return result.success ? { ok: true, value: result.data } : { ok: false, problems: toProblems(result.error, 'spec') };
}

export function validateDocument(document: unknown): Validation<SessionDocument> {
  const spec = (document as { spec?: unknown } | null)?.spec;
  const bytes = specBytes(spec);
  if (bytes > SPEC_BYTES_CEILING) return { ok: false, problems: [tooLarge(bytes)] };
  const result = sessionDocumentSchema.safeParse(document);
  return result.success ? { ok: true, value: result.data } : { ok: false, problems: toProblems(result.error, '') };
}

export function describeProblems(problems: FieldProblem[]): string {
  return problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ');
}
