/** Which handler carries out each kind of intent the plan can return. */
import type { Action } from '../plan';
import { observePortsOf, removeContainer, startContainer, stopContainer } from './containers';
import { createContainer } from './create';
import type { Handler } from './run';
import { restartContainer } from './restart';
import {
  addContainerFinalizer,
  expireSession,
  finalizeSession,
  mintSessionToken,
  removeVolumes,
  revokeSessionToken,
  unplaceFromHost,
} from './session';

export const HANDLERS: { [T in Action['type']]: Handler<T> } = {
  addFinalizer: addContainerFinalizer,
  mintToken: mintSessionToken,
  revokeToken: revokeSessionToken,
  remove: removeContainer,
  create: createContainer,
  start: startContainer,
  restart: restartContainer,
  stop: stopContainer,
  observePorts: observePortsOf,
  expire: expireSession,
  removeVolumes,
  finalize: finalizeSession,
  unplace: unplaceFromHost,
};
