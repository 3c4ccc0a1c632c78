import { CREATE_QUIET_AFTER_MS, CreateActivity } from '../../controllers/session/create-activity';

describe('CreateActivity', () => {
  let woken: string[][];
  const activity = () => new CreateActivity({ onQuiet: (sessions) => woken.push(sessions) });
  const created = (creates: CreateActivity, session: string) => creates.track(session, async () => undefined);

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    woken = [];
  });
  afterEach(() => jest.useRealTimers());

  it('is busy with others while a create of another session is queued or running', async () => {
    const creates = activity();
    let finish!: () => void;
    const running = creates.track('bob', () => new Promise<void>((resolve) => (finish = resolve)));
    expect(creates.busyWithOthers('alice')).toBe(true);
    expect(creates.busyWithOthers('bob')).toBe(false);
    finish();
    await running;
  });

  it('stays busy for the quiet time after the last create ended, then forgets it', async () => {
    const creates = activity();
    await created(creates, 'bob');
    jest.advanceTimersByTime(CREATE_QUIET_AFTER_MS - 1);
    expect(creates.busyWithOthers('alice')).toBe(true);
    jest.advanceTimersByTime(1);
    expect(creates.busyWithOthers('alice')).toBe(false);
    expect(creates.busyWithOthers('bob')).toBe(false);
  });

  it("never counts the asking session's own create", async () => {
    const creates = activity();
    await created(creates, 'alice');
    expect(creates.busyWithOthers('alice')).toBe(false);
    expect(creates.busyWithOthers('carol')).toBe(true);
  });

  it('counts a failed create as ended', async () => {
    const creates = activity();
    await expect(creates.track('bob', async () => Promise.reject(new Error('no such image')))).rejects.toThrow(
      'no such image',
    );
    jest.advanceTimersByTime(CREATE_QUIET_AFTER_MS);
    expect(creates.busyWithOthers('alice')).toBe(false);
  });

  it('wakes the waiting sessions once, when no create has run for the quiet time', async () => {
    const creates = activity();
    let finish!: () => void;
    const running = creates.track('bob', () => new Promise<void>((resolve) => (finish = resolve)));
    creates.wakeWhenQuiet('crashy');
    creates.wakeWhenQuiet('loopy');
    jest.advanceTimersByTime(5 * CREATE_QUIET_AFTER_MS);
    expect(woken).toEqual([]);
    finish();
    await running;
    jest.advanceTimersByTime(CREATE_QUIET_AFTER_MS / 2);
    // Another create in the quiet time starts the wait over.
    await created(creates, 'carol');
    jest.advanceTimersByTime(CREATE_QUIET_AFTER_MS - 1);
    expect(woken).toEqual([]);
    jest.advanceTimersByTime(20);
    expect(woken).toEqual([['crashy', 'loopy']]);
    expect(creates.busyWithOthers('crashy')).toBe(false);
    jest.advanceTimersByTime(10 * CREATE_QUIET_AFTER_MS);
    expect(woken).toHaveLength(1);
  });

  it('wakes at once a session that waits on a quiet host', () => {
    const creates = activity();
    creates.wakeWhenQuiet('crashy');
    jest.advanceTimersByTime(0);
    expect(woken).toEqual([['crashy']]);
  });

  it('wakes a session that waits in the quiet time at its end', async () => {
    const creates = activity();
    await created(creates, 'bob');
    jest.advanceTimersByTime(CREATE_QUIET_AFTER_MS / 2);
    creates.wakeWhenQuiet('crashy');
    jest.advanceTimersByTime(CREATE_QUIET_AFTER_MS / 2 + 20);
    expect(woken).toEqual([['crashy']]);
  });
});
