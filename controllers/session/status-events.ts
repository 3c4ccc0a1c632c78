/**
 * Events for conditions that just changed, told once per change: scheduling, the image, the restart
 * budget. Compares the status being written with the one it replaces.
 */
import { findCondition, type SessionStatus } from '../../crds/status';
import type { Metrics } from '../../src/metrics/registry';
import type { EventReason, EventType } from '../../src/store/events';
import type { Row } from './observe';

export interface StatusEventDeps {
  metrics: Metrics;
  /** The Docker host's name, for the words. */
  host: string;
  event(row: Row, type: EventType, reason: EventReason, message: string): Promise<void>;
}

export async function transitionEvents(deps: StatusEventDeps, row: Row, status: SessionStatus): Promise<void> {
  const scheduled = findCondition(status, 'Scheduled');
  const before = findCondition(row.status, 'Scheduled');
  if (scheduled?.status === 'False' && (before?.status !== 'False' || before.reason !== scheduled.reason)) {
    deps.metrics.admissionRefusals.inc({ host: deps.host, reason: scheduled.reason });
    await deps.event(row, 'Warning', 'FailedScheduling', scheduled.message);
  } else if (scheduled?.status === 'True' && before?.status === 'False') {
    await deps.event(row, 'Normal', 'Scheduled', `room freed on Docker host ${deps.host}`);
  }
  await imageEvents(deps, row, status);
  const ready = findCondition(status, 'Ready');
  if (
    ready?.reason === 'RestartLimitExceeded' &&
    findCondition(row.status, 'Ready')?.reason !== 'RestartLimitExceeded'
  ) {
    deps.metrics.restartLimitExceeded.inc();
    await deps.event(row, 'Warning', 'RestartLimitExceeded', ready.message);
  }
}

/** Pulling, Pulled, and pull failures, once per change of the ImageReady reason. */
async function imageEvents(deps: StatusEventDeps, row: Row, status: SessionStatus): Promise<void> {
  const now = findCondition(status, 'ImageReady');
  const before = findCondition(row.status, 'ImageReady');
  if (!now || now.reason === before?.reason) return;
  const image = (row.spec as { image?: string }).image;
  if (now.reason === 'ImagePulling') await deps.event(row, 'Normal', 'Pulling', `pulling image ${image}`);
  else if (now.reason === 'ImagePullFailed' || now.reason === 'ImagePullBackOff')
    await deps.event(row, 'Warning', now.reason, now.message);
  else if (now.reason === 'ImageNotPresent') await deps.event(row, 'Warning', 'ImageNotPresent', now.message);
  else if (now.reason === 'ImageUpdatePending') await deps.event(row, 'Normal', 'ImageUpdatePending', now.message);
  else if (now.status === 'True' && before?.reason === 'ImagePulling')
    await deps.event(row, 'Normal', 'Pulled', `image ${image} is on host ${deps.host}`);
}
