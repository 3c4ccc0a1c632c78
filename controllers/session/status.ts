/**
 * Session status from what was observed: conditions (with transition times that move only when a
 * condition's status flips), the display phase, and the summary `Ready`. Pure, like the planner.
 */
import type { SessionSpec, Validation } from '../../crds/session';
import { describeProblems } from '../../crds/session';
import type { Condition, ConditionStatus, ConditionType, ExitReason, Phase, SessionStatus } from '../../crds/status';
import type { ObservedContainer } from '../../src/docker/inventory';
import { LABELS, specHash } from '../../src/docker/labels';
import type { Waiting } from './plan';

/** A step of the plan that failed, already turned into words for users. */
export interface Failure {
  reason: 'ImageNotPresent' | 'CreateFailed' | 'StartFailed' | 'StopFailed' | 'RemoveFailed' | 'DockerUnavailable' | 'NameConflict';
  message: string;
}

export interface StatusInput {
  previous: Partial<SessionStatus>;
  generation: number;
  spec: Validation<SessionSpec>;
  deletionRequested: boolean;
  host: string;
  /** The container the session uses after the plan ran. */
  container?: ObservedContainer;
  waiting?: Waiting;
  failure?: Failure;
  restartsDone: number;
  /** Exit of the container seen before it was restarted. */
  lastExit?: { code?: number; oomKilled: boolean };
  now: Date;
}

type ConditionDraft = { status: ConditionStatus; reason: string; message: string };

export function exitReason(code: number | undefined, oomKilled: boolean): ExitReason {
  if (oomKilled) return 'OOMKilled';
  return code === 0 ? 'Completed' : 'Error';
}

export function mergeConditions(previous: Condition[] | undefined, drafts: Record<ConditionType, ConditionDraft>, generation: number, now: Date): Condition[] {
  return (Object.keys(drafts) as ConditionType[]).map((type) => {
    const draft = drafts[type];
    const before = previous?.find((condition) => condition.type === type);
    return {
      type,
      ...draft,
      lastTransitionTime: before && before.status === draft.status ? before.lastTransitionTime : now.toISOString(),
      observedGeneration: generation,
    };
  });
}

function containerCondition(input: StatusInput, wantRunning: boolean): ConditionDraft {
  const { container, waiting, failure } = input;
  if (failure) return { status: 'False', reason: failure.reason, message: failure.message };
  if (waiting?.reason === 'BackOff') return { status: 'False', reason: waiting.reason, message: waiting.message };
  if (!container) return { status: 'False', reason: 'ContainerMissing', message: 'no container exists yet' };
  if (container.state === 'running') return { status: 'True', reason: 'Running', message: `container ${container.id.slice(0, 12)} is running` };
  if (container.state === 'exited' || container.state === 'dead') {
    const reason = exitReason(container.exitCode, container.oomKilled === true);
    return { status: 'False', reason: wantRunning ? reason : 'Stopped', message: `container exited with code ${container.exitCode ?? 'unknown'}` };
  }
  return { status: 'False', reason: wantRunning ? 'ContainerCreating' : 'Stopped', message: `container is ${container.state}` };
}

