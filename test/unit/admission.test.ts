import { Admission } from '../../controllers/session/admission';

const MiB = 1024 * 1024;

function host(maxSessions?: number, allocatableMemoryBytes?: number) {
  return new Admission({ host: 'h', capacity: { maxSessions, allocatableMemoryBytes }, onFreed: () => undefined });
}

describe('Admission.check', () => {
  it('answers what tryAdmit would, changing nothing', () => {
    const admission = host(2);
    expect(admission.check('a', 1, MiB)).toEqual({ admitted: true });
    expect(admission.check('a', 1, MiB)).toEqual({ admitted: true });
    expect(admission.usage().sessions).toBe(0);
    expect(admission.tryAdmit('a', 1, MiB)).toEqual({ admitted: true });
    expect(admission.tryAdmit('b', 2, MiB)).toEqual({ admitted: true });
    const refused = admission.check('c', 3, MiB);
    expect(refused).toMatchObject({ admitted: false, reason: 'MaxSessionsReached' });
    expect(admission.tryAdmit('c', 3, MiB)).toEqual(refused);
  });

  it('keeps the oldest-first order of waiting sessions without joining the queue itself', () => {
    const admission = host(undefined, 100 * MiB);
    admission.tryAdmit('running', 1, 60 * MiB);
    expect(admission.tryAdmit('older', 2, 50 * MiB)).toMatchObject({ admitted: false, reason: 'InsufficientMemory' });
    // A younger, smaller session fits now, and an older one that cannot fit does not hold it back.
    expect(admission.check('younger', 3, 30 * MiB)).toEqual({ admitted: true });
    admission.release('running');
    // Once memory frees, the older one goes first: the younger would wait behind it.
    expect(admission.check('younger', 3, 60 * MiB)).toMatchObject({ admitted: false });
    expect(admission.check('older', 2, 50 * MiB)).toEqual({ admitted: true });
  });
});
