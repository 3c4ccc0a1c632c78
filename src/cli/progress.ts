/**
 * Following sessions until they are Ready (or stopped as asked), for `apply --wait`: live lines on
 * a TTY (a bar when there are many), plain lines otherwise, and the list of failures at the end.
 */
import type { SessionClient, Session } from '../client';

export type Progress = { state: 'pending' | 'done' | 'failed'; detail: string };

export function progressOf(session: Session | undefined): Progress {
  if (!session) return { state: 'failed', detail: 'the session was deleted' };
  const { status, metadata, spec } = session;
  if (status.observedGeneration !== metadata.generation)
    return { state: 'pending', detail: 'waiting for the controller to observe this generation' };
  const condition = (type: string) => status.conditions?.find((entry) => entry.type === type);
  const valid = condition('Valid');
  if (valid?.status === 'False') return { state: 'failed', detail: `${valid.reason}: ${valid.message}` };
  const ready = condition('Ready');
  if (ready?.status === 'True') return { state: 'done', detail: 'Ready' };
  if (spec.state === 'Stopped' && status.phase === 'Stopped') return { state: 'done', detail: 'Stopped' };
  if (status.phase === 'Failed')
    return { state: 'failed', detail: `${ready?.reason ?? 'Failed'}: ${ready?.message ?? ''}` };
  return { state: 'pending', detail: ready ? `${ready.reason}: ${ready.message}` : 'waiting' };
}

interface Output {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const MANY = 20;

export async function followSessions(
  client: SessionClient,
  names: string[],
  options: { timeoutMs: number; out: Output },
): Promise<Array<{ name: string; detail: string }>> {
  const board = new ProgressBoard(names, options.out);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const events = client.watch({ names, known: names, signal: abort.signal, onListening: listening });
  try {
    const first = events.next();
    await Promise.race([ready, first]);
    board.render();
    const current = new Map((await client.getMany(names)).map((session) => [session.metadata.name, session]));
    for (const name of names) board.settle(name, current.get(name));
    // Check before waiting: when the first read settled everything, no change may ever come.
    if (board.unsettled()) {
      for (let next = await first; !next.done; next = await events.next()) {
        if (next.value.type === 'DELETED') board.settle(next.value.name, undefined);
        else board.settle(next.value.session.metadata.name, next.value.session);
        if (!board.unsettled()) break;
      }
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
    await events.return(undefined);
  }
  return board.failures();
}

/** Each session's progress, drawn in place on a terminal, or one line per settled session otherwise. */
class ProgressBoard {
  private readonly progress: Map<string, Progress>;
  private drawn = 0;

  constructor(
    private readonly names: string[],
    private readonly out: Output,
  ) {
    this.progress = new Map(names.map((name) => [name, { state: 'pending', detail: 'waiting' }]));
  }

  render(changed?: string): void {
    const { out, progress, names } = this;
    if (!out.isTTY) {
      const entry = changed ? progress.get(changed) : undefined;
      if (changed && entry && entry.state !== 'pending')
        out.write(`session/${changed} ${entry.state === 'done' ? entry.detail : `failed: ${entry.detail}`}\n`);
      return;
    }
    const lines =
      names.length > MANY
        ? [bar(progress, out.columns ?? 80)]
        : names.map((name) => {
            const entry = progress.get(name)!;
            const mark = entry.state === 'done' ? '✓' : entry.state === 'failed' ? '✗' : '…';
            return `${mark} session/${name}  ${entry.detail}`.slice(0, (out.columns ?? 120) - 1);
          });
    out.write(`${this.drawn ? `\x1b[${this.drawn}F` : ''}${lines.map((line) => `\x1b[2K${line}`).join('\n')}\n`);
    this.drawn = lines.length;
  }

  settle(name: string, session: Session | undefined): void {
    const before = this.progress.get(name)!;
    if (before.state !== 'pending') return;
    const after = progressOf(session);
    this.progress.set(name, after);
    if (after.state !== before.state || after.detail !== before.detail) this.render(name);
  }

  unsettled(): boolean {
    return [...this.progress.values()].some((entry) => entry.state === 'pending');
  }

  /** The sessions that failed, and those still pending when the wait ended (timed out). */
  failures(): Array<{ name: string; detail: string }> {
    for (const [name, entry] of this.progress) {
      if (entry.state === 'pending') this.progress.set(name, { state: 'failed', detail: `timed out: ${entry.detail}` });
    }
    return [...this.progress]
      .filter(([, entry]) => entry.state === 'failed')
      .map(([name, entry]) => ({ name, detail: entry.detail }));
  }
}

function bar(progress: Map<string, Progress>, columns: number): string {
  const entries = [...progress.values()];
  const done = entries.filter((entry) => entry.state === 'done').length;
  const failed = entries.filter((entry) => entry.state === 'failed').length;
  const width = Math.max(10, Math.min(50, columns - 40));
  const filled = Math.round((width * (done + failed)) / entries.length);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${entries.length} ready${failed ? `, ${failed} failed` : ''}`;
}
