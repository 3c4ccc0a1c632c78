/**
 * Session status from what was observed: conditions (with transition times that move only when a
 * condition's status flips), the display phase, and the summary `Ready`. Pure, like the planner.
 */
import type { SessionSpec, Validation } from '../../crds/session';
import { describeProblems } from '../../crds/session';
import type { Condition, ConditionStatus, ConditionType, ExitReason, Phase, SessionStatus } from '../../crds/status';
import type { ObservedContainer } from '../../src/model/container';
import { LABELS, specHash } from '../../src/model/labels';
import { escapeControl } from '../../src/display/escape';
import type { ExpireReason, Waiting } from './plan';

/** A step of the plan that failed, already turned into words for users. */
export interface Failure {
  reason:
    | 'ImageNotPresent'
    | 'CreateFailed'
    | 'StartFailed'
    | 'StopFailed'
    | 'RemoveFailed'
    | 'DockerUnavailable'
    | 'NameConflict'
    | 'VolumeFailed'
    | 'VolumeConflict';
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
  /** Exit of the container seen before it was restarted; unhealthy when it was restarted for its health. */
  lastExit?: { code?: number; oomKilled: boolean; unhealthy?: boolean };
  /** The hash the container must carry; specHash(spec) when absent. */
  containerHash?: string;
  restartLimitExceeded?: { message: string };
  /** The image step: why a create waits for its image, or that a moved tag waits for its batch. */
  image?: { waiting?: { reason: string; message: string }; updatePending?: string };
  expiring?: { reason: ExpireReason; message: string };
  /** Where published ports are reached: the controller's advertised address. */
  advertiseAddress?: string;
  /** Containers of this session Docker could not remove, set aside while their removal is retried. */
  stuck?: Array<{ id: string; name: string }>;
  /** The session's host does not answer (a fleet's host health): not Ready, for that reason first. */
  hostProblem?: { reason: string; message: string };
  now: Date;
}

type ConditionDraft = { status: ConditionStatus; reason: string; message: string };

export function exitReason(code: number | undefined, oomKilled: boolean, unhealthy = false): ExitReason {
  if (unhealthy) return 'Unhealthy';
  if (oomKilled) return 'OOMKilled';
  return code === 0 ? 'Completed' : 'Error';
}

export function mergeConditions(
  previous: Condition[] | undefined,
  drafts: Record<ConditionType, ConditionDraft>,
  generation: number,
  now: Date,
): Condition[] {
  return (Object.keys(drafts) as ConditionType[]).map((type) => {
    const draft = drafts[type];
    const before = previous?.find((condition) => condition.type === type);
    return {
      type,
      ...draft,
      // Validation and daemon messages quote writers' text: no reader's terminal may act on it.
      message: escapeControl(draft.message, { keepNewlines: false }),
      lastTransitionTime: before && before.status === draft.status ? before.lastTransitionTime : now.toISOString(),
      observedGeneration: generation,
    };
  });
}

function containerCondition(input: StatusInput, wantRunning: boolean): ConditionDraft {
  const draft = ownContainerCondition(input, wantRunning);
  if (!input.stuck?.length) return draft;
  const names = input.stuck.map((stuck) => stuck.name).join(', ');
  return {
    ...draft,
    message: `${draft.message}; Docker could not remove ${names}, set aside while its removal is retried`,
  };
}

function ownContainerCondition(input: StatusInput, wantRunning: boolean): ConditionDraft {
  const { container, waiting, failure } = input;
  if (failure) return { status: 'False', reason: failure.reason, message: failure.message };
  if (input.restartLimitExceeded && container?.state !== 'running')
    return { status: 'False', reason: 'RestartLimitExceeded', message: input.restartLimitExceeded.message };
  if (waiting?.reason === 'BackOff' && container?.state !== 'running')
    return { status: 'False', reason: waiting.reason, message: waiting.message };
  if (waiting?.reason === 'IdleTimeout' && container?.state !== 'running')
    return { status: 'False', reason: waiting.reason, message: waiting.message };
  if (!container) return { status: 'False', reason: 'ContainerMissing', message: 'no container exists yet' };
  if (container.state === 'running')
    return { status: 'True', reason: 'Running', message: `container ${container.id.slice(0, 12)} is running` };
  if (container.state === 'exited' || container.state === 'dead') {
    const reason = exitReason(container.exitCode, container.oomKilled === true);
    return {
      status: 'False',
      reason: wantRunning ? reason : 'Stopped',
      message: `container exited with code ${container.exitCode ?? 'unknown'}`,
    };
  }
  return {
    status: 'False',
    reason: wantRunning ? 'ContainerCreating' : 'Stopped',
    message: `container is ${container.state}`,
  };
}

