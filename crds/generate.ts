/**
 * Derives the published schemas of the Session resource from the zod schema, its single source of truth:
 *
 * - crds/session.schema.json: JSON Schema (draft 2020-12) of a Session document as writers send it
 *   (defaults may be omitted), for editors, linters and other services that write rows;
 * - crds/session.crd.yaml: a Kubernetes CustomResourceDefinition with a structural openAPIV3Schema,
 *   the status schema (crds/status-schema.ts) and the printer columns of `sessionctl get sessions`.
 *
 *   npm run crds:generate                (tsc, then node dist/crds/generate.js)
 *   node dist/crds/generate.js --check   (exit 1 when the files on disk are stale; writes nothing)
 *
 * Output is deterministic: keywords are written in a fixed order and properties in the zod shape's order.
 *
 * What JSON Schema cannot say: zod's refine/superRefine are code, and z.toJSONSchema drops them silently.
 * Every refinement in the schema must be listed in REFINEMENTS below (generation fails otherwise), with
 * the keywords that approximate it, if any, and a note of what remains checked by sessionctl only; the note
 * becomes a `$comment` in the JSON Schema. Kubernetes' structural schemas drop more (see toStructural).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Document } from 'yaml';
import { z } from 'zod';
import { API_VERSION, KIND, sessionDocumentSchema } from './session';
import { sessionStatusSchema } from './status-schema';

export type Schema = { [keyword: string]: unknown };

export const [GROUP, VERSION] = API_VERSION.split('/') as [string, string];
export const PLURAL = 'sessions';
export const SINGULAR = 'session';
export const SHORT_NAMES = ['sess'];
export const SCHEMA_ID = `https://${GROUP}/schemas/${VERSION}/session.schema.json`;
export const REGENERATE_COMMAND = 'npm run crds:generate';

export const JSON_SCHEMA_FILE = 'crds/session.schema.json';
export const CRD_FILE = 'crds/session.crd.yaml';

/**
 * The syntax that crds/quantity.ts parses, as patterns: a string matches exactly when parseMemoryBytes /
 * parseNanoCpus would read it (test/unit/crds.test.ts holds them to that). Written for both ECMAScript and
 * RE2, the regexp dialect of Kubernetes; RE2's `\s` is ASCII whitespace only.
 */
export const MEMORY_QUANTITY_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*([bB]|[kKmMgGtT][iIbB]?)?\\s*$';
export const CPU_QUANTITY_PATTERN = '^\\s*(\\d+(\\.\\d{1,9})?|\\.\\d{1,9}|\\d+m)\\s*$';

interface Refinement {
  /** What stays checked by sessionctl only. */
  note: string;
  /** JSON Schema (2020-12) keywords that express part of the refinement. */
  keywords?: Schema;
}

/** Keyed by the JSON pointer of the schema node that carries a refine/superRefine. */
export const REFINEMENTS: Record<string, Refinement> = {
  '/properties/spec': {
    note: 'Checked by sessionctl, not expressible in JSON Schema: port names are unique, and so are containerPort and protocol together; a named healthCheck.httpGet.port names one of ports; volume names and mount paths are unique.',
  },
  '/properties/spec/properties/env': {
    note: "At most 1024 entries (the database refuses more too); the controller's SESSIONCTL_MAX_ENV may allow fewer.",
  },
  '/properties/spec/properties/healthCheck': {
    note: 'Checked by sessionctl only: exactly one of exec and httpGet.',
  },
  '/properties/spec/properties/securityContext': {
    note: 'Checked by sessionctl only: runAsGroup needs runAsUser.',
  },
  '/properties/spec/properties/volumes/items/properties/hostPath': {
    note: "Checked by sessionctl only: never a container runtime socket, the host root or a system path (/proc, /sys, /dev, /etc, /run, /var/run, /var/lib/docker); and the controller's SESSIONCTL_ALLOWED_HOST_PATHS must include it.",
  },
  '/properties/spec/properties/resources/properties/memory': {
    note: 'The pattern is the quantity syntax; checked by sessionctl only: the value is at least 6Mi and at most 2^53-1 bytes.',
    keywords: { pattern: MEMORY_QUANTITY_PATTERN },
  },
  '/properties/spec/properties/resources/properties/cpus': {
    note: 'The pattern is the syntax of strings; checked by sessionctl only: a string is not zero, a number has at most 9 decimals.',
    keywords: { pattern: CPU_QUANTITY_PATTERN, exclusiveMinimum: 0 },
  },
};

