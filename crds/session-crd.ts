/**
 * The Kubernetes CustomResourceDefinition of Sessions (crds/session.crd.yaml): the Session schema
 * made structural, as Kubernetes requires (see toStructural), with the status schema
 * (crds/status-schema.ts), list-map keys and the printer columns of `sessionctl get sessions`.
 * crds/generate.ts renders it.
 */
import { API_VERSION, KIND, sessionDocumentSchema } from './session';
import { sessionStatusSchema } from './status-schema';
import { at, convert, dropUnknownFormats, ordered, walk, type Schema } from './json-schema';
import { REFINEMENTS, checkRefinementsAccountedFor } from './refinements';

export const [GROUP, VERSION] = API_VERSION.split('/') as [string, string];
export const PLURAL = 'sessions';
export const SINGULAR = 'session';
export const SHORT_NAMES = ['sess'];

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
