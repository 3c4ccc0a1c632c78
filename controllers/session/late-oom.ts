/**
 * Docker may send a container's `oom` event after its `die` event. A restart is never held back to
 * wait for it: the restart is recorded at once with the reason known then (Error, for exit code
 * 137), and corrected to OOMKilled when the oom event arrives shortly after the exit it belongs to.
 */
import type { ExitReason } from '../../crds/status';
import type { ObservedContainer } from '../../src/model/container';

/** An oom event this soon after an exit belongs to that exit. */
export const LATE_OOM_WINDOW_MS = 5_000;

/** The exit the controller restarted the container after, as it recorded it. */
export interface RecordedExit {
  /** When the container exited (ms epoch, daemon time). */
  finishedAt?: number;
  code?: number;
  reason: ExitReason;
}

/**
 * Whether the container's latest oom event belongs to the recorded exit that was not recorded as an
 * OOM kill: the container runs again (it was restarted), the exit was a SIGKILL (137), and the oom
 * came within the window after it.
 */
export function isLateOom(container: ObservedContainer | undefined, recorded: RecordedExit | undefined): boolean {
  if (!container || !recorded || container.state !== 'running') return false;
  if (recorded.reason === 'OOMKilled' || recorded.code !== 137) return false;
  if (container.oomAt === undefined || recorded.finishedAt === undefined) return false;
  const after = container.oomAt - recorded.finishedAt;
  return after >= -1_000 && after <= LATE_OOM_WINDOW_MS;
}
