/**
 * Derives the published schemas of the Session resource from the zod schema, its single source of truth:
 *
 * - crds/session.schema.json: JSON Schema (draft 2020-12) of a Session document as writers send it
 *   (defaults may be omitted), for editors, linters and other services that write rows;
 * - crds/session.crd.yaml: a Kubernetes CustomResourceDefinition with a structural openAPIV3Schema,
 *   the status schema (crds/status-schema.ts) and the printer columns of `sessionctl get sessions`
 *   (crds/session-crd.ts).
 *
 *   npm run crds:generate                (tsc, then node dist/crds/generate.js)
 *   node dist/crds/generate.js --check   (exit 1 when the files on disk are stale; writes nothing)
 *
 * Output is deterministic: keywords are written in a fixed order and properties in the zod shape's order
 * (crds/json-schema.ts).
 *
 * What JSON Schema cannot say: zod's refine/superRefine are code, and z.toJSONSchema drops them silently.
 * Every refinement in the schema must be listed in REFINEMENTS (crds/refinements.ts; generation fails
 * otherwise), with the keywords that approximate it, if any, and a note of what remains checked by
 * sessionctl only; the note becomes a `$comment` in the JSON Schema. Kubernetes' structural schemas drop
 * more (see toStructural in crds/session-crd.ts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Document } from 'yaml';
import { API_VERSION, KIND, sessionDocumentSchema } from './session';
import { at, convert, dropUnknownFormats, ordered, walk, type Schema } from './json-schema';
import { REFINEMENTS, checkRefinementsAccountedFor } from './refinements';
import { GROUP, VERSION, sessionCrd } from './session-crd';

export const SCHEMA_ID = `https://${GROUP}/schemas/${VERSION}/session.schema.json`;
export const REGENERATE_COMMAND = 'npm run crds:generate';

export const JSON_SCHEMA_FILE = 'crds/session.schema.json';
export const CRD_FILE = 'crds/session.crd.yaml';

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
