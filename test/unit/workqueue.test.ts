import { backoffDelay } from '../../src/runtime/backoff';
import { WorkQueue } from '../../src/runtime/workqueue';

describe('WorkQueue', () => {
  it('processes a key added many times once', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.depth).toBe(2);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
    expect(queue.depth).toBe(0);
  });

  it('never hands one key to two workers; an add while processing re-queues it after done', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    const key = await queue.get();
    queue.add('a');
    expect(queue.depth).toBe(0);
    let second: string | undefined;
    void queue.get().then((value) => (second = value));
    await Promise.resolve();
    expect(second).toBeUndefined();
    queue.done(key!);
    await Promise.resolve();
    expect(second).toBe('a');
  });

  it('wakes a waiting worker on add', async () => {
    const queue = new WorkQueue();
    const pending = queue.get();
    queue.add('x');
    await expect(pending).resolves.toBe('x');
  });

  it('backs off per key exponentially and forgets on success', () => {
    const queue = new WorkQueue({ rateLimit: { baseMs: 100, maxMs: 1_000, jitter: 0 } });
    expect(queue.addRateLimited('a')).toBe(100);
    expect(queue.addRateLimited('a')).toBe(200);
    expect(queue.addRateLimited('a')).toBe(400);
    expect(queue.addRateLimited('b')).toBe(100);
    expect(queue.addRateLimited('a')).toBe(800);
    expect(queue.addRateLimited('a')).toBe(1_000);
    queue.forget('a');
    expect(queue.addRateLimited('a')).toBe(100);
    queue.shutDown();
  });

  it('addAfter delivers later, keeping the earliest of several timers', async () => {
    jest.useFakeTimers();
    try {
      const queue = new WorkQueue();
      queue.addAfter('a', 5_000);
      queue.addAfter('a', 1_000);
      queue.addAfter('a', 3_000);
      expect(queue.depth).toBe(0);
      jest.advanceTimersByTime(1_000);
      expect(queue.depth).toBe(1);
      expect(await queue.get()).toBe('a');
      queue.done('a');
      jest.advanceTimersByTime(10_000);
      expect(queue.depth).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('shutDown releases waiting workers and refuses new keys', async () => {
    const queue = new WorkQueue();
    const pending = queue.get();
    queue.shutDown();
    await expect(pending).resolves.toBeUndefined();
    queue.add('a');
    await expect(queue.get()).resolves.toBeUndefined();
  });

  it('reports adds, waits and work to its observer', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue({
      observer: {
        added: () => seen.push('added'),
        depth: (d) => seen.push(`depth:${d}`),
        waited: () => seen.push('waited'),
        worked: () => seen.push('worked'),
        retried: () => seen.push('retried'),
      },
    });
    queue.add('a');
    const key = await queue.get();
    queue.done(key!);
    expect(seen).toEqual(['added', 'depth:1', 'waited', 'depth:0', 'worked']);
  });
});

describe('backoffDelay', () => {
  it('stays within the jitter band and the cap', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const delay = backoffDelay(attempt, { baseMs: 500, maxMs: 300_000, jitter: 0.2 });
      const nominal = Math.min(300_000, 500 * 2 ** attempt);
      expect(delay).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
      expect(delay).toBeLessThanOrEqual(300_000);
    }
  });
});
