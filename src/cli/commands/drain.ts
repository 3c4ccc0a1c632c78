/**
 * `sessionctl drain HOST`: kubectl drain for a Docker host. Cordons it, then asks the controller to
 * move its sessions elsewhere a batch at a time (src/store/eviction.ts), waiting for each batch to
 * leave before the next, so that a host's sessions never all restart at once. Sessions that keep
 * data on the host (spec.volumes) stay unless --force: moving them leaves their data behind.
 *
 * Exit codes: 0 the host is empty; 1 a session was blocked, the timeout passed, or the host is
 * unknown; 2 a usage error.
 */
import type { Command } from 'commander';
import { escapeControl } from '../../display/escape';
import {
  requestEvictions,
  sessionsOnHost,
  whereaboutsOf,
  type HostedSession,
  type SessionRef,
  type Whereabouts,
} from '../../store/eviction';
import { listHosts, setCordoned } from '../../store/hosts';
import { CommandError, withClient, type CommandContext } from '../context';
import { parseDuration } from '../format';
import { hostName } from './hosts';

export interface DrainOptions {
  timeoutMs: number;
  force: boolean;
  batch: number;
}

type Say = (line: string) => void;

/** How one evicted session ended up, as a progress line; undefined while it is still on its way. */
function settledLine(host: string, where: Whereabouts): string | undefined {
  switch (where.where) {
    case 'moved':
      return `session/${where.name} moved to ${where.host}`;
    case 'waiting':
      return `session/${where.name} left ${host}, waiting for room (${where.reason}: ${where.message})`;
    case 'gone':
      return `session/${where.name} deleted`;
    default:
      return undefined;
  }
}

/**
 * Waits until every session of the batch has left the host (or the deadline passes), woken by the
 * watch channel that every row change notifies (the client's watch, as `apply --wait` uses it):
 * LISTEN first, then read, so that a move between the two cannot be missed. Returns those left.
 */
async function waitForBatch(
  context: CommandContext,
  host: string,
  batch: SessionRef[],
  deadline: number,
  say: Say,
): Promise<SessionRef[]> {
  let pending = batch;
  const check = async () => {
    const states = await whereaboutsOf(context.pool, host, pending);
    const left = new Set<string>();
    for (const state of states) {
      const line = settledLine(host, state);
      if (line) say(line);
      else left.add(state.name);
    }
    pending = pending.filter((session) => left.has(session.name));
  };
  const names = batch.map((session) => session.name);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(0, deadline - Date.now()));
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const events = context.client.watch({ names, known: names, signal: abort.signal, onListening: listening });
  try {
    const first = events.next();
    await Promise.race([ready, first]);
    await check();
    if (pending.length > 0) {
      for (let next = await first; !next.done; next = await events.next()) {
        await check();
        if (pending.length === 0) break;
      }
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
    await events.return(undefined);
  }
  return pending;
}

/** Evicts the sessions `batch` at a time; returns those that had not left when the deadline passed. */
async function evictInBatches(
  context: CommandContext,
  host: string,
  sessions: HostedSession[],
  options: DrainOptions & { deadline: number },
  say: Say,
): Promise<SessionRef[]> {
  for (let start = 0; start < sessions.length; start += options.batch) {
    if (Date.now() >= options.deadline) return sessions.slice(start);
    const batch = sessions.slice(start, start + options.batch);
    const requested = new Set(await requestEvictions(context.pool, host, batch));
    for (const session of batch) if (requested.has(session.name)) say(`evicting session/${session.name}`);
    const left = await waitForBatch(context, host, batch, options.deadline, say);
    if (left.length > 0) return [...left, ...sessions.slice(start + options.batch)];
  }
  return [];
}

function blockedLine(host: string, session: HostedSession): string {
  return (
    `DrainBlocked: session/${session.name} keeps data on ${host} (spec.volumes): ` +
    `--force moves it without its data, or delete it`
  );
}

/** What is left on (or on its way off) the host after a timeout, one line each. */
async function leftovers(context: CommandContext, host: string, unsettled: SessionRef[]): Promise<string[]> {
  const states = await whereaboutsOf(context.pool, host, unsettled);
  const onHost = await sessionsOnHost(context.pool, host);
  const lines = states
    .filter((state) => state.where === 'unplaced')
    .map((state) => `  session/${state.name}: left ${host}, not placed yet`);
  for (const session of onHost) {
    const why = session.evictRequestedAt
      ? 'eviction requested, still on the host'
      : session.keepsData
        ? 'DrainBlocked (keeps data)'
        : 'not evicted yet';
    lines.push(`  session/${session.name}: ${why}`);
  }
  return lines;
}

export async function drainHost(reference: string, options: DrainOptions, say: Say): Promise<void> {
  const host = hostName(reference);
  await withClient(async (context) => {
    const [row] = await listHosts(context.pool, [host]);
    if (!row) throw new CommandError(`host "${host}" not found`);
    if (!row.cordoned) await setCordoned(context.pool, [host], true);
    say(`dockerhost/${host} ${row.cordoned ? 'already cordoned' : 'cordoned'}`);
    const deadline = Date.now() + options.timeoutMs;
    const sessions = await sessionsOnHost(context.pool, host);
    const blocked = options.force ? [] : sessions.filter((session) => session.keepsData);
    for (const session of blocked) say(blockedLine(host, session));
    const movable = options.force ? sessions : sessions.filter((session) => !session.keepsData);
    const unsettled = await evictInBatches(context, host, movable, { ...options, deadline }, say);
    if (unsettled.length > 0) {
      const lines = await leftovers(context, host, unsettled);
      throw new CommandError(
        [`drain of ${host} timed out after ${options.timeoutMs / 1000}s; left:`, ...lines].join('\n') +
          '\nEvictions already requested go on; run drain again to wait for the rest.',
      );
    }
    if (blocked.length > 0)
      throw new CommandError(
        `${blocked.length} session(s) keep data on ${host} and were not moved (DrainBlocked): ` +
          `drain again with --force to move them without their data, or delete them`,
      );
    say(`dockerhost/${host} drained`);
  });
}

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new CommandError(`invalid --batch "${text}": expected a whole number of at least 1`, 2);
  return value;
}

export function registerDrain(program: Command): void {
  program
    .command('drain')
    .description(
      'Cordon a host and move its sessions to other hosts, a batch at a time; sessions with volumes stay unless --force',
    )
    .argument('<host>', 'host name (NAME or host/NAME)')
    .option('--timeout <duration>', 'how long to wait for the host to empty (e.g. 30s, 5m)', '5m')
    .option('--force', 'also move sessions that keep data on the host (spec.volumes), without their data', false)
    .option('--batch <n>', 'sessions moved at a time', '5')
    .addHelpText(
      'after',
      '\nExamples:\n  sessionctl drain dev-2412\n  sessionctl drain worker-3 --timeout 10m --batch 10',
    )
    .action(async (reference: string, flags: { timeout: string; force: boolean; batch: string }) => {
      const options = {
        timeoutMs: parseDuration(flags.timeout),
        force: flags.force,
        batch: positiveInteger(flags.batch),
      };
      await drainHost(reference, options, (line) => console.log(escapeControl(line)));
    });
}
