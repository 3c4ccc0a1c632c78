/**
 * The DockerHost resource: one Docker daemon of the fleet, reached over mutual TLS. Operators apply
 * it with `sessionctl apply -f`; it becomes a row of `sessionctl.hosts`. The certificates stay files
 * on the controller machines: the row only names their directory.
 */
import { z } from 'zod';
import { parseMemoryBytes } from './quantity';
import { API_VERSION, formatPath, labelsSchema, SESSION_NAME_PATTERN, type FieldProblem } from './session';
import { closest } from './suggest';

export const HOST_KIND = 'DockerHost';

/** Only mutual TLS over TCP: a unix socket or plain HTTP has no place in a fleet. */
export const ENDPOINT_PATTERN = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

export const hostNameSchema = z
  .string()
  .regex(
    SESSION_NAME_PATTERN,
    'must be a DNS-1123 label: lowercase letters, digits and "-", at most 63 characters, starting and ending with a letter or digit',
  )
  .describe('Unique name of the host, a DNS-1123 label. Sessions name it in status.host.');

const endpointSchema = z
  .string()
  .superRefine((text, ctx) => {
    const match = ENDPOINT_PATTERN.exec(text);
    if (!match) {
      ctx.addIssue({
        code: 'custom',
        message: `expected tcp://HOST:PORT such as tcp://10.0.0.5:2376 (mutual TLS only; unix:// and http:// are refused), got "${text}"`,
      });
      return;
    }
    const port = Number(match[2]);
    if (port < 1 || port > 65535) ctx.addIssue({ code: 'custom', message: `port ${port} is outside 1-65535` });
  })
  .describe('The Docker API endpoint, tcp://HOST:PORT. The daemon must require mutual TLS (--tlsverify).');

const certDirSchema = z
  .string()
  .regex(/^\//, 'expected an absolute directory path on the controller machines, such as /etc/sessionctl/hosts/a')
  .describe(
    'Absolute path, on every controller machine, of the directory holding ca.pem, cert.pem and key.pem for this host. Certificates are never stored in the database.',
  );

const allocatableMemorySchema = z
  .string()
  .refine((text) => parseMemoryBytes(text) !== undefined, {
    message: 'expected a memory quantity such as "64Gi" or "512m"',
  })
  .describe('Memory the sessions placed on this host may ask for in total (their spec.resources.memory).');

export const hostCapacitySchema = z
  .strictObject({
    maxSessions: z
      .number()
      .int('expected a whole number')
      .min(0, 'expected 0 or more')
      .optional()
      .describe('How many sessions may be placed on this host; unlimited when unset.'),
    allocatableMemory: allocatableMemorySchema.optional(),
  })
  .describe('What placement may put on this host; unset fields are unlimited.');

export const dockerHostSpecSchema = z
  .strictObject({
    endpoint: endpointSchema,
    certDir: certDirSchema,
    advertiseAddress: z
      .string()
      .regex(/^[A-Za-z0-9.:-]+$/, 'expected an IP address or a DNS name')
      .optional()
      .describe("Address written into the status.endpoints of this host's sessions; the endpoint's host by default."),
    capacity: hostCapacitySchema.default({}),
  })
  .describe('How to reach the host and how much it may hold.');

export const dockerHostDocumentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION).describe(`Version of the DockerHost schema: ${API_VERSION}.`),
    kind: z.literal(HOST_KIND).describe(`Always ${HOST_KIND}.`),
    metadata: z
      .strictObject({ name: hostNameSchema, labels: labelsSchema.default({}) })
      .describe('Name and labels of the host; spec.hostSelector of a session matches these labels.'),
    spec: dockerHostSpecSchema,
  })
  .describe('A DockerHost: one mutual-TLS Docker daemon that sessions may be placed on.');

export type DockerHostDocument = z.output<typeof dockerHostDocumentSchema>;

const KNOWN_FIELDS = [
  ...Object.keys(dockerHostDocumentSchema.shape),
  'name',
  'labels',
  ...Object.keys(dockerHostSpecSchema.shape),
  ...Object.keys(hostCapacitySchema.shape),
];

export function validateDockerHost(
  document: unknown,
): { ok: true; value: DockerHostDocument } | { ok: false; problems: FieldProblem[] } {
  const result = dockerHostDocumentSchema.safeParse(document);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues.flatMap((issue) => {
    if (issue.code !== 'unrecognized_keys') return [{ path: formatPath(issue.path), message: issue.message }];
    return issue.keys.map((key) => {
      const suggestion = closest(key, KNOWN_FIELDS);
      return {
        path: formatPath([...issue.path, key]),
        message: suggestion ? `unknown field (did you mean "${suggestion}"?)` : 'unknown field',
      };
    });
  });
  return { ok: false, problems };
}
