/**
 * The restart intent: a container that exited or turned unhealthy is restarted, and what was done
 * is returned for the session's memory (the backoff the plan decided, the exit it followed).
 */
import { STOP_TIMEOUT_SECONDS, crashBackoffMs, type Action } from '../plan';
import { hostCreatingWait, restartCause } from '../plan-restarts';
import { exitReason } from '../status';
import { observePorts, short } from './containers';
import type { ActionRun, Handler } from './run';

type Restart = Extract<Action, { type: 'restart' }>;

export const restartContainer: Handler<'restart'> = async (run, action) => {
  const { inventory, metrics, now } = run.deps;
  const { context, execution } = run;
  const mark = inventory.eventMark(action.container.id);
  if (!(await callDocker(run, action))) {
    context.logger.debug(
      { containerId: action.container.id },
      'crash-loop restart given up: the host began creating other sessions',
    );
    execution.yieldedToCreates = hostCreatingWait(restartCause(action.exitCode, action.unhealthy));
    return false;
  }
  inventory.markStarted(action.container.id, mark, now());
  const reason = exitReason(action.exitCode, action.oomKilled, action.unhealthy);
  execution.restarted = {
    ...action.backoff,
    at: now(),
    generation: context.row!.generation,
    lastExit: { finishedAt: action.container.finishedAt, code: action.exitCode, reason },
  };
  execution.restartsDone++;
  execution.lastExit = { code: action.exitCode, oomKilled: action.oomKilled, unhealthy: action.unhealthy };
  metrics.containerRestarts.inc({ reason });
  metrics.driftCorrections.inc({ kind: 'container_exited' });
  const why = action.unhealthy ? 'its health check failed' : `it exited with code ${action.exitCode ?? 'unknown'}`;
  const next = Math.round(crashBackoffMs(action.backoff.consecutive, action.backoff.jitter) / 100) / 10;
  await run.event(
    'Normal',
    'Restarted',
    `restart ${context.restartCount + execution.restartsDone}: restarted container after ${why} (${reason}); a failure within 10 minutes backs off about ${next}s`,
  );
  context.logger.info({ containerId: action.container.id, exitCode: action.exitCode, reason }, 'container restarted');
  await observePorts(run, action.container.id);
  return true;
};

/**
 * The first restart after a failure is as urgent as any create; a crash loop's later ones go behind
 * the host's other calls and, as the plan said ('yield'), are given up when creates begin before
 * their turn (false). An unhealthy container is told before it is restarted, or after a crash
 * loop's turn, so that a restart given up for a busy host tells it once.
 */
async function callDocker(run: ActionRun, action: Restart): Promise<boolean> {
  const { inventory, activity } = run.deps;
  const host = inventory.host;
  const id = action.container.id;
  if (action.crashLoop) {
    const key = run.context.key;
    const stillWanted = action.crashLoop === 'yield' ? () => !activity.creates.busyWithOthers(key) : undefined;
    const options = { unhealthy: action.unhealthy === true, timeoutSeconds: STOP_TIMEOUT_SECONDS, stillWanted };
    if (!(await host.restartBehindOthers(id, options))) return false;
    if (action.unhealthy) await unhealthyEvent(run, action);
  } else if (action.unhealthy) {
    await unhealthyEvent(run, action);
    await host.restart(id, STOP_TIMEOUT_SECONDS);
  } else {
    await host.start(id);
  }
  return true;
}

function unhealthyEvent(run: ActionRun, action: Restart): Promise<void> {
  const threshold = run.context.spec?.healthCheck?.failureThreshold ?? 'several';
  return run.event(
    'Warning',
    'Unhealthy',
    `health check failed ${threshold} times in a row; restarting container ${short(action.container.id)}`,
  );
}
