/**
 * A Docker bridge network per session, so that a session cannot open a connection to another
 * session's container: two containers on different bridges have no path to each other unless the
 * host routes between bridges, which Docker's own isolation rules (DOCKER-ISOLATION chains) forbid
 * when it manages iptables, and which a host with ip_forward=0 never does. Published ports keep
 * working: the daemon's port mapping reaches the container over its own bridge.
 *
 * Why a network per session rather than one shared bridge with inter-container traffic off (icc):
 * icc=false is enforced only by iptables rules on a daemon that manages iptables, and is a daemon-wide
 * switch the controller cannot check; a network per session isolates whatever the daemon's firewall
 * settings, at the cost of one network create per new session (measured in docs/isolation.md).
 */
import type Dockerode from 'dockerode';
import { LABELS, MANAGED_BY } from '../model/labels';
import { dockerStatusCode } from './host';

/** How sessions are networked (SESSIONCTL_NETWORK_MODE). */
export type NetworkMode = 'PerSession' | 'Shared';

export function sessionNetworkName(session: string): string {
  return `sessionctl-${session}`;
}

export interface NetworkApi {
  inspectNetwork(name: string): Promise<Dockerode.NetworkInspectInfo | undefined>;
  createNetwork(options: Dockerode.NetworkCreateOptions): Promise<void>;
  removeNetwork(name: string): Promise<void>;
}

export class NetworkConflictError extends Error {
  override readonly name = 'NetworkConflictError';
}

/** What the session's network is created with: a bridge of its own, internal when the session has no egress. */
export function sessionNetworkCreateOptions(
  session: string,
  uid: string,
  egress: 'Internet' | 'None',
  installation?: string,
): Dockerode.NetworkCreateOptions {
  return {
    Name: sessionNetworkName(session),
    Driver: 'bridge',
    // A network of that name already there is a 409 conflict, not a second network of the same name.
    CheckDuplicate: true,
    Internal: egress === 'None',
    Labels: {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.session]: session,
      [LABELS.uid]: uid,
      ...(installation ? { [LABELS.installation]: installation } : {}),
    },
  };
}

/**
 * The session's own network, created if missing; a network of that name that is not the session's is
 * refused. Created first, and inspected only when the daemon answers that the name is taken: a new
 * session (the common case) costs one call. Two controllers racing for the same session both end up
 * with the one network: the loser's create conflicts and its inspect finds the winner's.
 */
export async function ensureSessionNetwork(
  api: NetworkApi,
  session: string,
  uid: string,
  egress: 'Internet' | 'None',
  installation?: string,
): Promise<string> {
  const options = sessionNetworkCreateOptions(session, uid, egress, installation);
  const name = options.Name;
  try {
    await api.createNetwork(options);
    return name;
  } catch (error) {
    if (dockerStatusCode(error) !== 409) throw error;
    const existing = await api.inspectNetwork(name);
    // Gone again between the conflict and the inspect (removed by whoever made it): the next reconcile creates it.
    if (!existing) throw error;
    if (existing.Labels?.[LABELS.managedBy] !== MANAGED_BY || existing.Labels?.[LABELS.session] !== session) {
      throw new NetworkConflictError(
        `a Docker network named ${name} exists but is not this session's; nothing was connected to it. Remove or rename it to let this session start`,
      );
    }
    return name;
  }
}

/** At deletion, once the session's containers are gone. Never a network that is not the session's. */
export async function removeSessionNetwork(api: NetworkApi, session: string): Promise<void> {
  const name = sessionNetworkName(session);
  const existing = await api.inspectNetwork(name);
  if (existing?.Labels?.[LABELS.managedBy] === MANAGED_BY && existing.Labels[LABELS.session] === session)
    await api.removeNetwork(name);
}
