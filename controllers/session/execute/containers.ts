/**
 * The handlers of intents on an existing container: start, stop, remove (or set aside), learn its
 * ports; and the check that tells a container that can never run again from a failed call.
 */
import { portsFromInspect } from '../../../src/docker/inventory';
import { dockerErrorMessage } from '../../../src/docker/errors';
import type { ObservedContainer } from '../../../src/model/container';
import { LABELS } from '../../../src/model/labels';
import { STOP_TIMEOUT_SECONDS, type Action } from '../plan';
import { isRemovalRefused } from '../stuck';
import { StartError } from './failures';
import type { ActionRun, Handler } from './run';

export function short(id: string): string {
  return id.slice(0, 12);
}

export const startContainer: Handler<'start'> = async (run, action) => {
  const { inventory, now } = run.deps;
  const id = action.container.id;
  const mark = inventory.eventMark(id);
  await inventory.host.start(id);
  inventory.markStarted(id, mark, now());
  await run.event('Normal', 'Started', `started container ${short(id)}`);
  run.context.logger.info({ containerId: id }, 'container started');
  await observePorts(run, id);
  return true;
};

const STOP_WORDS = {
  Requested: 'spec.state: Stopped',
  IdleTimeout: 'idle timeout',
  RestartLimitExceeded: 'restart limit exceeded',
} as const;

export const stopContainer: Handler<'stop'> = async (run, action) => {
  const { inventory, metrics, now } = run.deps;
  const id = action.container.id;
  await inventory.host.stop(id, STOP_TIMEOUT_SECONDS);
  inventory.update(id, { state: 'exited', finishedAt: now(), ports: undefined });
  const reason = action.reason === 'IdleTimeout' ? 'IdleTimeout' : 'Stopped';
  await run.event('Normal', reason, `stopped container ${short(id)} (${STOP_WORDS[action.reason]})`);
  if (action.reason === 'IdleTimeout') metrics.lifetimeActions.inc({ reason: 'IdleTimeout', action: 'stop' });
  run.context.logger.info({ containerId: id, reason: action.reason }, 'container stopped');
  return true;
};

export const removeContainer: Handler<'remove'> = async (run, action) => {
  const { metrics } = run.deps;
  const { container, reason } = action;
  if (!(await removeOrSetAside(run, container))) return true;
  if (reason === 'orphan' || reason === 'stale-uid') metrics.driftCorrections.inc({ kind: 'orphan_removed' });
  if (reason === 'duplicate') metrics.driftCorrections.inc({ kind: 'duplicate_removed' });
  const uid = container.labels[LABELS.uid] ?? run.context.row?.uid ?? null;
  await run.event('Normal', 'Removed', `removed ${reason} container ${short(container.id)}`, uid);
  run.context.logger.info({ containerId: container.id, reason }, 'container removed');
  return true;
};

export const observePortsOf: Handler<'observePorts'> = async (run, action) => {
  await observePorts(run, action.container.id);
  return true;
};

/** Docker picks ephemeral host ports at each start: read them, for status.endpoints. */
export async function observePorts(run: ActionRun, id: string): Promise<void> {
  const { spec } = run.context;
  if (!spec || spec.ports.length === 0) return;
  const { inventory } = run.deps;
  const info = await inventory.host.measure('inspect', () => inventory.host.docker.getContainer(id).inspect());
  if (!info.State.Running) return;
  inventory.update(id, {
    ports: portsFromInspect(info.NetworkSettings.Ports as Parameters<typeof portsFromInspect>[0]),
  });
}

/**
 * Removes the container; if Docker refuses (a dead container, a busy root filesystem), renames it
 * out of the session's way instead, so that a fresh container can take its name. Returns whether
 * it is gone; throws only when it could be neither removed nor renamed.
 */
export async function removeOrSetAside(run: ActionRun, container: ObservedContainer): Promise<boolean> {
  const { inventory, stuck } = run.deps;
  try {
    await inventory.host.remove(container.id);
    inventory.forget(container.id);
    return true;
  } catch (error) {
    if (!isRemovalRefused(error)) throw error;
    const cause = dockerErrorMessage(error);
    const aside = await stuck.setAside(container, cause).catch(() => Promise.reject(error));
    inventory.update(container.id, { name: aside.name, state: 'dead' });
    await run.event(
      'Warning',
      'ContainerStuck',
      `Docker could not remove container ${short(container.id)} (${cause}); renamed it ${aside.name} and retries its removal`,
      container.labels[LABELS.uid] ?? null,
    );
    return false;
  }
}

/**
 * A start or restart that Docker refused because the container cannot run again: it is dead
 * ("marked for removal"), or its containerd task outlived a daemon restart ("task ...: already
 * exists"). The inventory learns it as dead, and the next plan removes or sets the container aside
 * and makes a fresh one.
 */
export async function foundDead(run: ActionRun, action: Action, error: unknown): Promise<boolean> {
  const id =
    action.type === 'start' || action.type === 'restart'
      ? action.container.id
      : error instanceof StartError
        ? error.containerId
        : undefined;
  const refused = error instanceof StartError ? error.cause : error;
  if (!id || !isRemovalRefused(refused)) return false;
  const { inventory } = run.deps;
  const taskLeftOver = /task [0-9a-f]+: already exists/.test(dockerErrorMessage(refused));
  if (!taskLeftOver) {
    const info = await inventory.host.inspect(id).catch(() => undefined);
    if (info?.State.Status !== 'dead' && info?.State.Dead !== true) return false;
  }
  inventory.update(id, { state: 'dead' });
  run.context.logger.warn(
    { containerId: id, err: { message: dockerErrorMessage(refused) } },
    'container cannot be started again; planning again',
  );
  return true;
}
