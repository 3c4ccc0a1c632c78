/**
 * Reading Session manifests: files, directories and stdin, multi-document YAML or JSON.
 * Every problem names the file, the line and column, and the field path.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { validateDocument, type SessionDocument } from '../../crds/session';
import { HOST_KIND, validateDockerHost, type DockerHostDocument } from '../../crds/docker-host';

export interface Manifest {
  source: string;
  document: SessionDocument;
  /** As written, for storing the user's intent without defaults filled in. */
  rawSpec: object;
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export function manifestFiles(target: string, recursive: boolean): string[] {
  if (target === '-') return ['-'];
  const stats = statSync(target, { throwIfNoEntry: false });
  if (!stats) throw new ManifestError([`${target}: no such file or directory`]);
  if (!stats.isDirectory()) return [target];
  return readdirSync(target, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = path.join(target, entry.name);
      if (entry.isDirectory()) return recursive ? manifestFiles(full, true) : [];
      return MANIFEST_EXTENSIONS.has(path.extname(entry.name)) ? [full] : [];
    });
}

export interface HostManifest {
  source: string;
  document: DockerHostDocument;
}

export interface ReadOptions {
  recursive: boolean;
  stdin?: () => string;
  /** Where `kind: DockerHost` documents go; without it they are refused (only apply takes them). */
  hosts?: HostManifest[];
}

/** Parses and validates every document; throws one ManifestError listing all problems. */
export function readManifests(targets: string[], options: ReadOptions): Manifest[] {
  const problems: string[] = [];
  const manifests: Manifest[] = [];
  const hosts: HostManifest[] = [];
  for (const file of targets.flatMap((target) => manifestFiles(target, options.recursive))) {
    const text = file === '-' ? (options.stdin ?? (() => readFileSync(0, 'utf8')))() : readFileSync(file, 'utf8');
    const label = file === '-' ? '<stdin>' : file;
    const lineCounter = new LineCounter();
    for (const document of parseAllDocuments(text, { lineCounter, prettyErrors: false })) {
      if (document.errors.length > 0) {
        for (const error of document.errors) {
          const position = lineCounter.linePos(error.pos[0]);
          problems.push(
            `${label}:${position.line}:${position.col}: YAML syntax error: ${error.message.split('\n')[0]}`,
          );
        }
        continue;
      }
      const value: unknown = document.toJS();
      if (value === null || value === undefined) continue;
      if ((value as { kind?: unknown }).kind === HOST_KIND) {
        const validation = validateDockerHost(value);
        if (!options.hosts) {
          const position = lineCounter.linePos(sourceOffset(document, 'kind'));
          problems.push(
            `${label}:${position.line}:${position.col}: kind: ${HOST_KIND} documents are taken by \`sessionctl apply -f\` only`,
          );
        } else if (validation.ok) {
          hosts.push({ source: label, document: validation.value });
        } else {
          for (const problem of validation.problems) {
            const position = lineCounter.linePos(sourceOffset(document, problem.path));
            problems.push(`${label}:${position.line}:${position.col}: ${problem.path}: ${problem.message}`);
          }
        }
        continue;
      }
      const validation = validateDocument(value);
      if (!validation.ok) {
        for (const problem of validation.problems) {
          const position = lineCounter.linePos(sourceOffset(document, problem.path));
          problems.push(`${label}:${position.line}:${position.col}: ${problem.path}: ${problem.message}`);
        }
        continue;
      }
      manifests.push({ source: label, document: validation.value, rawSpec: (value as { spec: object }).spec });
    }
  }
  problems.push(...duplicates('session', manifests), ...duplicates('host', hosts));
  if (problems.length > 0) throw new ManifestError(problems);
  options.hosts?.push(...hosts);
  return manifests;
}

function duplicates(kind: string, manifests: Array<{ source: string; document: { metadata: { name: string } } }>) {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const manifest of manifests) {
    const name = manifest.document.metadata.name;
    if (seen.has(name)) problems.push(`${manifest.source}: ${kind} "${name}" is also defined in ${seen.get(name)}`);
    seen.set(name, manifest.source);
  }
  return problems;
}

/**
 * Where a field path points in the source: the key of its last segment when it exists (an unknown or
 * wrongly typed field is reported on its own line), else the closest ancestor that does.
 */
function sourceOffset(document: Document, fieldPath: string): number {
  const segments = fieldPath
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter(Boolean);
  let node: unknown = document.contents;
  let offset = document.contents?.range?.[0] ?? 0;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === segment);
      if (!pair) break;
      offset = (isScalar(pair.key) && pair.key.range?.[0]) || offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)] as { range?: [number, number] } | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
