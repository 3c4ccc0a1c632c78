/**
 * Watching sessions: a dedicated LISTEN connection on the watcher channel (every change, status
 * included), turned into an async iterator of ADDED / MODIFIED / DELETED events.
 */
import { Client } from 'pg';
import { getSession } from '../store/sessions';
import type { Db } from '../store/db';
import { matchesSelector, type Requirement } from '../store/selector';
import { toSession, type Session } from './session';

export const WATCH_CHANNEL = 'sessionctl_changes';

export type WatchEvent = { type: 'ADDED' | 'MODIFIED'; session: Session } | { type: 'DELETED'; name: string };

export interface WatchOptions {
  connectionString: string;
  db: Db;
  selector?: Requirement[];
  names?: string[];
  /** Sessions the caller already listed: their first change is MODIFIED, not ADDED. */
  known?: string[];
  signal?: AbortSignal;
  /** Called once LISTEN is in place: a read after this cannot miss a change. */
  onListening?(): void;
}

export async function* watchSessions(options: WatchOptions): AsyncGenerator<WatchEvent> {
  const client = new Client({ connectionString: options.connectionString, application_name: 'sessionctl-watch' });
  const pending: string[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  client.on('notification', (message) => {
    try {
      const { name } = JSON.parse(message.payload ?? '{}') as { name?: string };
      if (name && (!options.names || options.names.includes(name))) pending.push(name);
    } catch {
      return;
    }
    notify();
  });
  client.on('error', (error) => {
    failure = error;
    notify();
  });
  const onAbort = () => notify();
  options.signal?.addEventListener('abort', onAbort);
  const known = new Set<string>(options.known);
  try {
    await client.connect();
    await client.query(`LISTEN ${WATCH_CHANNEL}`);
    options.onListening?.();
    while (!options.signal?.aborted) {
      if (failure) throw failure;
      const name = pending.shift();
      if (name === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          // Anything that arrived before `wake` was set would otherwise be slept through.
          if (options.signal?.aborted || failure || pending.length > 0) resolve();
        });
        continue;
      }
      // Collapse a burst of notifications for one session into one read.
      for (let index = pending.indexOf(name); index >= 0; index = pending.indexOf(name)) pending.splice(index, 1);
      const row = await getSession(options.db, name);
      if (!row) {
        if (known.delete(name)) yield { type: 'DELETED', name };
        continue;
      }
      if (options.selector && !matchesSelector(options.selector, row.labels)) {
        if (known.delete(name)) yield { type: 'DELETED', name };
        continue;
      }
      const type = known.has(name) ? 'MODIFIED' : 'ADDED';
      known.add(name);
      yield { type, session: toSession(row) };
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await client.end().catch(() => undefined);
  }
}
