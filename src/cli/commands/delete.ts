/**
 * `sessionctl delete` and `sessionctl wait`: deletion by name or by file, and waiting for a
 * condition or for deletion, as kubectl does.
 */
import type { Command } from 'commander';
import type { SessionClient, WaitCondition } from '../../client';
import { CommandError, sessionName, withClient } from '../context';
import { parseDuration } from '../format';
import { readManifests } from '../manifests';
import { checkResource } from './get';
import { deleteHostsCommand, isHostResource } from './hosts';

async function waitAll(
  client: SessionClient,
  names: string[],
  condition: WaitCondition,
  timeoutMs: number,
): Promise<void> {
  const outcomes = await Promise.allSettled(names.map((name) => client.waitFor(name, condition, { timeoutMs })));
  const failures = outcomes.flatMap((outcome, index) =>
    outcome.status === 'rejected' ? [`session/${names[index]}: ${(outcome.reason as Error).message}`] : [],
  );
  const label =
    condition === 'Deleted'
      ? 'deleted'
      : typeof condition === 'string'
        ? `condition met (${condition})`
        : `condition met (${condition.type}=${condition.status ?? 'True'})`;
  outcomes.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') console.log(`session/${names[index]} ${label}`);
  });
  if (failures.length) throw new CommandError(failures.join('\n'));
}

export function parseFor(text: string): WaitCondition {
  if (text === 'delete') return 'Deleted';
  const match = /^condition=([A-Za-z]+)(?:=(True|False|Unknown))?$/.exec(text);
  if (!match)
    throw new CommandError(
      `invalid --for "${text}": expected delete, condition=Ready or condition=TYPE=True|False|Unknown`,
      2,
    );
  return match[1] === 'Ready' && !match[2]
    ? 'Ready'
    : { type: match[1], status: (match[2] as 'True' | 'False' | 'Unknown') ?? 'True' };
}

export function registerDelete(program: Command): void {
  program
    .command('delete')
    .description(
      'Delete sessions by name or by manifest (the controller removes their containers first), or hosts by name',
    )
    .argument('[resource]', 'session or host')
    .argument('[names...]', 'session names')
    .option('-f, --filename <path...>', 'delete the sessions these manifests define')
    .option('-R, --recursive', 'read directories recursively', false)
    .option('--wait', 'wait until the rows are gone (containers removed)', false)
    .option('--timeout <duration>', 'how long --wait waits', '60s')
    .addHelpText('after', '\nExamples:\n  sessionctl delete session alice --wait\n  sessionctl delete -f specs/')
    .action(
      async (
        resource: string | undefined,
        references: string[],
        options: { filename?: string[]; recursive: boolean; wait: boolean; timeout: string },
      ) => {
        let names: string[];
        if (options.filename) {
          if (resource) throw new CommandError('give either -f FILE or session NAME..., not both', 2);
          names = readManifests(options.filename, { recursive: options.recursive }).map(
            (manifest) => manifest.document.metadata.name,
          );
        } else if (isHostResource(resource)) {
          if (options.wait) throw new CommandError('delete host takes no --wait: it is done when it returns', 2);
          return deleteHostsCommand(references);
        } else {
          if (!resource) throw new CommandError('nothing to delete: give session NAME... or -f FILE', 2);
          const inline = /\//.test(resource);
          if (!inline) checkResource(resource);
          names = [...(inline ? [resource] : []), ...references].map(sessionName);
          if (names.length === 0) throw new CommandError('nothing to delete: name at least one session', 2);
        }
        const timeoutMs = parseDuration(options.timeout);
        await withClient(async ({ client }) => {
          const deleted: string[] = [];
          const missing: string[] = [];
          for (const name of names) ((await client.delete(name)) ? deleted : missing).push(name);
          for (const name of deleted) console.log(`session/${name} deleted`);
          if (options.wait && deleted.length) await waitAll(client, deleted, 'Deleted', timeoutMs);
          if (missing.length) throw new CommandError(missing.map((name) => `session "${name}" not found`).join('\n'));
        });
      },
    );
  registerWait(program);
}

function registerWait(program: Command): void {
  program
    .command('wait')
    .description('Wait for sessions to meet a condition or to be deleted')
    .argument('<references...>', 'session/NAME ...')
    .requiredOption('--for <condition>', 'condition=Ready, condition=TYPE=STATUS, or delete')
    .option('--timeout <duration>', 'give up after this long (exit 1)', '30s')
    .addHelpText(
      'after',
      '\nExamples:\n  sessionctl wait session/alice --for=condition=Ready --timeout=60s\n  sessionctl wait session/alice --for=delete',
    )
    .action(async (references: string[], options: { for: string; timeout: string }) => {
      const condition = parseFor(options.for);
      const timeoutMs = parseDuration(options.timeout);
      await withClient(({ client }) => waitAll(client, references.map(sessionName), condition, timeoutMs));
    });
}
