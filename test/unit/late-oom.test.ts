import { LATE_OOM_WINDOW_MS, isLateOom, type RecordedExit } from '../../controllers/session/late-oom';
import type { ObservedContainer } from '../../src/model/container';

const exitAt = 1_000_000;
const running = (oomAt?: number): ObservedContainer => ({
  id: 'c1',
  name: 'sessionctl-a',
  labels: {},
  state: 'running',
  startedAt: exitAt + 200,
  finishedAt: exitAt,
  oomAt,
});
const recorded = (extra: Partial<RecordedExit> = {}): RecordedExit => ({
  finishedAt: exitAt,
  code: 137,
  reason: 'Error',
  ...extra,
});

describe('isLateOom', () => {
  it.each<[string, ObservedContainer | undefined, RecordedExit | undefined, boolean]>([
    ['an oom just after the recorded 137 exit, container restarted', running(exitAt + 300), recorded(), true],
    ['an oom reported a little before the die (clock rounding)', running(exitAt - 500), recorded(), true],
    ['an oom at the edge of the window', running(exitAt + LATE_OOM_WINDOW_MS), recorded(), true],
    ['an oom long after the exit belongs to a later run', running(exitAt + LATE_OOM_WINDOW_MS + 1), recorded(), false],
    ['the exit was already recorded as OOMKilled', running(exitAt + 300), recorded({ reason: 'OOMKilled' }), false],
    ['an exit code other than 137 is no kill', running(exitAt + 300), recorded({ code: 1 }), false],
    ['no oom event', running(), recorded(), false],
    ['no recorded restart', running(exitAt + 300), undefined, false],
    [
      'the container is not running again (the next exit will carry the oom itself)',
      { ...running(exitAt + 300), state: 'exited' },
      recorded(),
      false,
    ],
    ['no container', undefined, recorded(), false],
  ])('%s', (_, container, exit, expected) => {
    expect(isLateOom(container, exit)).toBe(expected);
  });
});