/** Formats that both JSON Schema validators and Kubernetes know; zod's own (e.g. starts_with, from .startsWith()) go. */
const KNOWN_FORMATS = new Set([
  'date-time',
  'date',
  'time',
  'duration',
  'email',
  'hostname',
  'ipv4',
  'ipv6',
  'uri',
  'uuid',
  'byte',
  'int32',
  'int64',
  'float',
  'double',
]);

/** The order keywords are written in; others follow, sorted. */
const KEYWORD_ORDER = [
  '$schema',
  '$id',
  'title',
  'description',
  '$comment',
  'type',
  'x-kubernetes-int-or-string',
  'anyOf',
  'const',
  'enum',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
  'minItems',
  'maxItems',
  'default',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'items',
  'properties',
  'required',
  'propertyNames',
  'additionalProperties',
];

const pointer = (segments: readonly (string | number)[]) =>
  segments.map((segment) => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

function hasRefinement(schema: z.core.$ZodTypes): boolean {
  return (schema._zod.def.checks ?? []).some((check) => check._zod.def.check === 'custom');
}

/** z.toJSONSchema, plus where the schema has refinements that it could not translate. */
function convert(schema: z.ZodType, target: 'draft-2020-12' | 'openapi-3.0'): { json: Schema; refined: Set<string> } {
  const refined = new Set<string>();
  const json = z.toJSONSchema(schema, {
    target,
    io: 'input',
    unrepresentable: 'throw',
    cycles: 'throw',
    reused: 'inline',
    override: ({ zodSchema, path: at }) => {
      if (hasRefinement(zodSchema)) refined.add(pointer(at));
    },
  }) as Schema;
  return { json, refined };
}

function at(root: Schema, jsonPointer: string): Schema {
  let node: unknown = root;
  for (const segment of jsonPointer.split('/').slice(1)) {
    node = (node as Schema | undefined)?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  if (typeof node !== 'object' || node === null) throw new Error(`generate: no schema at ${jsonPointer}`);
  return node as Schema;
}

function checkRefinementsAccountedFor(refined: Set<string>): void {
  const unlisted = [...refined].filter((where) => !(where in REFINEMENTS));
  const gone = Object.keys(REFINEMENTS).filter((where) => !refined.has(where));
  if (unlisted.length > 0 || gone.length > 0) {
    throw new Error(
      [
        ...unlisted.map(
          (where) =>
            `the zod schema has a refinement at ${where} that JSON Schema cannot show: list it in REFINEMENTS in crds/generate.ts`,
        ),
        ...gone.map(
          (where) =>
            `REFINEMENTS in crds/generate.ts lists ${where}, where the zod schema has no refinement (any more)`,
        ),
      ].join('\n'),
    );
  }
}

/** Applies `visit` to every schema node, depth first, children before parents. */
function walk(node: Schema, visit: (node: Schema, where: string) => void, where = ''): void {
  const properties = node.properties as Record<string, Schema> | undefined;
  for (const [name, child] of Object.entries(properties ?? {})) walk(child, visit, `${where}/properties/${name}`);
  for (const keyword of ['items', 'additionalProperties', 'propertyNames', 'not']) {
    const child = node[keyword];
    if (typeof child === 'object' && child !== null && !Array.isArray(child))
      walk(child as Schema, visit, `${where}/${keyword}`);
  }
  for (const keyword of ['anyOf', 'allOf', 'oneOf']) {
    (node[keyword] as Schema[] | undefined)?.forEach((child, index) =>
      walk(child, visit, `${where}/${keyword}/${index}`),
    );
  }
  visit(node, where);
}

/** A copy with every schema node's keywords in KEYWORD_ORDER; property, enum and default values keep theirs. */
function ordered(node: Schema): Schema {
  const rank = (key: string) => {
    const index = KEYWORD_ORDER.indexOf(key);
    return index === -1 ? KEYWORD_ORDER.length : index;
  };
  const keys = Object.keys(node).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const copy: Schema = {};
  for (const key of keys) {
    const value = node[key];
    if (key === 'properties') {
      copy[key] = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([name, child]) => [name, ordered(child)]),
      );
    } else if (
      ['items', 'additionalProperties', 'propertyNames', 'not'].includes(key) &&
      typeof value === 'object' &&
      value !== null
    ) {
      copy[key] = ordered(value as Schema);
    } else if (['anyOf', 'allOf', 'oneOf'].includes(key)) {
      copy[key] = (value as Schema[]).map(ordered);
    } else {
      copy[key] = structuredClone(value);
    }
  }
  return copy;
}

