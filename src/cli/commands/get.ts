/**
 * `sessionctl get sessions`: a kubectl-like table (or json, yaml, names), optionally watched live.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Session, WatchEvent } from '../../client';
import { CommandError, sessionName, withClient } from '../context';
import { escapeControl, escapeControlJson } from '../../display/escape';
import { age, table } from '../format';
import { matchesSelector, parseSelector } from '../../store/selector';
import { getHosts, isHostResource } from './hosts';

const OUTPUTS = ['wide', 'json', 'yaml', 'name'] as const;
type OutputFormat = (typeof OUTPUTS)[number] | undefined;

const COLUMNS = ['NAME', 'STATE', 'PHASE', 'READY', 'RESTARTS', 'AGE'];
const WIDE_COLUMNS = [...COLUMNS, 'IMAGE', 'CONTAINER', 'REASON'];

export function checkResource(resource: string): void {
  if (!['sessions', 'session', 'sess'].includes(resource)) {
    throw new CommandError(
      `unknown resource type "${resource}": sessionctl manages "sessions" (also "session", "sess") and "hosts" (also "host", "dockerhosts")`,
      2,
    );
  }
}

export function row(session: Session, wide: boolean): string[] {
  const ready = session.status.conditions?.find((condition) => condition.type === 'Ready');
  const cells = [
    session.metadata.name,
    String(session.spec.state ?? 'Running'),
    session.metadata.deletionTimestamp ? 'Terminating' : (session.status.phase ?? 'Pending'),
    ready?.status ?? 'Unknown',
    String(session.status.restartCount ?? 0),
    age(session.metadata.creationTimestamp),
  ];
  if (!wide) return cells;
  return [
    ...cells,
    String(session.spec.image ?? ''),
    session.status.containerId?.slice(0, 12) ?? '<none>',
    ready?.reason ?? '',
  ];
}

/** Writers' text (labels, spec values, status messages) never reaches the terminal raw. */
function safe(text: string, output: OutputFormat): string {
  return output === 'json' ? escapeControlJson(text) : escapeControl(text);
}

function render(sessions: Session[], output: OutputFormat, single: boolean): string {
  return safe(renderRaw(sessions, output, single), output);
}

function renderRaw(sessions: Session[], output: OutputFormat, single: boolean): string {
  switch (output) {
    case 'json':
      return JSON.stringify(single ? sessions[0] : { apiVersion: 'v1', kind: 'List', items: sessions }, null, 2);
    case 'yaml':
      return stringify(single ? sessions[0] : { apiVersion: 'v1', kind: 'List', items: sessions }).trimEnd();
    case 'name':
      return sessions.map((session) => `session/${session.metadata.name}`).join('\n');
    default:
      return table(
        output === 'wide' ? WIDE_COLUMNS : COLUMNS,
        sessions.map((session) => row(session, output === 'wide')),
      );
  }
}

export function registerGet(program: Command): void {
  program
    .command('get')
    .description('List sessions or hosts, or show some by name')
    .argument('<resource>', 'sessions or hosts')
    .argument('[names...]', 'names (default: all)')
    .option('-l, --selector <selector>', 'label selector, e.g. team=law,tier in (gold,silver)')
    .option('-o, --output <format>', `output format: ${OUTPUTS.join('|')}`)
    .option('-w, --watch', 'after listing, print each change as it happens (Ctrl-C to stop)', false)
    .addHelpText(
      'after',
      '\nExamples:\n  sessionctl get sessions\n  sessionctl get hosts -o yaml\n  sessionctl get sessions -l team=law -o wide\n  sessionctl get session alice -o yaml\n  sessionctl get sessions -w',
    )
    .action(
      async (
        resource: string,
        references: string[],
        options: { selector?: string; output?: string; watch: boolean },
      ) => {
        if (isHostResource(resource)) {
          if (options.watch || options.selector)
            throw new CommandError('get hosts takes neither -w nor -l: list all hosts or name them', 2);
          return getHosts(references, options.output);
        }
        checkResource(resource);
        const output = options.output as OutputFormat;
        if (output !== undefined && !OUTPUTS.includes(output))
          throw new CommandError(`unknown output format "${options.output}": expected one of ${OUTPUTS.join(', ')}`, 2);
        await getSessions(references.map(sessionName), output, options);
      },
    );
}

/** Lists the sessions (by name or selector), then, with -w, prints each change as it happens. */
async function getSessions(
  names: string[],
  output: OutputFormat,
  options: { selector?: string; watch: boolean },
): Promise<void> {
  const selector = options.selector ? parseSelector(options.selector) : undefined;
  await withClient(async ({ client }) => {
    const abort = new AbortController();
    let listening!: () => void;
    const ready = new Promise<void>((resolve) => (listening = resolve));
    // Listen first, then list: a change between the two cannot be missed.
    const events = options.watch
      ? client.watch({
          selector: options.selector,
          names: names.length ? names : undefined,
          signal: abort.signal,
          onListening: listening,
        })
      : undefined;
    const first = events?.next();
    if (first) await Promise.race([ready, first]);
    const sessions = names.length ? await client.getMany(names) : await client.list(options.selector);
    const shown =
      selector && names.length
        ? sessions.filter((session) => matchesSelector(selector, session.metadata.labels))
        : sessions;
    const missing = names.filter((name) => !shown.some((session) => session.metadata.name === name));
    if (shown.length > 0 || !options.watch) {
      const text = render(shown, output, names.length === 1 && shown.length === 1);
      if (text) console.log(text);
      else if (!output) console.error('No sessions found.');
    }
    if (missing.length > 0 && !options.watch)
      throw new CommandError(missing.map((name) => `session "${name}" not found`).join('\n'));
    if (!events || !first) return;
    process.once('SIGINT', () => abort.abort());
    for (let next = await first; !next.done; next = await events.next()) console.log(watchLine(next.value, output));
  });
}

/** One change, as -w prints it in the chosen output format. */
function watchLine(event: WatchEvent, output: OutputFormat): string {
  if (event.type === 'DELETED')
    return safe(
      output === 'json' || output === 'yaml'
        ? JSON.stringify({ type: 'DELETED', name: event.name })
        : `${event.name}   deleted`,
      output,
    );
  if (output === 'json') return safe(JSON.stringify({ type: event.type, object: event.session }), output);
  if (output === 'yaml')
    return safe(`---\n${stringify({ type: event.type, object: event.session }).trimEnd()}`, output);
  if (output === 'name') return `session/${event.session.metadata.name}`;
  const wide = output === 'wide';
  return safe(table(wide ? WIDE_COLUMNS : COLUMNS, [row(event.session, wide)]).split('\n')[1], output);
}
