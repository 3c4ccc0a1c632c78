import { cachedProbe } from '../../src/health/cache';

describe('cachedProbe (/health)', () => {
  it('answers from a result at most maxAgeMs old and runs one probe at a time', async () => {
    let clock = 0;
    let calls = 0;
    let release!: () => void;
    const probe = cachedProbe(
      () => {
        calls++;
        return new Promise<number>((resolve) => (release = () => resolve(calls)));
      },
      1_000,
      () => clock,
    );
    const first = probe();
    const second = probe();
    release();
    expect(await Promise.all([first, second])).toEqual([1, 1]);
    clock = 1_000;
    expect(await probe()).toBe(1);
    expect(calls).toBe(1);
    clock = 1_001;
    const third = probe();
    release();
    expect(await third).toBe(2);
  });

  it('a failed probe is not cached', async () => {
    let fail = true;
    const probe = cachedProbe(async () => {
      if (fail) throw new Error('down');
      return 'ok';
    });
    await expect(probe()).rejects.toThrow('down');
    fail = false;
    expect(await probe()).toBe('ok');
  });
});