function dropUnknownFormats(node: Schema): void {
  if (typeof node.format === 'string' && !KNOWN_FORMATS.has(node.format)) {
    if (node.pattern === undefined) throw new Error(`generate: format ${node.format} has no pattern to stand for it`);
    delete node.format;
  }
}

/** The JSON Schema of a Session document as writers send it. */
export function sessionJsonSchema(): Schema {
  const { json, refined } = convert(sessionDocumentSchema, 'draft-2020-12');
  checkRefinementsAccountedFor(refined);
  for (const [where, refinement] of Object.entries(REFINEMENTS)) {
    Object.assign(at(json, where), refinement.keywords ?? {}, { $comment: refinement.note });
  }
  walk(json, dropUnknownFormats);
  return ordered({
    ...json,
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: SCHEMA_ID,
    title: `${KIND} (${API_VERSION})`,
    $comment: `Generated from crds/session.ts by crds/generate.ts: do not edit. Regenerate with \`${REGENERATE_COMMAND}\`.`,
  });
}

/**
 * The Kubernetes subset: a structural schema (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
 * - `additionalProperties: false` goes: Kubernetes forbids it beside `properties` and prunes unknown fields instead
 *   (kubectl's default --validate=strict turns them into errors);
 * - `propertyNames` goes (no such field in a CRD schema): the syntax of label keys and environment variable names is
 *   checked by sessionctl only;
 * - a union of string and number becomes `x-kubernetes-int-or-string`, so a CRD takes cpus as an integer or a string:
 *   a fractional number must be written as a string ("0.5");
 * - no `title`, `$comment`, `$schema`, `$id` or `$ref`; `format: date-time` keeps no pattern (Kubernetes checks the format).
 */
function toStructural(node: Schema, where: string): void {
  for (const keyword of ['$schema', '$id', '$comment', 'title', 'propertyNames']) delete node[keyword];
  if (node.additionalProperties === false) delete node.additionalProperties;
  if (node.additionalProperties !== undefined && node.properties !== undefined)
    throw new Error(`generate: ${where}: properties and additionalProperties together are not structural`);
  dropUnknownFormats(node);
  if (node.format === 'date-time') delete node.pattern;
  if (typeof node.exclusiveMinimum === 'number') {
    node.minimum = node.exclusiveMinimum;
    node.exclusiveMinimum = true;
  }
  if (node.anyOf !== undefined) {
    const branches = node.anyOf as Schema[];
    // zod writes z.number().int()'s implicit safe-integer bounds; they say nothing a CRD needs.
    for (const branch of branches) {
      if (branch.minimum === Number.MIN_SAFE_INTEGER) delete branch.minimum;
      if (branch.maximum === Number.MAX_SAFE_INTEGER) delete branch.maximum;
    }
    const types = branches.map((branch) => (Object.keys(branch).length === 1 ? branch.type : undefined)).sort();
    if (branches.length !== 2 || (types.join() !== 'number,string' && types.join() !== 'integer,string')) {
      throw new Error(`generate: ${where}: anyOf ${JSON.stringify(branches)} has no structural form`);
    }
    // The one union Kubernetes allows, branches in this order exactly.
    node.anyOf = [{ type: 'integer' }, { type: 'string' }];
    node['x-kubernetes-int-or-string'] = true;
    if (types.includes('number')) {
      node.description =
        `${node.description ?? ''} In a Kubernetes object this is an integer or a string: write a fractional number as a string, such as "0.5".`.trim();
    }
    if (node.minimum === 0 && node.exclusiveMinimum === true) {
      node.minimum = 1;
      delete node.exclusiveMinimum;
    }
  }
  if (typeof node.type !== 'string' && node['x-kubernetes-int-or-string'] !== true) {
    throw new Error(`generate: ${where}: type ${JSON.stringify(node.type)} is not structural`);
  }
}

