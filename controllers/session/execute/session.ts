/**
 * The handlers of intents on the session rather than one container: the finalizer, expiry, the
 * access token, volumes and the session's own network when it is deleted.
 */
import { removeSessionNetwork } from '../../../src/docker/networks';
import { TOKEN_VOLUME } from '../../../src/docker/token-file';
import { ownedVolumesToRemove } from '../../../src/docker/volumes';
import { dockerErrorMessage } from '../../../src/docker/errors';
import { addFinalizer, deleteSessionAs, finishDeletion } from '../../../src/store/sessions';
import type { Pool } from 'pg';
import type { Db } from '../../../src/store/db';
import { unplaceSessionFenced, withFence } from '../../../src/store/fencing';
import { deleteToken, mintToken } from '../../../src/store/tokens';
import type { ActionRun, Handler } from './run';

/**
 * A write for the session made under this host's lease, in a fleet: it commits only while the lease
 * is current (FencedOut otherwise, and the reconcile is abandoned), so a replica that was paused and
 * wakes late neither deletes, mints nor finalizes anything.
 */
function underLease<T>(run: ActionRun, work: (db: Db) => Promise<T>): Promise<T> {
  const { fence, db } = run.deps;
  return fence ? withFence(db as Pool, fence, work) : work(db);
}

export const addContainerFinalizer: Handler<'addFinalizer'> = async (run) => {
  if (await underLease(run, (db) => addFinalizer(db, run.context.key, run.context.row!.uid))) return true;
  run.execution.replan = true;
  return false;
};

export const expireSession: Handler<'expire'> = async (run, action) => {
  const { key, row, logger } = run.context;
  await run.event('Normal', action.reason === 'IdleTimeout' ? 'IdleTimeout' : 'Expired', action.message);
  await underLease(run, (db) => deleteSessionAs(db, key, row!.uid));
  run.deps.metrics.lifetimeActions.inc({ reason: action.reason, action: 'delete' });
  logger.info({ reason: action.reason }, 'session expired; deleting');
  run.execution.expired = { reason: action.reason, message: action.message };
  run.execution.replan = true;
  return false;
};

const MINTED = {
  initial: 'minted the access token',
  expired: 'rotated the access token: it expired',
  requested: 'rotated the access token, as requested',
} as const;

/**
 * A new access token. Its id joins the container's revision, so the create that follows carries it
 * in its hash and the old container (and its token) goes. The token itself is never logged.
 */
export const mintSessionToken: Handler<'mintToken'> = async (run, action) => {
  const { key, row, spec, revision, logger } = run.context;
  const minted = await underLease(run, (db) => mintToken(db, key, row!.uid, spec!.auth!.tokenTtlSeconds));
  if (!minted) {
    // The row went away or changed its uid since it was read.
    run.execution.replan = true;
    return false;
  }
  revision.tokenId = minted.tokenId;
  run.execution.minted = { ...minted, reason: action.reason };
  run.deps.metrics.tokenRotations.inc({ reason: action.reason });
  await run.event('Normal', 'TokenRotated', `${MINTED[action.reason]}; valid until ${minted.expiresAt.toISOString()}`);
  logger.info({ reason: action.reason, tokenId: minted.tokenId }, 'access token minted');
  return true;
};

export const revokeSessionToken: Handler<'revokeToken'> = async (run) => {
  await underLease(run, (db) => deleteToken(db, run.context.key));
  return true;
};

/** volumeReclaimPolicy: Delete, for volumes whose labels say they are this session's only. */
export const removeVolumes: Handler<'removeVolumes'> = async (run, action) => {
  const { inventory, defaults } = run.deps;
  for (const volume of action.volumes) {
    const owned = await ownedVolumesToRemove(inventory.host, run.context.key, volume, defaults.installation);
    for (const name of owned.remove) {
      await inventory.host.removeVolume(name);
      await run.event('Normal', 'VolumeRemoved', `removed volume ${name} (volumeReclaimPolicy: Delete)`);
    }
    for (const name of owned.refused)
      await run.event('Warning', 'VolumeConflict', `left volume ${name} alone: it does not belong to this session`);
  }
  return true;
};

export const finalizeSession: Handler<'finalize'> = async (run) => {
  const { key, row, logger } = run.context;
  await removeSessionResources(run);
  run.execution.finalized = await underLease(run, (db) => finishDeletion(db, key, row!.uid));
  if (run.execution.finalized) logger.info('session deleted');
  return true;
};

/**
 * What the session had besides its containers and spec volumes: its network and its token volume.
 * Best effort: either left behind costs little, a deletion held up by one would cost more.
 */
async function removeSessionResources(run: ActionRun): Promise<void> {
  const { inventory, defaults } = run.deps;
  const host = inventory.host;
  try {
    if (defaults.networkMode === 'PerSession') await removeSessionNetwork(host, run.context.key);
    const owned = await ownedVolumesToRemove(host, run.context.key, TOKEN_VOLUME, defaults.installation);
    for (const name of owned.remove) await host.removeVolume(name);
  } catch (error) {
    run.context.logger.warn(
      { err: { message: dockerErrorMessage(error) } },
      'could not remove the session network or token volume',
    );
  }
}

/**
 * The session leaves this host once its containers here are gone (the plan removed them first):
 * only while this replica holds the host's lease and the row is still placed here.
 */
export const unplaceFromHost: Handler<'unplace'> = async (run, action) => {
  const { key, row, logger } = run.context;
  const { fence, db, metrics } = run.deps;
  if (!fence || !row) return false;
  if (!(await unplaceSessionFenced(db, fence, { name: key, uid: row.uid }))) {
    run.execution.replan = true;
    return false;
  }
  run.execution.unplaced = true;
  metrics.fleet.reschedules.inc({ reason: action.reason });
  await run.event(
    'Normal',
    'Evicted',
    `removed from host ${fence.host} (${action.reason}); it is placed again elsewhere`,
  );
  logger.info({ host: fence.host, reason: action.reason }, 'session evicted from its host');
  return true;
};
