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
import { dockerStatusCode } from './errors';

/** How sessions are networked (SESSIONCTL_NETWORK_MODE). */
export type NetworkMode = 'PerSession' | 'Shared';

export function sessionNetworkName(session: string): string {
  return `sessionctl-${session}`;
}

export interface NetworkApi {
  inspectNetwork(name: string): Promise<Dockerode.NetworkInspectInfo | undefined>;
  listNetworks(labels: string[]): Promise<Dockerode.NetworkInspectInfo[]>;
  createNetwork(options: Dockerode.NetworkCreateOptions): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  /**
   * A create of this name may still be queued at the daemon, to be carried out later: one got no
   * answer, or the daemon has lately not answered or timed out calls.
   */
  createMayBePending(name: string): boolean;
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
 * refused. A new session's network is created straight away (a 409 means it is there already, and it
 * is then inspected). It is inspected first when it probably exists (the session had a container), and
 * when a create of it may be pending: a create sent to a daemon that does not answer (frozen,
 * overloaded) is queued there and carried out later, and creates retried meanwhile would each make a
 * network of the same name (dockerd's CheckDuplicate does not stop concurrent creates). An inspect
 * that times out sends nothing. What this process did not see (a create queued by a replica that held
 * the host before) can still make a duplicate: should duplicates exist, the oldest is kept and the
 * others, all labelled as this session's, are removed (a container create on the ambiguous name
 * fails, and its retry inspects).
 */
export async function ensureSessionNetwork(
  api: NetworkApi,
  session: string,
  uid: string,
  egress: 'Internet' | 'None',
  installation?: string,
  { likelyExists = true }: { likelyExists?: boolean } = {},
): Promise<string> {
  const options = sessionNetworkCreateOptions(session, uid, egress, installation);
  const name = options.Name;
  if (!likelyExists && !api.createMayBePending(name)) {
    try {
      await api.createNetwork(options);
      return name;
    } catch (error) {
      if (dockerStatusCode(error) !== 409) throw error;
    }
  }
  const existing = await inspectOrDeduplicate(api, session);
  if (existing) {
    if (existing.Labels?.[LABELS.managedBy] !== MANAGED_BY || existing.Labels?.[LABELS.session] !== session) {
      throw new NetworkConflictError(
        `a Docker network named ${name} exists but is not this session's; nothing was connected to it. Remove or rename it to let this session start`,
      );
    }
    return name;
  }
  await api.createNetwork(options);
  return name;
}

/** The network of the session's name; with several of that name (see above), the oldest, after removing the rest. */
async function inspectOrDeduplicate(
  api: NetworkApi,
  session: string,
): Promise<Dockerode.NetworkInspectInfo | undefined> {
  const name = sessionNetworkName(session);
  try {
    return await api.inspectNetwork(name);
  } catch (error) {
    if (dockerStatusCode(error) !== 400 || !/ambiguous/.test(String((error as Error).message))) throw error;
    const same = (await api.listNetworks([`${LABELS.session}=${session}`]))
      .filter((network) => network.Name === name && network.Labels?.[LABELS.managedBy] === MANAGED_BY)
      .sort((a, b) => Date.parse(a.Created) - Date.parse(b.Created));
    for (const duplicate of same.slice(1)) await api.removeNetwork(duplicate.Id);
    return same.length > 0 ? api.inspectNetwork(name) : undefined;
  }
}

/** At deletion, once the session's containers are gone. Never a network that is not the session's. */
export async function removeSessionNetwork(api: NetworkApi, session: string): Promise<void> {
  const name = sessionNetworkName(session);
  const existing = await api.inspectNetwork(name);
  if (existing?.Labels?.[LABELS.managedBy] === MANAGED_BY && existing.Labels[LABELS.session] === session)
    await api.removeNetwork(name);
}
