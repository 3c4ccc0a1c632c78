import { RestartPacer } from '../../controllers/session/restart-pacer';

describe('RestartPacer', () => {
  let now = 1_000_000;
  const pacer = () => new RestartPacer(500, () => now);
  beforeEach(() => {
    now = 1_000_000;
  });

  it('hands out one turn per interval, in the order asked, and keeps each booked', () => {
    const turns = pacer();
    expect(turns.turnIn('a')).toBe(0);
    expect(turns.turnIn('b')).toBe(500);
    expect(turns.turnIn('c')).toBe(1_000);
    // Asking again does not lose or move the booked turn.
    expect(turns.turnIn('b')).toBe(500);
    now += 500;
    expect(turns.turnIn('b')).toBe(0);
    expect(turns.turnIn('c')).toBe(500);
  });

  it('gives a turn at once after a quiet interval', () => {
    const turns = pacer();
    expect(turns.turnIn('a')).toBe(0);
    now += 500;
    expect(turns.turnIn('b')).toBe(0);
    now += 10_000;
    expect(turns.turnIn('a')).toBe(0);
  });

  it('gives up a turn nobody took, so it blocks no one', () => {
    const turns = pacer();
    turns.turnIn('a');
    expect(turns.turnIn('gone')).toBe(500);
    now += 20_000;
    expect(turns.turnIn('b')).toBe(0);
    // The forgotten session starts over with a fresh turn.
    expect(turns.turnIn('gone')).toBe(500);
  });
});

describe('RestartPacer after a wait', () => {
  it('grants turns that passed meanwhile one interval apart, not in a burst', () => {
    let now = 0;
    const turns = new RestartPacer(500, () => now);
    expect(turns.turnIn('a')).toBe(0);
    expect(turns.turnIn('b')).toBe(500);
    expect(turns.turnIn('c')).toBe(1_000);
    // b and c could not take their turns (a batch of creates held them back); both come back at 3 s.
    now = 3_000;
    expect(turns.turnIn('b')).toBe(0);
    const cWaits = turns.turnIn('c');
    expect(cWaits).toBe(500);
    now += cWaits;
    expect(turns.turnIn('c')).toBe(0);
  });
});

describe('RestartPacer.peek', () => {
  it('answers what turnIn would, and books or grants nothing', () => {
    let now = 1_000;
    const turns = new RestartPacer(500, () => now);
    for (const session of ['a', 'b', 'c']) {
      const peeked = turns.peek(session);
      expect(turns.peek(session)).toBe(peeked);
      expect(turns.turnIn(session)).toBe(peeked);
    }
    now += 600;
    expect(turns.peek('b')).toBe(turns.turnIn('b'));
    expect(turns.peek('d')).toBe(turns.turnIn('d'));
  });
});
