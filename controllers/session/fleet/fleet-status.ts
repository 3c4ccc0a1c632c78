/**
 * Status written for a session by the fleet rather than by a reconcile on its host: Scheduled=False
 * while no host has room (the placer), and Ready=False while its host does not answer or is lost
 * (the host's leaseholder). Pure, like computeStatus, and built with the same condition merge.
 */
import type { SessionSpec, Validation } from '../../../crds/session';
import { describeProblems } from '../../../crds/session';
import type { ConditionType, SessionStatus } from '../../../crds/status';
import type { Unscheduled } from '../../../src/model/placement';
import { mergeConditions } from '../status';

type Draft = { status: 'True' | 'False' | 'Unknown'; reason: string; message: string };

/** No host can take the session now: why, with the numbers, until room appears. */
export function unscheduledStatus(
  previous: Partial<SessionStatus>,
  generation: number,
  spec: Validation<SessionSpec>,
  unscheduled: Pick<Unscheduled, 'reason' | 'message'>,
  now: Date,
): SessionStatus {
  const waiting: Draft = { status: 'Unknown', reason: 'NotScheduled', message: 'the session has no host yet' };
  const drafts: Record<ConditionType, Draft> = {
    Valid: spec.ok
      ? { status: 'True', reason: 'ValidSpec', message: 'the spec is valid' }
      : { status: 'False', reason: 'InvalidSpec', message: describeProblems(spec.problems) },
    Scheduled: { status: 'False', reason: unscheduled.reason, message: unscheduled.message },
    ImageReady: waiting,
    ContainerRunning: waiting,
    Healthy: waiting,
    Ready: { status: 'False', reason: unscheduled.reason, message: unscheduled.message },
  };
  return {
    observedGeneration: generation,
    phase: 'Pending',
    conditions: mergeConditions(previous.conditions, drafts, generation, now),
    restartCount: previous.observedGeneration === generation ? (previous.restartCount ?? 0) : 0,
  };
}

export type HostProblem = 'HostUnreachable' | 'HostLost';

/**
 * The session's host does not answer: what was last seen is kept (phase, container, endpoints),
 * but the session is not Ready and its container's state is unknown until the host answers again.
 */
export function hostProblemStatus(
  previous: Partial<SessionStatus>,
  generation: number,
  problem: { reason: HostProblem; message: string },
  now: Date,
): SessionStatus {
  const before = new Map((previous.conditions ?? []).map((condition) => [condition.type, condition]));
  const kept = (type: ConditionType): Draft => {
    const condition = before.get(type);
    return condition
      ? { status: condition.status, reason: condition.reason, message: condition.message }
      : { status: 'Unknown', reason: problem.reason, message: problem.message };
  };
  const unknown: Draft = { status: 'Unknown', reason: problem.reason, message: problem.message };
  const drafts: Record<ConditionType, Draft> = {
    Valid: kept('Valid'),
    Scheduled: kept('Scheduled'),
    ImageReady: kept('ImageReady'),
    ContainerRunning: unknown,
    Healthy: unknown,
    Ready: { status: 'False', reason: problem.reason, message: problem.message },
  };
  return {
    ...previous,
    observedGeneration: previous.observedGeneration ?? generation,
    phase: previous.phase ?? 'Pending',
    conditions: mergeConditions(previous.conditions, drafts, previous.observedGeneration ?? generation, now),
    restartCount: previous.restartCount ?? 0,
  } as SessionStatus;
}
