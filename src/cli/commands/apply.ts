/**
 * `sessionctl apply` and `sessionctl diff`: declarative specs from files, validated as a whole
 * before anything is written, written in one transaction, optionally pruned and waited for.
 */
import type { Command } from 'commander';
import { diffValues, formatChange } from '../spec-diff';
import { followSessions } from '../progress';
import { CommandError, withClient } from '../context';
import { parseDuration } from '../format';
import { readManifests, type HostManifest, type Manifest } from '../manifests';
import type { Pool } from 'pg';
import { hostWrite } from './hosts';
import { upsertHosts } from '../../store/hosts';
import { pruneSessions, upsertSessions } from '../../store/sessions';
import { parseSelector, type Requirement } from '../../store/selector';

interface ApplyOptions {
  filename: string[];
  recursive: boolean;
  dryRun: boolean;
  prune: boolean;
  selector?: string;
  wait: boolean;
  timeout: string;
}

export function registerApply(program: Command): void {
  program
    .command('apply')
    .description('Create or update sessions and DockerHosts from YAML or JSON manifests, all in one transaction')
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin (repeatable)')
    .option('-R, --recursive', 'read directories recursively', false)
    .option('--dry-run', 'write nothing; print what would happen', false)
    .option('--prune', 'delete sessions matching -l that the files no longer contain', false)
    .option('-l, --selector <selector>', 'label selector for --prune, e.g. team=law,tier!=free')
    .option('--wait', 'follow the sessions until Ready (or stopped as asked) and fail if one does not get there', false)
    .option('--timeout <duration>', 'how long --wait waits', '60s')
    .addHelpText(
      'after',
      '\nExamples:\n  sessionctl apply -f crds/examples/\n  sessionctl apply -R -f specs/ --prune -l team=law --wait --timeout 2m\n  cat alice.yaml | sessionctl apply -f - --dry-run',
    )
    .action((options: ApplyOptions) => apply(options));

  program
    .command('diff')
    .description('Show what apply would change, field by field (exit 1 when there are differences, as kubectl diff)')
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin')
    .option('-R, --recursive', 'read directories recursively', false)
    .addHelpText('after', '\nExample:\n  sessionctl diff -f specs/alice.yaml')
    .action((options: { filename: string[]; recursive: boolean }) => diff(options));
}

/** Hosts, sessions and the prune in one transaction; a dry run goes through the same statements and rolls back. */
async function writeManifests(
  pool: Pool,
  manifests: Manifest[],
  hosts: HostManifest[],
  dryRun: boolean,
  pruneSelector: Requirement[] | undefined,
) {
  const connection = await pool.connect();
  try {
    await connection.query('BEGIN');
    // Hosts first: a file may declare a host and the sessions meant for it.
    const hostResults = await upsertHosts(connection, hosts.map(hostWrite));
    const results = await upsertSessions(
      connection,
      manifests.map((manifest) => ({
        name: manifest.document.metadata.name,
        labels: manifest.document.metadata.labels,
        spec: manifest.rawSpec,
      })),
    );
    const pruned = pruneSelector
      ? await pruneSessions(
          connection,
          pruneSelector,
          results.map((result) => result.name),
        )
      : [];
    await connection.query(dryRun ? 'ROLLBACK' : 'COMMIT');
    return { hostResults, results, pruned };
  } catch (error) {
    await connection.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    connection.release();
  }
}

async function apply(options: ApplyOptions): Promise<void> {
  if (options.prune && !options.selector)
    throw new CommandError('--prune needs -l SELECTOR, so that only sessions you own can be pruned', 2);
  const selector = options.selector ? parseSelector(options.selector) : undefined;
  const timeoutMs = parseDuration(options.timeout);
  const hosts: HostManifest[] = [];
  const manifests = readManifests(options.filename, { recursive: options.recursive, hosts });
  const suffix = options.dryRun ? ' (dry run)' : '';
  await withClient(async ({ pool, client }) => {
    const { hostResults, results, pruned } = await writeManifests(
      pool,
      manifests,
      hosts,
      options.dryRun,
      options.prune ? selector : undefined,
    );
    for (const result of hostResults) console.log(`dockerhost/${result.name} ${result.outcome}${suffix}`);
    for (const result of results) console.log(`session/${result.name} ${result.outcome}${suffix}`);
    for (const name of pruned) console.log(`session/${name} pruned${suffix}`);
    if (!options.wait || options.dryRun) return;
    const [failures, deletions] = await Promise.all([
      followSessions(
        client,
        results.map((result) => result.name),
        { timeoutMs, out: process.stdout },
      ),
      Promise.allSettled(pruned.map((name) => client.waitFor(name, 'Deleted', { timeoutMs }))),
    ]);
    deletions.forEach((outcome, index) => {
      if (outcome.status === 'rejected')
        failures.push({ name: pruned[index], detail: `not deleted in time: ${(outcome.reason as Error).message}` });
    });
    if (failures.length > 0) {
      throw new CommandError(
        `${failures.length} session(s) did not become ready:\n${failures.map((failure) => `  session/${failure.name}: ${failure.detail}`).join('\n')}`,
      );
    }
  });
}

async function diff(options: { filename: string[]; recursive: boolean }): Promise<void> {
  const manifests = readManifests(options.filename, { recursive: options.recursive });
  const differences = await withClient(async ({ client }) => {
    const current = new Map(
      (await client.getMany(manifests.map((manifest) => manifest.document.metadata.name))).map((session) => [
        session.metadata.name,
        session,
      ]),
    );
    let count = 0;
    for (const manifest of manifests) {
      const name = manifest.document.metadata.name;
      const existing = current.get(name);
      const changes = [
        ...diffValues(
          existing?.metadata.labels ?? (existing ? {} : undefined),
          manifest.document.metadata.labels,
          'metadata.labels',
        ),
        ...diffValues(existing?.spec, manifest.rawSpec, 'spec'),
      ].filter(
        (change) =>
          !(
            existing === undefined &&
            change.path === 'metadata.labels' &&
            Object.keys(manifest.document.metadata.labels).length === 0
          ),
      );
      if (changes.length === 0) continue;
      count++;
      console.log(`session/${name}${existing ? '' : ' (new)'}`);
      for (const change of changes) console.log(`  ${formatChange(change)}`);
    }
    return count;
  });
  if (differences > 0) throw new CommandError('', 1);
}
