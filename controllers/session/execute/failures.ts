/**
 * How the executor's failures are told: which container vanished, why a name or volume is not the
 * session's to take, and the words status and events give a failed action.
 */
import type { SessionSpec } from '../../../crds/session';
import { dockerErrorMessage, dockerStatusCode } from '../../../src/docker/errors';
import { NetworkConflictError } from '../../../src/docker/networks';
import { VolumeConflictError } from '../../../src/docker/volumes';
import { LABELS, MANAGED_BY, ownership } from '../../../src/model/labels';
import type { EventReason } from '../../../src/store/events';
import type { Action } from '../plan';
import type { Failure } from '../status';

/** The container an action failed on because the daemon no longer has it (404), if that is why it failed. */
export function vanishedContainer(action: Action, error: unknown): string | undefined {
  if (error instanceof StartError && dockerStatusCode(error.cause) === 404) return error.containerId;
  if (dockerStatusCode(error) !== 404) return undefined;
  return action.type === 'start' ||
    action.type === 'restart' ||
    action.type === 'stop' ||
    action.type === 'observePorts'
    ? action.container.id
    : undefined;
}

/** A failed action in words for status and events: which reason, and what Docker said. */
export function describeFailure(action: Action, error: unknown, spec: SessionSpec | undefined, host: string): Failure {
  if (error instanceof NameConflictError) return { reason: 'NameConflict', message: error.message };
  if (error instanceof VolumeConflictError) return { reason: 'VolumeConflict', message: error.message };
  if (error instanceof NetworkConflictError) return { reason: 'NameConflict', message: error.message };
  if (error instanceof StartError)
    return { reason: 'StartFailed', message: `start failed: ${dockerErrorMessage(error.cause)}` };
  const message = dockerErrorMessage(error);
  const code = dockerStatusCode(error);
  if (code === undefined)
    return { reason: 'DockerUnavailable', message: `Docker host ${host} did not answer: ${message}` };
  if (action.type === 'create' && code === 404 && /image/i.test(message)) {
    return { reason: 'ImageNotPresent', message: `image ${spec?.image} is not present on host ${host}: ${message}` };
  }
  if (action.type === 'removeVolumes')
    return { reason: 'VolumeFailed', message: `removing volumes failed: ${message}` };
  const reason =
    action.type === 'create'
      ? 'CreateFailed'
      : action.type === 'stop'
        ? 'StopFailed'
        : action.type === 'remove'
          ? 'RemoveFailed'
          : 'StartFailed';
  return { reason, message: `${action.type} failed: ${message}` };
}

/** Why a container holding the session's name is not this session's to adopt, if it is not. */
export function nameHolderConflict(
  labels: Record<string, string>,
  name: string,
  session: string,
  uid: string | undefined,
  installation: string | undefined,
): string | undefined {
  if (labels[LABELS.managedBy] !== MANAGED_BY || labels[LABELS.session] !== session) {
    return `a container named ${name} exists but is not managed by sessionctl; it is left alone. Rename or remove it to let this session start`;
  }
  const owner = installation === undefined ? 'ours' : ownership(labels, installation);
  if (owner === 'foreign') {
    return `a container named ${name} belongs to another sessionctl installation (${labels[LABELS.installation]}) that shares this Docker daemon; it is left alone. Use another session name, or remove that session there`;
  }
  if (owner === 'unlabelled' && labels[LABELS.uid] !== uid) {
    return `a container named ${name} was made by an earlier sessionctl for another session of this name, and may belong to another installation; it is left alone. Remove it to let this session start`;
  }
  return undefined;
}

export class NameConflictError extends Error {
  override readonly name = 'NameConflictError';
}

/** A start that failed right after a successful create: the container exists, reported as StartFailed. */
export class StartError extends Error {
  override readonly name = 'StartError';
  constructor(
    readonly containerId: string,
    cause: unknown,
  ) {
    super(dockerErrorMessage(cause), { cause });
  }
}

/** The event reason of a failure: a conflict is told as such, anything else as Failed. */
export function conflictReason(reason: Failure['reason']): EventReason {
  return reason === 'NameConflict' || reason === 'VolumeConflict' ? reason : 'Failed';
}
