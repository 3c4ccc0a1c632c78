/**
 * The docs stay true to the code: generated tables current, every config variable described, every
 * metric and alert documented, relative links resolving, and the README short with an accurate layout.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { envVariableNames } from '../../docs/generate/configuration';
import { generatedPages } from '../../docs/generate/main';
import { sectionOf } from '../../docs/generate/markers';
import { METRIC_SOURCES, metricsOf } from '../../docs/generate/metrics';
import { GENERATED_SECTIONS } from '../../docs/generate/sections';
import { VARIABLES } from '../../src/config/variables';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const README_MAX_LINES = 200;
const RULES_FILE = 'deploy/prometheus/rules.yml';
const RUNBOOK_PAGE = 'docs/operations.md';

/** Folders that are build output or local state, never documentation (as in .gitignore). */
const IGNORED = new Set(['.git', 'node_modules', 'dist', '.sessionctl', 'coverage']);

/** The repository's files: git's view (tracked and new), or the tree when this is not a git checkout. */
function repositoryFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
      cwd: ROOT,
      encoding: 'utf8',
    })
      .split('\n')
      .filter((file) => file !== '');
  } catch {
    const walk = (dir: string): string[] =>
      readdirSync(path.join(ROOT, dir), { withFileTypes: true })
        .filter((entry) => !IGNORED.has(entry.name))
        .flatMap((entry) => (entry.isDirectory() ? walk(path.join(dir, entry.name)) : [path.join(dir, entry.name)]));
    return walk('');
  }
}

/** Every markdown file that is part of the repository's documentation. */
function markdownFiles(): string[] {
  return repositoryFiles().filter(
    (file) => file.endsWith('.md') && !file.startsWith('test/bench/results/') && existsSync(path.join(ROOT, file)),
  );
}

/** GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const match of withoutCode.matchAll(/^#{1,6} (.+?)\s*#*\s*$/gm)) {
    const text = match[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return anchors;
}

/** Inline links and images, outside code blocks and code spans. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1]);
}

function alerts(): Array<{ alert: string; annotations?: Record<string, string> }> {
  const rules = parse(read(RULES_FILE)) as {
    groups: Array<{ rules: Array<{ alert?: string; annotations?: Record<string, string> }> }>;
  };
  return rules.groups
    .flatMap((group) => group.rules)
    .filter((rule): rule is { alert: string; annotations?: Record<string, string> } => rule.alert !== undefined);
}

describe('generated tables', () => {
  const pages = generatedPages(ROOT);

  it.each(GENERATED_SECTIONS.map((section) => [section.file, section.id] as const))(
    '%s (%s) is current: run npm run docs:generate',
    (file, id) => {
      expect(sectionOf(read(file), id, file)).toBe(sectionOf(pages.get(file)!, id, file));
    },
  );

  it('describes every variable the config schema reads, and no other', () => {
    const names = envVariableNames();
    expect(names.filter((name) => !VARIABLES[name]?.description?.trim())).toEqual([]);
    expect(Object.keys(VARIABLES).filter((name) => !names.includes(name as never))).toEqual([]);
    const page = read('docs/configuration.md');
    expect(names.filter((name) => !page.includes(`\`${name}\``))).toEqual([]);
  });

  it('documents every registered metric of every source', () => {
    const page = read('docs/metrics.md');
    const metrics = METRIC_SOURCES.flatMap((source) => metricsOf(source));
    expect(metrics.length).toBeGreaterThan(30);
    expect(metrics.filter((metric) => !page.includes(`| \`${metric.name}\` |`)).map((metric) => metric.name)).toEqual(
      [],
    );
    expect(metrics.filter((metric) => metric.help.trim() === '').map((metric) => metric.name)).toEqual([]);
  });
});

describe('runbooks', () => {
  it(`gives every alert in ${RULES_FILE} a "## Runbook: <alert>" section in ${RUNBOOK_PAGE}, and its runbook_url points there`, () => {
    const anchors = anchorsOf(read(RUNBOOK_PAGE));
    const list = alerts();
    expect(list.length).toBeGreaterThan(0);
    const problems = list.flatMap(({ alert, annotations }) => {
      const anchor = `runbook-${alert.toLowerCase()}`;
      const url = annotations?.runbook_url ?? '';
      return [
        ...(anchors.has(anchor) ? [] : [`${alert}: no "## Runbook: ${alert}" section in ${RUNBOOK_PAGE}`]),
        ...(url.endsWith(`/${RUNBOOK_PAGE}#${anchor}`)
          ? []
          : [`${alert}: runbook_url ${url || '(none)'} does not end with /${RUNBOOK_PAGE}#${anchor}`]),
      ];
    });
    expect(problems).toEqual([]);
  });
});

describe('links', () => {
  it('every relative link in the markdown files points to a file (and heading) that exists', () => {
    const broken: string[] = [];
    const files = markdownFiles();
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/operations.md']));
    for (const file of files) {
      for (const link of linksOf(read(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
        const [target, anchor] = link.split('#');
        const resolved =
          target === '' ? file : path.normalize(path.join(path.dirname(file), decodeURIComponent(target)));
        if (!existsSync(path.join(ROOT, resolved))) {
          broken.push(`${file}: ${link} (no ${resolved})`);
        } else if (anchor && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(anchor)) {
          broken.push(`${file}: ${link} (no heading #${anchor} in ${resolved})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('README', () => {
  const readme = read('README.md');

  it(`is at most ${README_MAX_LINES} lines: reference material belongs in docs/`, () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('lists every top-level directory and every src/ folder in its layout', () => {
    const layout = /^## Layout\n+```\n([\s\S]*?)^```/m.exec(readme)?.[1] ?? '';
    expect(layout).not.toBe('');
    const entries = new Set([...layout.matchAll(/^\s*([\w.-]+)\/\s/gm)].map((match) => match[1]));
    const tracked = repositoryFiles();
    const topLevel = new Set(tracked.filter((file) => file.includes('/')).map((file) => file.split('/')[0]));
    const srcFolders = readdirSync(path.join(ROOT, 'src')).filter((name) =>
      statSync(path.join(ROOT, 'src', name)).isDirectory(),
    );
    expect({ missing: [...topLevel, ...srcFolders].filter((name) => !entries.has(name)) }).toEqual({ missing: [] });
    // And nothing that no longer exists.
    expect({ stale: [...entries].filter((name) => !topLevel.has(name) && !srcFolders.includes(name)) }).toEqual({
      stale: [],
    });
  });

  it('carries no dated benchmark narrative or commit hash', () => {
    expect(readme).not.toMatch(/\b20\d\d-\d\d-\d\d\b/);
    expect(readme).not.toMatch(/\b[0-9a-f]{7,40}\b/);
  });
});