function unknown(reason: string, message: string): ConditionDraft {
  return { status: 'Unknown', reason, message };
}

function conditionDrafts(input: StatusInput): Record<ConditionType, ConditionDraft> {
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
  const { container } = input;
  const current =
    container !== undefined && container.labels[LABELS.specHash] === (input.containerHash ?? specHash(spec));
  const unschedulable = input.waiting && 'unschedulable' in input.waiting ? input.waiting : undefined;
  const running = containerCondition(input, spec.state === 'Running');
  const healthy = healthCondition(input, spec, current);
  const ready = readyCondition(input, spec, { current, running, healthy });
  return {
    Valid: { status: 'True', reason: 'ValidSpec', message: 'the spec is valid' },
    Scheduled: unschedulable
      ? { status: 'False', reason: unschedulable.reason, message: unschedulable.message }
      : { status: 'True', reason: 'Scheduled', message: `assigned to Docker host ${input.host}` },
    ImageReady: imageCondition(input, spec, current),
    ContainerRunning: running,
    Healthy: healthy,
    Ready: ready,
  };
}

function imageCondition(input: StatusInput, spec: SessionSpec, current: boolean): ConditionDraft {
  const waiting = input.image?.waiting;
  if (input.failure?.reason === 'ImageNotPresent')
    return { status: 'False', reason: 'ImageNotPresent', message: input.failure.message };
  if (waiting) return { status: 'False', reason: waiting.reason, message: waiting.message };
  if (!current) return unknown('NoContainer', 'checked when the container is created');
  if (input.image?.updatePending)
    return { status: 'True', reason: 'ImageUpdatePending', message: input.image.updatePending };
  return { status: 'True', reason: 'ImagePresent', message: `image ${spec.image} is present on ${input.host}` };
}

function healthCondition(input: StatusInput, spec: SessionSpec, current: boolean): ConditionDraft {
  const { container } = input;
  if (container?.state !== 'running') return unknown('NotRunning', 'health is known only while the container runs');
  if (container.health === 'unhealthy') {
    const backOff = input.waiting?.reason === 'BackOff' ? `; ${input.waiting.message}` : '';
    return { status: 'False', reason: 'Unhealthy', message: `the container health check is failing${backOff}` };
  }
  if (container.health === 'healthy') return { status: 'True', reason: 'Healthy', message: 'health check passing' };
  if (container.health === 'starting' || (spec.healthCheck && current))
    return unknown('HealthStarting', 'the first health checks have not passed yet');
  return { status: 'True', reason: 'NoHealthCheck', message: 'no health check is defined' };
}

/** Ready, and when not, the first reason that holds, most fundamental first. */
function readyCondition(
  input: StatusInput,
  spec: SessionSpec,
  seen: { current: boolean; running: ConditionDraft; healthy: ConditionDraft },
): ConditionDraft {
  const { current, running, healthy } = seen;
  const not = (reason: string, message: string): ConditionDraft => ({ status: 'False', reason, message });
  const imageWaiting = input.image?.waiting;
  if (input.expiring) return not(input.expiring.reason, input.expiring.message);
  if (input.deletionRequested) return not('Terminating', 'the session is being deleted');
  if (input.waiting?.reason === 'Evicting') return not('Evicting', input.waiting.message);
  if (input.hostProblem) return not(input.hostProblem.reason, input.hostProblem.message);
  if (input.restartLimitExceeded) return not('RestartLimitExceeded', input.restartLimitExceeded.message);
  if (input.waiting && 'unschedulable' in input.waiting) return not(input.waiting.reason, input.waiting.message);
  if (input.waiting?.reason === 'IdleTimeout') return not('IdleTimeout', input.waiting.message);
  if (spec.state !== 'Running') return not('Stopped', 'the session is stopped as requested (spec.state: Stopped)');
  if (imageWaiting && (running.status !== 'True' || !current)) return not(imageWaiting.reason, imageWaiting.message);
  if (running.status !== 'True') return not(running.reason, running.message);
  if (!current) return not('SpecChanging', 'the container is being replaced to match the spec');
  if (healthy.status !== 'True') return not(healthy.reason, healthy.message);
  return { status: 'True', reason: 'SessionReady', message: 'the container is running and healthy' };
}

