/** The session memory: one owner, keyed by uid, reset by a new generation, dropped with the row. */
import { SessionMemory } from '../../controllers/session/memory';

const restart = (generation: number) => ({
  consecutive: 2,
  jitter: 0.25,
  at: 1_000,
  generation,
  lastExit: { code: 1, reason: 'Error' as const },
});

describe('SessionMemory', () => {
  it('remembers a restart for the uid and hands out copies', () => {
    const memory = new SessionMemory();
    expect(memory.read('alice', 'u1', 1)).toEqual({ restarts: { consecutive: 0 }, hadContainer: false });
    memory.restarted('u1', restart(1));
    const read = memory.read('alice', 'u1', 1);
    expect(read.restarts).toEqual({
      consecutive: 2,
      lastRestartAt: 1_000,
      generation: 1,
      jitter: 0.25,
      lastExit: { code: 1, reason: 'Error' },
    });
    read.restarts.consecutive = 99;
    expect(memory.read('alice', 'u1', 1).restarts.consecutive).toBe(2);
  });

  it('starts a fresh backoff at a new generation, and keeps whether the session had a container', () => {
    const memory = new SessionMemory();
    memory.read('alice', 'u1', 1);
    memory.restarted('u1', restart(1));
    memory.sawContainer('u1');
    expect(memory.read('alice', 'u1', 2)).toEqual({ restarts: { consecutive: 0 }, hadContainer: true });
  });

  it('counts each deferral reason once per restart, and afresh after they are cleared', () => {
    const memory = new SessionMemory();
    memory.read('alice', 'u1', 1);
    expect(memory.deferred('u1', 'HostCreating')).toBe(false); // no restart yet: nothing is deferred
    memory.restarted('u1', restart(1));
    expect(memory.deferred('u1', 'HostCreating')).toBe(true);
    expect(memory.deferred('u1', 'HostCreating')).toBe(false);
    expect(memory.deferred('u1', 'Paced')).toBe(true);
    memory.clearDeferrals('u1');
    expect(memory.deferred('u1', 'HostCreating')).toBe(true);
  });

  it('corrects the last exit after a late oom event', () => {
    const memory = new SessionMemory();
    memory.read('alice', 'u1', 1);
    memory.restarted('u1', restart(1));
    memory.correctLastExit('u1', { code: 137, reason: 'OOMKilled' });
    expect(memory.read('alice', 'u1', 1).restarts.lastExit).toEqual({ code: 137, reason: 'OOMKilled' });
  });

  it('forgets a deleted row by its name, and a new row of the same name starts with nothing', () => {
    const memory = new SessionMemory();
    memory.read('alice', 'u1', 1);
    memory.restarted('u1', restart(1));
    memory.sawContainer('u1');
    memory.forget('alice');
    expect(memory.read('alice', 'u1', 1)).toEqual({ restarts: { consecutive: 0 }, hadContainer: false });
    memory.restarted('u1', restart(1));
    expect(memory.read('alice', 'u2', 1)).toEqual({ restarts: { consecutive: 0 }, hadContainer: false });
    expect(memory.read('alice', 'u1', 1).restarts.consecutive).toBe(0);
  });
});