function crdOpenApiSchema(): Schema {
  const document = convert(sessionDocumentSchema, 'openapi-3.0');
  checkRefinementsAccountedFor(document.refined);
  for (const [where, refinement] of Object.entries(REFINEMENTS))
    Object.assign(at(document.json, where), refinement.keywords ?? {});
  const status = convert(sessionStatusSchema, 'openapi-3.0');
  if (status.refined.size > 0)
    throw new Error(`generate: the status schema has refinements at ${[...status.refined].join(', ')}`);

  const properties = document.json.properties as Record<string, Schema>;
  const spec = properties.spec;
  const ports = (spec.properties as Record<string, Schema>).ports;
  // Kubernetes' own list-map, as a Pod's container ports: containerPort and protocol together are unique.
  ports['x-kubernetes-list-type'] = 'map';
  ports['x-kubernetes-list-map-keys'] = ['containerPort', 'protocol'];
  const conditions = (status.json.properties as Record<string, Schema>).conditions;
  conditions['x-kubernetes-list-type'] = 'map';
  conditions['x-kubernetes-list-map-keys'] = ['type'];

  const name = (properties.metadata.properties as Record<string, Schema>).name;
  const root: Schema = {
    type: 'object',
    description: document.json.description,
    properties: {
      // Kubernetes sets and checks these itself; a structural schema gives them a type and no more.
      apiVersion: {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      },
      kind: {
        type: 'string',
        description: 'Kind is a string value representing the REST resource this object represents.',
      },
      // Only metadata.name and metadata.generateName may be restricted, and nothing else said about metadata.
      metadata: { type: 'object', properties: { name: { type: 'string', pattern: name.pattern } } },
      spec,
      status: status.json,
    },
    required: ['spec'],
  };
  walk(root, toStructural);
  return ordered(root);
}

const READY = '.status.conditions[?(@.type=="Ready")]';

export const PRINTER_COLUMNS = [
  { name: 'State', type: 'string', jsonPath: '.spec.state', description: 'The state asked for: Running or Stopped.' },
  { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'What the controller last observed.' },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: `${READY}.status`,
    description: 'Whether the container runs, healthy, to the current spec.',
  },
  {
    name: 'Restarts',
    type: 'integer',
    jsonPath: '.status.restartCount',
    description: 'Restarts by the controller after the container exited.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Image', type: 'string', jsonPath: '.spec.image', priority: 1 },
  { name: 'Container', type: 'string', jsonPath: '.status.containerId', priority: 1 },
  {
    name: 'Reason',
    type: 'string',
    jsonPath: `${READY}.reason`,
    priority: 1,
    description: 'Why the session is, or is not, ready.',
  },
];

/** The CustomResourceDefinition of Sessions. */
export function sessionCrd(): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: crdOpenApiSchema() },
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
        },
      ],
    },
  };
}

export function renderJsonSchema(): string {
  return `${JSON.stringify(sessionJsonSchema(), null, 2)}\n`;
}

export function renderCrd(): string {
  const document = new Document(sessionCrd(), { version: '1.1' });
  document.commentBefore = [
    ` Generated from crds/session.ts and crds/status-schema.ts by crds/generate.ts: do not edit.`,
    ` Regenerate with \`${REGENERATE_COMMAND}\`.`,
  ].join('\n');
  // YAML 1.1 quoting, as Kubernetes reads YAML 1.1 (a bare yes or on is a boolean there); no line folding.
  return document.toString({ lineWidth: 0 });
}

/** The repository root: the nearest folder above this file (in crds/ or dist/crds/) with a package.json. */
export function repoRoot(from = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`generate: no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

/** Every generated file, by path relative to the repository root. */
export function generatedFiles(): Record<string, string> {
  return { [JSON_SCHEMA_FILE]: renderJsonSchema(), [CRD_FILE]: renderCrd() };
}

/** The generated files whose content on disk differs from what generation gives now. */
export function staleFiles(root = repoRoot()): string[] {
  return Object.entries(generatedFiles())
    .filter(
      ([file, content]) =>
        !existsSync(path.join(root, file)) || readFileSync(path.join(root, file), 'utf8') !== content,
    )
    .map(([file]) => file);
}

function main(argv: string[]): number {
  const root = repoRoot();
  if (argv.includes('--check')) {
    const stale = staleFiles(root);
    for (const file of stale) console.error(`${file} is stale: run \`${REGENERATE_COMMAND}\``);
    return stale.length > 0 ? 1 : 0;
  }
  for (const [file, content] of Object.entries(generatedFiles())) {
    const target = path.join(root, file);
    const unchanged = existsSync(target) && readFileSync(target, 'utf8') === content;
    if (!unchanged) writeFileSync(target, content);
    console.log(`${file} ${unchanged ? 'unchanged' : 'written'}`);
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
