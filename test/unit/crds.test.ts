/**
 * The generated schemas (crds/generate.ts): committed files up to date, the JSON Schema accepting every
 * shipped example and refusing what zod refuses (where JSON Schema can say it), and the CRD structural.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import { parse, parseAllDocuments, parseDocument } from 'yaml';
import {
  CRD_FILE,
  JSON_SCHEMA_FILE,
  REGENERATE_COMMAND,
  generatedFiles,
  repoRoot,
  sessionJsonSchema,
} from '../../crds/generate';
import type { Schema } from '../../crds/json-schema';
import { CPU_QUANTITY_PATTERN, MEMORY_QUANTITY_PATTERN } from '../../crds/refinements';
import { sessionCrd } from '../../crds/session-crd';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { SESSION_NAME_PATTERN, validateDocument } from '../../crds/session';
import { sessionStatusSchema } from '../../crds/status-schema';

const ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLES = path.join(ROOT, 'crds', 'examples');

// Checked as generated (as text, so that rendering is covered too); the first test holds the files on disk to it.
const generated = generatedFiles();
const jsonSchemaValidator = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(
  JSON.parse(generated[JSON_SCHEMA_FILE]),
);
const errorsOf = (document: unknown) =>
  jsonSchemaValidator(document)
    ? []
    : (jsonSchemaValidator.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}`);

const crd = parse(generated[CRD_FILE]) as Schema;
const crdVersion = (crd.spec as { versions: Schema[] }).versions[0];
const openAPIV3Schema = (crdVersion.schema as { openAPIV3Schema: Schema }).openAPIV3Schema;
// Kubernetes' extensions are not JSON Schema; plain draft-07 semantics are close enough to check values against the CRD.
const crdValidator = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(openAPIV3Schema);

interface Example {
  file: string;
  document: Record<string, any>;
}

const examples: Example[] = readdirSync(EXAMPLES)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(EXAMPLES, file), 'utf8'))
      .map((document) => {
        if (document.errors.length > 0)
          throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
        return document.toJS() as Record<string, any> | null;
      })
      .filter((document): document is Record<string, any> => document !== null)
      .map((document) => ({ file, document })),
  );

const valid = () => ({
  apiVersion: 'sessionctl.dev/v1alpha1',
  kind: 'Session',
  metadata: { name: 'valid', labels: { team: 'law' } },
  spec: {
    image: 'sessionctl/base:dev',
    env: { A: '1' },
    ports: [{ name: 'http', containerPort: 8080 }],
    resources: { memory: '64Mi', cpus: '0.5', pids: 64 },
  },
});

describe('generated files', () => {
  it(`are up to date (else run \`${REGENERATE_COMMAND}\`)`, () => {
    const stale: string[] = [];
    for (const [file, content] of Object.entries(generated)) {
      let onDisk: string | undefined;
      try {
        onDisk = readFileSync(path.join(ROOT, file), 'utf8');
      } catch {
        onDisk = undefined;
      }
      if (onDisk === content) continue;
      if (onDisk === undefined) {
        stale.push(`${file} is missing`);
        continue;
      }
      const want = content.split('\n');
      const have = onDisk.split('\n');
      const line = want.findIndex((text, index) => text !== have[index]);
      stale.push(
        `${file} differs from line ${line + 1}: expected ${JSON.stringify(want[line])}, found ${JSON.stringify(have[line])}`,
      );
    }
    if (stale.length > 0) {
      throw new Error(
        `The generated schemas are stale: run \`${REGENERATE_COMMAND}\` and commit the result.\n${stale.join('\n')}`,
      );
    }
  });

  it('are the same bytes every time', () => {
    expect(generatedFiles()).toEqual(generatedFiles());
  });

  it('finds the repository root from the source and from dist/', () => {
    expect(repoRoot(path.join(ROOT, 'crds'))).toBe(ROOT);
    expect(repoRoot(path.join(ROOT, 'dist', 'crds'))).toBe(ROOT);
  });
});

describe('JSON Schema', () => {
  const schema = sessionJsonSchema();

  it('is draft 2020-12 with an id, a title and a description on every property', () => {
    expect(schema).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: expect.stringMatching(/^https:\/\//),
      title: expect.any(String),
      description: expect.any(String),
    });
    const undocumented: string[] = [];
    const visit = (node: Schema, where: string) => {
      for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Schema>)) {
        if (typeof child.description !== 'string' || child.description.length === 0)
          undocumented.push(`${where}.${name}`);
        visit(child, `${where}.${name}`);
      }
      if (node.items) visit(node.items as Schema, `${where}[]`);
    };
    visit(schema, '');
    expect(undocumented).toEqual([]);
  });

  it('leaves defaulted fields optional, as writers may omit them', () => {
    const spec = (schema.properties as Record<string, Schema>).spec;
    expect(spec.required).toEqual(['image']);
    expect((spec.properties as Record<string, Schema>).state).toMatchObject({ default: 'Running' });
  });

  it.each(examples.map((example) => [`${example.file}: ${example.document.metadata?.name}`, example] as const))(
    'accepts the example %s, as zod does',
    (_, example) => {
      expect(validateDocument(example.document)).toMatchObject({ ok: true });
      expect(errorsOf(example.document)).toEqual([]);
    },
  );

  const invalid: Array<[string, (document: ReturnType<typeof valid>) => void]> = [
    [
      'a port number of the wrong type',
      (document) => Object.assign(document.spec.ports[0], { containerPort: 'eighty' }),
    ],
    ['an unknown spec field', (document) => Object.assign(document.spec, { enviroment: {} })],
    ['an unknown top-level field', (document) => Object.assign(document, { status: {} })],
    ['a name that is not a DNS-1123 label', (document) => Object.assign(document.metadata, { name: 'Not_A_Label' })],
    ['a missing image', (document) => delete (document.spec as { image?: string }).image],
    ['another apiVersion', (document) => Object.assign(document, { apiVersion: 'sessionctl.dev/v1' })],
    ['a state that does not exist', (document) => Object.assign(document.spec, { state: 'Paused' })],
    ['memory that is not a quantity', (document) => Object.assign(document.spec.resources, { memory: 'lots' })],
    ['cpus that are not a number', (document) => Object.assign(document.spec.resources, { cpus: 'two' })],
    ['negative cpus', (document) => Object.assign(document.spec.resources, { cpus: -1 })],
    ['too few pids', (document) => Object.assign(document.spec.resources, { pids: 8 })],
    [
      'an environment variable name starting with a digit',
      (document) => Object.assign(document.spec, { env: { '1A': 'x' } }),
    ],
    ['a label key with two slashes', (document) => Object.assign(document.metadata, { labels: { 'a/b/c': 'x' } })],
    ['a relative working directory', (document) => Object.assign(document.spec, { workingDir: 'tmp' })],
  ];

  it('accepts the document these cases start from', () => {
    expect(errorsOf(valid())).toEqual([]);
    expect(validateDocument(valid())).toMatchObject({ ok: true });
  });

  it.each(invalid)('refuses %s, as zod does', (_, change) => {
    const document = valid();
    change(document);
    expect(errorsOf(document)).not.toEqual([]);
    expect(validateDocument(document)).toMatchObject({ ok: false });
  });

  // What JSON Schema cannot say: zod's refinements beyond syntax. Documented in the schema's $comments.
  it.each([
    [
      'memory under 6Mi',
      (document: ReturnType<typeof valid>) => Object.assign(document.spec.resources, { memory: '1k' }),
    ],
    ['zero cpus', (document: ReturnType<typeof valid>) => Object.assign(document.spec.resources, { cpus: '0' })],
    [
      'duplicate port names',
      (document: ReturnType<typeof valid>) => document.spec.ports.push({ name: 'http', containerPort: 9090 }),
    ],
  ])('leaves %s to zod', (_, change) => {
    const document = valid();
    change(document);
    expect(errorsOf(document)).toEqual([]);
    expect(validateDocument(document)).toMatchObject({ ok: false });
  });
});

describe('quantity patterns', () => {
  const memory = new RegExp(MEMORY_QUANTITY_PATTERN, 'u');
  const cpus = new RegExp(CPU_QUANTITY_PATTERN, 'u');

  it.each([
    '256Mi',
    '1g',
    '1Gi',
    '1GB',
    '512m',
    '1073741824',
    '1.5g',
    ' 64 Mi ',
    '10k',
    '7b',
    '1tb',
    'lots',
    '',
    '1x',
    '-1g',
    'Mi',
    '1bi',
    '1e3',
    '1.g',
    '.5g',
    '1 G i',
    '1\tm',
  ])('memory %p matches exactly when crds/quantity.ts reads it', (text) =>
    expect(memory.test(text)).toBe(parseMemoryBytes(text) !== undefined),
  );

  it.each([
    '0.5',
    '2',
    '500m',
    '.25',
    ' 1 ',
    '1.123456789',
    '1.1234567891',
    '-1',
    'abc',
    '1e3',
    '1.',
    '0.5m',
    'm',
    '',
    '1 m',
  ])('cpus %p match exactly when crds/quantity.ts reads them', (text) =>
    expect(cpus.test(text)).toBe(parseNanoCpus(text) !== undefined),
  );
});

describe('CustomResourceDefinition', () => {
  it('says it is generated, and reads the same as YAML 1.1 (as Kubernetes reads it) and 1.2', () => {
    const text = generated[CRD_FILE];
    expect(text.startsWith('# Generated')).toBe(true);
    expect(text).toContain(REGENERATE_COMMAND);
    expect(parseDocument(text, { version: '1.1' }).toJS()).toEqual(crd);
    expect(crd).toEqual(sessionCrd());
  });

  it('names the resource', () => {
    expect(crd).toMatchObject({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'sessions.sessionctl.dev' },
      spec: {
        group: 'sessionctl.dev',
        scope: 'Namespaced',
        names: { kind: 'Session', plural: 'sessions', singular: 'session', shortNames: ['sess'] },
      },
    });
    expect((crd.spec as { versions: Schema[] }).versions).toHaveLength(1);
    expect(crdVersion).toMatchObject({ name: 'v1alpha1', served: true, storage: true, subresources: { status: {} } });
  });

  it('prints the columns of `sessionctl get sessions`', () => {
    const columns = (
      crdVersion.additionalPrinterColumns as Array<{ name: string; type: string; jsonPath: string; priority?: number }>
    ).map((column) => [column.name.toUpperCase(), column.jsonPath, column.type, column.priority ?? 0]);
    expect(columns).toEqual([
      ['STATE', '.spec.state', 'string', 0],
      ['PHASE', '.status.phase', 'string', 0],
      ['READY', '.status.conditions[?(@.type=="Ready")].status', 'string', 0],
      ['RESTARTS', '.status.restartCount', 'integer', 0],
      ['AGE', '.metadata.creationTimestamp', 'date', 0],
      ['IMAGE', '.spec.image', 'string', 1],
      ['CONTAINER', '.status.containerId', 'string', 1],
      ['REASON', '.status.conditions[?(@.type=="Ready")].reason', 'string', 1],
    ]);
  });

  // The fields of apiextensions.k8s.io/v1 JSONSchemaProps that this generator may use.
  const ALLOWED = new Set([
    'description',
    'type',
    'format',
    'enum',
    'default',
    'pattern',
    'minLength',
    'maxLength',
    'minimum',
    'maximum',
    'exclusiveMinimum',
    'exclusiveMaximum',
    'minItems',
    'maxItems',
    'items',
    'properties',
    'required',
    'additionalProperties',
    'anyOf',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
  ]);

  it('has a structural openAPIV3Schema', () => {
    const problems: string[] = [];
    const visit = (node: Schema, where: string, level: 'root' | 'field' | 'item') => {
      for (const key of Object.keys(node))
        if (!ALLOWED.has(key)) problems.push(`${where}: ${key} is not used in a CRD schema`);
      const intOrString = node['x-kubernetes-int-or-string'] === true;
      if (intOrString) {
        if (node.type !== undefined) problems.push(`${where}: int-or-string has no type`);
        if (JSON.stringify(node.anyOf) !== JSON.stringify([{ type: 'integer' }, { type: 'string' }]))
          problems.push(`${where}: int-or-string anyOf must be [integer, string]`);
      } else {
        if (typeof node.type !== 'string' || node.type === '') problems.push(`${where}: no type`);
        if (node.anyOf !== undefined) problems.push(`${where}: anyOf outside of int-or-string`);
      }
      if (level === 'root' && node.type !== 'object') problems.push(`${where}: root is not an object`);
      if (node.type === 'array' && node.items === undefined) problems.push(`${where}: array without items`);
      if (node.additionalProperties !== undefined) {
        if (typeof node.additionalProperties !== 'object')
          problems.push(`${where}: additionalProperties must be a schema`);
        if (node.properties !== undefined) problems.push(`${where}: properties and additionalProperties together`);
        if (level === 'root') problems.push(`${where}: additionalProperties at the root`);
      }
      if (typeof node.pattern === 'string' && /\(\?[=!<]|\\[1-9]/.test(node.pattern))
        problems.push(`${where}: pattern is not RE2 (lookaround or backreference)`);
      if (typeof node.pattern === 'string') {
        try {
          new RegExp(node.pattern, 'u');
        } catch (error) {
          problems.push(`${where}: pattern ${node.pattern}: ${String(error)}`);
        }
      }
      const listKeys = node['x-kubernetes-list-map-keys'] as string[] | undefined;
      if (listKeys) {
        const item = node.items as Schema;
        const required = (item.required ?? []) as string[];
        for (const key of listKeys) {
          const field = (item.properties as Record<string, Schema>)[key];
          if (!field || (!required.includes(key) && field.default === undefined))
            problems.push(`${where}: list-map key ${key} is neither required nor defaulted`);
        }
      }
      for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Schema>))
        visit(child, `${where}.${name}`, 'field');
      if (typeof node.items === 'object') visit(node.items as Schema, `${where}[]`, 'item');
      if (typeof node.additionalProperties === 'object')
        visit(node.additionalProperties as Schema, `${where}{}`, 'field');
    };
    visit(openAPIV3Schema, 'openAPIV3Schema', 'root');
    expect(problems).toEqual([]);
    expect(JSON.stringify(openAPIV3Schema)).not.toContain('$ref');
  });

  it('restricts metadata to its name only, as Kubernetes requires', () => {
    const properties = openAPIV3Schema.properties as Record<string, Schema>;
    expect(properties.metadata).toEqual({
      type: 'object',
      properties: { name: { type: 'string', pattern: SESSION_NAME_PATTERN.source } },
    });
    expect(properties.apiVersion.type).toBe('string');
    expect(properties.kind.type).toBe('string');
    expect(Object.keys(properties)).toEqual(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  });

  it.each(examples.map((example) => [`${example.file}: ${example.document.metadata?.name}`, example] as const))(
    'accepts the example %s',
    (_, example) => {
      expect(crdValidator(example.document)).toBe(true);
    },
  );

  it('accepts a status the controller writes, and the status schema agrees', () => {
    const now = new Date(0).toISOString();
    const status = {
      observedGeneration: 2,
      phase: 'Running',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'SessionReady',
          message: 'the container is running and healthy',
          lastTransitionTime: now,
          observedGeneration: 2,
        },
      ],
      host: 'local',
      containerId: 'f'.repeat(64),
      restartCount: 0,
      endpoints: { http: '127.0.0.1:49153' },
    };
    expect(sessionStatusSchema.safeParse(status).success).toBe(true);
    expect(crdValidator({ ...valid(), status })).toBe(true);
    expect(crdValidator({ ...valid(), status: { ...status, phase: 'Sleeping' } })).toBe(false);
  });
});

describe('examples', () => {
  it('have unique DNS-1123 names and use the image that exists offline', () => {
    const names = examples.map((example) => example.document.metadata.name as string);
    expect(new Set(names).size).toBe(names.length);
    for (const example of examples) {
      expect(example.document.metadata.name).toMatch(SESSION_NAME_PATTERN);
      expect(example.document.spec.image).toBe('sessionctl/base:dev');
    }
  });

  it('give every limited session at least 16Mi of memory', () => {
    for (const example of examples) {
      const memory = example.document.spec.resources?.memory as string | undefined;
      if (memory !== undefined) expect(parseMemoryBytes(memory)).toBeGreaterThanOrEqual(16 * 1024 ** 2);
    }
  });
});
