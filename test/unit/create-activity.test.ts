import { CREATE_QUIET_AFTER_MS, CreateActivity } from '../../src/docker/create-activity';

describe('CreateActivity', () => {
  let now = 0;
  const activity = () => new CreateActivity(() => now);
  beforeEach(() => {
    now = 1_000_000;
  });

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
    await creates.track('bob', async () => undefined);
    now += CREATE_QUIET_AFTER_MS - 1;
    expect(creates.busyWithOthers('alice')).toBe(true);
    now += 1;
    expect(creates.busyWithOthers('alice')).toBe(false);
    expect(creates.busyWithOthers('bob')).toBe(false);
  });

  it("never counts the asking session's own create", async () => {
    const creates = activity();
    await creates.track('alice', async () => undefined);
    expect(creates.busyWithOthers('alice')).toBe(false);
    expect(creates.busyWithOthers('carol')).toBe(true);
  });

  it('counts a failed create as ended', async () => {
    const creates = activity();
    await expect(creates.track('bob', async () => Promise.reject(new Error('no such image')))).rejects.toThrow('no such image');
    now += CREATE_QUIET_AFTER_MS;
    expect(creates.busyWithOthers('alice')).toBe(false);
  });
});
