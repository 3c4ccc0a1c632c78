/**
 * JSON Schema as the generator works on it: z.toJSONSchema with the places it met a refinement it
 * could not translate, a JSON pointer lookup, a depth-first walk over every schema node, and the
 * fixed keyword order that makes the generated files deterministic. crds/generate.ts and
 * crds/session-crd.ts build the published schemas with these.
 */
import { z } from 'zod';

export type Schema = { [keyword: string]: unknown };

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
export function convert(
  schema: z.ZodType,
  target: 'draft-2020-12' | 'openapi-3.0',
): { json: Schema; refined: Set<string> } {
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

export function at(root: Schema, jsonPointer: string): Schema {
  let node: unknown = root;
  for (const segment of jsonPointer.split('/').slice(1)) {
    node = (node as Schema | undefined)?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  if (typeof node !== 'object' || node === null) throw new Error(`generate: no schema at ${jsonPointer}`);
  return node as Schema;
}

/** Applies `visit` to every schema node, depth first, children before parents. */
export function walk(node: Schema, visit: (node: Schema, where: string) => void, where = ''): void {
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
export function ordered(node: Schema): Schema {
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

/** Drops a format that JSON Schema validators or Kubernetes would not know; its pattern must say the same. */
export function dropUnknownFormats(node: Schema): void {
  if (typeof node.format === 'string' && !KNOWN_FORMATS.has(node.format)) {
    if (node.pattern === undefined) throw new Error(`generate: format ${node.format} has no pattern to stand for it`);
    delete node.format;
  }
}