function phaseOf(input: StatusInput, drafts: Record<ConditionType, ConditionDraft>): Phase {
  if (input.deletionRequested || input.expiring) return 'Terminating';
  if (!input.spec.ok) return 'Pending';
  if (input.restartLimitExceeded) return 'Failed';
  if (input.waiting && ('unschedulable' in input.waiting || input.waiting.reason === 'Evicting')) return 'Pending';
  const spec = input.spec.value;
  const { container } = input;
  if (input.waiting?.reason === 'IdleTimeout' && container?.state !== 'running') return 'Stopped';
  if (container?.state === 'running' || container?.state === 'paused')
    return spec.state === 'Running' ? 'Running' : 'Stopped';
  if (spec.state === 'Stopped') return 'Stopped';
  if (container && (container.state === 'exited' || container.state === 'dead')) {
    if (drafts.ContainerRunning.reason === 'BackOff' || input.failure) return 'Running';
    return container.exitCode === 0 && !container.oomKilled ? 'Stopped' : 'Failed';
  }
  return input.failure || input.waiting || input.image?.waiting ? 'Pending' : 'Creating';
}

export function computeStatus(input: StatusInput): SessionStatus {
  const drafts = conditionDrafts(input);
  const { container } = input;
  const status: SessionStatus = {
    observedGeneration: input.generation,
    phase: phaseOf(input, drafts),
    conditions: mergeConditions(input.previous.conditions, drafts, input.generation, input.now),
    host: input.host,
    // The budget of spec.maxRestarts is per generation: a spec change or a restart request renews it.
    restartCount:
      (input.previous.observedGeneration === input.generation ? (input.previous.restartCount ?? 0) : 0) +
      input.restartsDone,
  };
  if (container) status.containerId = container.id;
  const endpoints = endpointsOf(input);
  if (endpoints) status.endpoints = endpoints;
  const exited =
    input.lastExit ??
    (container && (container.state === 'exited' || container.state === 'dead')
      ? { code: container.exitCode, oomKilled: container.oomKilled === true }
      : undefined);
  if (exited) {
    if (exited.code !== undefined) status.lastExitCode = exited.code;
    else if (!exited.unhealthy && input.previous.lastExitCode !== undefined)
      status.lastExitCode = input.previous.lastExitCode;
    status.lastExitReason = exitReason(exited.code, exited.oomKilled, exited.unhealthy);
  } else {
    if (input.previous.lastExitCode !== undefined) status.lastExitCode = input.previous.lastExitCode;
    if (input.previous.lastExitReason !== undefined) status.lastExitReason = input.previous.lastExitReason;
  }
  return status;
}

/** Port name -> "host:port", once the running container's published ports are known. */
function endpointsOf(input: StatusInput): Record<string, string> | undefined {
  const { container } = input;
  if (!input.spec.ok || container?.state !== 'running' || !container.ports) return undefined;
  const endpoints: Record<string, string> = {};
  for (const port of input.spec.value.ports) {
    const published = container.ports[`${port.containerPort}/${port.protocol.toLowerCase()}`];
    if (!published) continue;
    const address =
      input.advertiseAddress ??
      (published.hostIp === '0.0.0.0' || published.hostIp === '' ? '127.0.0.1' : published.hostIp);
    endpoints[port.name] = `${address}:${published.hostPort}`;
  }
  return Object.keys(endpoints).length > 0 ? endpoints : undefined;
}
