/**
 * `npm run docs:generate`: rewrites the generated sections of docs/*.md from the code and the bench
 * results. With --check it writes nothing and exits 1 naming each stale page.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withSection } from './markers';
import { GENERATED_SECTIONS } from './sections';

/** The repository root, from dist/docs/generate or docs/generate. */
export function repoRoot(): string {
  const up = path.resolve(__dirname, '..', '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
}

/** Each page as it should be on disk. */
export function generatedPages(root = repoRoot()): Map<string, string> {
  const pages = new Map<string, string>();
  for (const section of GENERATED_SECTIONS) {
    const current = pages.get(section.file) ?? readFileSync(path.join(root, section.file), 'utf8');
    pages.set(section.file, withSection(current, section.id, section.render(root), section.file));
  }
  return pages;
}

function main(): void {
  const root = repoRoot();
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const [file, text] of generatedPages(root)) {
    if (readFileSync(path.join(root, file), 'utf8') === text) continue;
    stale.push(file);
    if (!check) writeFileSync(path.join(root, file), text);
  }
  if (check && stale.length > 0) {
    console.error(`stale generated docs: ${stale.join(', ')}. Run npm run docs:generate and commit the result.`);
    process.exitCode = 1;
  } else {
    console.log(stale.length === 0 ? 'docs: every generated section is current' : `docs: rewrote ${stale.join(', ')}`);
  }
}

if (require.main === module) main();
