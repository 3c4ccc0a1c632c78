/**
 * The TypeScript client that other services import: apply, get, list, delete, watch, waitFor and
 * touch, typed by the zod schema and validated before anything is written.
 *
 *   const sessions = createSessionClient({ connectionString: process.env.DATABASE_URL });
 *   await sessions.apply({ metadata: { name: 'alice' }, spec: { image: 'sessionctl/base:dev' } });
 *   await sessions.waitFor('alice', 'Ready', { timeoutMs: 60_000 });
 */
import type { Pool } from 'pg';
import { API_VERSION, KIND, describeProblems, validateDocument, type SessionDocumentInput } from '../../crds/session';
import { createPool } from '../store/db';
import {
  deleteSessions,
  getSession,
  listSessions,
  requestRestart,
  touchSession,
  upsertSessions,
  type ApplyOutcome,
} from '../store/sessions';
import { listEvents, type StoredEvent } from '../store/events';
import { readToken, requestTokenRotation, tokenSha256 } from '../store/tokens';
import { parseSelector } from '../store/selector';
import { hasCondition, isReady, toSession, type Session } from './session';
import { watchSessions, type WatchEvent } from './watch';

export type { Session, WatchEvent, ApplyOutcome, SessionDocumentInput, StoredEvent as SessionEvent };
export { isReady, hasCondition };

export class SessionValidationError extends Error {
  override readonly name = 'SessionValidationError';
  constructor(readonly problems: Array<{ path: string; message: string }>) {
    super(`invalid session: ${describeProblems(problems)}`);
  }
}

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
  constructor(
    readonly session: string,
    readonly condition: string,
    readonly last: Session | undefined,
  ) {
    const ready = last?.status.conditions?.find((entry) => entry.type === 'Ready');
    super(
      `timed out waiting for session ${session} to be ${condition}${ready ? ` (Ready=${ready.status} ${ready.reason}: ${ready.message})` : ''}`,
    );
  }
}

/** A document without apiVersion and kind is accepted: the client fills them in. */
export type SessionInput = Omit<SessionDocumentInput, 'apiVersion' | 'kind'> &
  Partial<Pick<SessionDocumentInput, 'apiVersion' | 'kind'>>;

export type WaitCondition = 'Ready' | 'Deleted' | { type: string; status?: 'True' | 'False' | 'Unknown' };

export interface SessionClientOptions {
  connectionString?: string;
  /** Share an existing pool; the client then needs connectionString too for watch(). */
  pool?: Pool;
}

export interface SessionClient {
  apply(session: SessionInput): Promise<{ name: string; outcome: ApplyOutcome; generation: number }>;
  get(name: string): Promise<Session | undefined>;
  list(selector?: string): Promise<Session[]>;
  /** Several sessions by name in one query; missing names are simply absent. */
  getMany(names: string[]): Promise<Session[]>;
  delete(name: string): Promise<boolean>;
  watch(options?: {
    selector?: string;
    names?: string[];
    known?: string[];
    signal?: AbortSignal;
    onListening?: () => void;
  }): AsyncGenerator<WatchEvent>;
  waitFor(name: string, condition: WaitCondition, options?: { timeoutMs?: number }): Promise<Session | undefined>;
  touch(name: string): Promise<boolean>;
  /** Recreates the container (volumes keep their data) and renews a spent restart budget. False if no such session. */
  restart(name: string): Promise<boolean>;
  /** The session's current access token (spec.auth), for the user's proxy; undefined while none is minted. */
  token(name: string): Promise<{ token: string; sha256: string; expiresAt: Date } | undefined>;
  /** Asks the controller for a new token; the container is recreated with it and the old one stops working. */
  rotateToken(name: string): Promise<boolean>;
  /** The session's newest events first, as `sessionctl describe` shows them. */
  events(name: string, limit?: number): Promise<StoredEvent[]>;
  close(): Promise<void>;
}

export { tokenSha256 };

export function validateSessionInput(session: SessionInput) {
  const result = validateDocument({ apiVersion: API_VERSION, kind: KIND, ...session });
  if (!result.ok) throw new SessionValidationError(result.problems);
  return result.value;
}

function satisfied(session: Session | undefined, condition: WaitCondition): boolean {
  if (condition === 'Deleted') return session === undefined;
  if (!session) return false;
  if (condition === 'Ready') return isReady(session);
  return hasCondition(session, condition.type, condition.status ?? 'True');
}

export function createSessionClient(options: SessionClientOptions): SessionClient {
  if (!options.pool && !options.connectionString)
    throw new Error('createSessionClient needs a connectionString or a pool');
  const ownsPool = !options.pool;
  const pool = options.pool ?? createPool(options.connectionString!, { applicationName: 'sessionctl-client' });
  const connectionString = options.connectionString;

  const client: SessionClient = {
    async apply(session) {
      const document = validateSessionInput(session);
      const [result] = await upsertSessions(pool, [
        { name: document.metadata.name, labels: document.metadata.labels, spec: session.spec as object },
      ]);
      return result;
    },
    async get(name) {
      const row = await getSession(pool, name);
      return row && toSession(row);
    },
    async list(selector) {
      return (await listSessions(pool, { selector: selector ? parseSelector(selector) : undefined })).map(toSession);
    },
    async getMany(names) {
      return (await listSessions(pool, { names })).map(toSession);
    },
    async delete(name) {
      return (await deleteSessions(pool, [name])).length === 1;
    },
    watch(watchOptions = {}) {
      if (!connectionString)
        throw new Error(
          'watch() needs the client to be created with a connectionString: it opens its own LISTEN connection',
        );
      return watchSessions({
        ...watchOptions,
        connectionString,
        db: pool,
        selector: watchOptions.selector ? parseSelector(watchOptions.selector) : undefined,
      });
    },
    waitFor: (name, condition, waitOptions = {}) => waitFor(client, name, condition, waitOptions.timeoutMs ?? 60_000),
    touch: (name) => touchSession(pool, name),
    restart: (name) => requestRestart(pool, name),
    async token(name) {
      const token = await readToken(pool, name);
      return token && { token: token.token, sha256: token.sha256, expiresAt: token.expiresAt };
    },
    rotateToken: (name) => requestTokenRotation(pool, name),
    events: (name, limit) => listEvents(pool, name, limit),
    async close() {
      if (ownsPool) await pool.end();
    },
  };
  return client;
}

/** Listens first, then reads, so that a change between the two cannot be missed. */
async function waitFor(
  client: SessionClient,
  name: string,
  condition: WaitCondition,
  timeoutMs: number,
): Promise<Session | undefined> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let last: Session | undefined;
  let events: AsyncGenerator<WatchEvent> | undefined;
  try {
    let listening!: () => void;
    const ready = new Promise<void>((resolve) => (listening = resolve));
    events = client.watch({ names: [name], known: [name], signal: abort.signal, onListening: listening });
    const first = events.next();
    await Promise.race([ready, first]);
    last = await client.get(name);
    if (satisfied(last, condition)) return last;
    for (let next = await first; !next.done; next = await events.next()) {
      last = next.value.type === 'DELETED' ? undefined : next.value.session;
      if (satisfied(last, condition)) return last;
    }
    const wanted = typeof condition === 'string' ? condition : `${condition.type}=${condition.status ?? 'True'}`;
    throw new WaitTimeoutError(name, wanted, last);
  } finally {
    clearTimeout(timer);
    // Aborting wakes the watch loop, so that closing it (and its connection) completes.
    abort.abort();
    await events?.return(undefined);
  }
}
