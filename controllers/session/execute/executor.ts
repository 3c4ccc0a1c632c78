/**
 * Executes a plan's intents against Docker and the database, one after another, each by its own
 * handler, and returns what happened for the report step to write. The only place that calls Docker
 * for a session. The first failure stops the plan: it is turned into words for status and left to
 * the queue's backoff.
 */
import type { Logger } from 'pino';
import { LeaseLostError, dockerErrorMessage, dockerStatusCode } from '../../../src/docker/errors';
import type { Db } from '../../../src/store/db';
import { FencedOut, type Fence } from '../../../src/store/fencing';
import { recordEvent, type EventReason, type EventType } from '../../../src/store/events';
import type { Action } from '../plan';
import { conflictReason, describeFailure, vanishedContainer } from './failures';
import { foundDead } from './containers';
import { HANDLERS } from './handlers';
import type { ActionRun, Execution, ExecutionContext, ExecutorDeps, Handler } from './run';

export type { Execution, ExecutionContext, ExecutorDeps } from './run';

/** Events are a record, not the contract: failing to write one must not fail the reconcile. */
export async function emitEvent(
  db: Db,
  logger: Logger,
  session: string,
  uid: string | null,
  type: EventType,
  reason: EventReason,
  message: string,
  /** In a fleet, the host's lease: a replica that lost it records nothing. */
  fence?: Fence,
): Promise<void> {
  try {
    await recordEvent(db, { sessionName: session, sessionUid: uid, type, reason, message }, undefined, fence);
  } catch (error) {
    logger.warn({ err: error, reason }, 'could not record event');
  }
}

export class ActionExecutor {
  constructor(private readonly deps: ExecutorDeps) {}

  async execute(context: ExecutionContext, actions: Action[]): Promise<Execution> {
    const execution: Execution = { restartsDone: 0, finalized: false, replan: false };
    const run: ActionRun = {
      deps: this.deps,
      context,
      execution,
      event: (type, reason, message, uid = context.row?.uid ?? null) =>
        emitEvent(this.deps.db, context.logger, context.key, uid, type, reason, message, this.deps.fence),
    };
    for (const action of actions) {
      try {
        const handler = HANDLERS[action.type] as Handler<typeof action.type>;
        if (!(await handler(run, action))) break;
      } catch (error) {
        await this.failed(run, action, error);
        break;
      }
    }
    return execution;
  }

  private async failed(run: ActionRun, action: Action, error: unknown): Promise<void> {
    const { context, execution } = run;
    // This replica no longer holds the host: nothing about the session is its to report.
    if (error instanceof LeaseLostError || error instanceof FencedOut) throw error;
    // A token intent talks to the database, not Docker: its failure is the queue's to retry, not a
    // "Docker host did not answer" in status.
    if ((action.type === 'mintToken' || action.type === 'revokeToken') && dockerStatusCode(error) === undefined)
      throw error;
    const vanished = vanishedContainer(action, error);
    if (vanished) {
      // The inventory named a container the daemon no longer has (removed behind our back before
      // its events arrived): forget it and plan again instead of retrying a dead id forever.
      this.deps.inventory.forget(vanished);
      context.logger.info({ action: action.type, containerId: vanished }, 'container vanished; planning again');
      execution.replan = true;
      return;
    }
    if (await foundDead(run, action, error)) {
      execution.replan = true;
      return;
    }
    execution.failure = describeFailure(action, error, context.spec, this.deps.inventory.host.name);
    context.logger.warn(
      { action: action.type, err: { message: dockerErrorMessage(error), statusCode: dockerStatusCode(error) } },
      'action failed',
    );
    await run.event('Warning', conflictReason(execution.failure.reason), execution.failure.message);
  }
}