function conditionDrafts(input: StatusInput): Record<ConditionType, ConditionDraft> {
  const unknown = (reason: string, message: string): ConditionDraft => ({ status: 'Unknown', reason, message });
  if (!input.spec.ok) {
    const message = describeProblems(input.spec.problems);
    const invalid = unknown('InvalidSpec', 'the spec is invalid');
    return {
      Valid: { status: 'False', reason: 'InvalidSpec', message },
      Scheduled: invalid,
      ImageReady: invalid,
      ContainerRunning: invalid,
      Healthy: invalid,
      Ready: { status: 'False', reason: 'InvalidSpec', message },
    };
  }
  const spec = input.spec.value;
  const wantRunning = spec.state === 'Running';
  const { container, failure } = input;
  const current = container !== undefined && container.labels[LABELS.specHash] === specHash(spec);
  const imageReady: ConditionDraft =
    failure?.reason === 'ImageNotPresent'
      ? { status: 'False', reason: 'ImageNotPresent', message: failure.message }
      : current
        ? { status: 'True', reason: 'ImagePresent', message: `image ${spec.image} is present on ${input.host}` }
        : unknown('NoContainer', 'checked when the container is created');
  const running = containerCondition(input, wantRunning);
  const healthy: ConditionDraft =
    container?.state !== 'running'
      ? unknown('NotRunning', 'health is known only while the container runs')
      : container.health === 'unhealthy'
        ? { status: 'False', reason: 'Unhealthy', message: 'the container health check is failing' }
        : container.health === 'starting'
          ? unknown('HealthStarting', 'the first health checks have not finished')
          : { status: 'True', reason: container.health === 'healthy' ? 'Healthy' : 'NoHealthCheck', message: container.health === 'healthy' ? 'health check passing' : 'no health check is defined' };

  let ready: ConditionDraft;
  if (input.deletionRequested) ready = { status: 'False', reason: 'Terminating', message: 'the session is being deleted' };
  else if (!wantRunning) ready = { status: 'False', reason: 'Stopped', message: 'the session is stopped as requested (spec.state: Stopped)' };
  else if (running.status !== 'True') ready = { status: 'False', reason: running.reason, message: running.message };
  else if (!current) ready = { status: 'False', reason: 'SpecChanging', message: 'the container is being replaced to match the spec' };
  else if (healthy.status === 'False') ready = { status: 'False', reason: healthy.reason, message: healthy.message };
  else if (healthy.status === 'Unknown') ready = { status: 'False', reason: healthy.reason, message: healthy.message };
  else ready = { status: 'True', reason: 'SessionReady', message: 'the container is running and healthy' };

  return {
    Valid: { status: 'True', reason: 'ValidSpec', message: 'the spec is valid' },
    Scheduled: { status: 'True', reason: 'Scheduled', message: `assigned to Docker host ${input.host}` },
    ImageReady: imageReady,
    ContainerRunning: running,
    Healthy: healthy,
    Ready: ready,
  };
}

function phaseOf(input: StatusInput, drafts: Record<ConditionType, ConditionDraft>): Phase {
  if (input.deletionRequested) return 'Terminating';
  if (!input.spec.ok) return 'Pending';
  const spec = input.spec.value;
  const { container } = input;
  if (container?.state === 'running' || container?.state === 'paused') return spec.state === 'Running' ? 'Running' : 'Stopped';
  if (spec.state === 'Stopped') return 'Stopped';
  if (container && (container.state === 'exited' || container.state === 'dead')) {
    if (drafts.ContainerRunning.reason === 'BackOff' || input.failure) return 'Running';
    return container.exitCode === 0 && !container.oomKilled ? 'Stopped' : 'Failed';
  }
  return input.failure || input.waiting ? 'Pending' : 'Creating';
}

export function computeStatus(input: StatusInput): SessionStatus {
  const drafts = conditionDrafts(input);
  const { container } = input;
  const status: SessionStatus = {
    observedGeneration: input.generation,
    phase: phaseOf(input, drafts),
    conditions: mergeConditions(input.previous.conditions, drafts, input.generation, input.now),
    host: input.host,
    restartCount: (input.previous.restartCount ?? 0) + input.restartsDone,
  };
  if (container) status.containerId = container.id;
  const exited = input.lastExit ?? (container && (container.state === 'exited' || container.state === 'dead') ? { code: container.exitCode, oomKilled: container.oomKilled === true } : undefined);
  if (exited) {
    if (exited.code !== undefined) status.lastExitCode = exited.code;
    status.lastExitReason = exitReason(exited.code, exited.oomKilled);
  } else {
    if (input.previous.lastExitCode !== undefined) status.lastExitCode = input.previous.lastExitCode;
    if (input.previous.lastExitReason !== undefined) status.lastExitReason = input.previous.lastExitReason;
  }
  return status;
}
