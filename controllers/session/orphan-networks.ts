/**
 * Session networks whose session is gone: a row deleted while the controller was down (or by hand)
 * never passes through the deletion that removes its network. At start and at each full resync, a
 * network of this installation whose session has no row and which no container uses is removed.
 * Networks of other installations, not labelled as ours, or still used by a container are left: an
 * orphan container is removed by its session's reconcile, and its network goes at the next resync.
 */
import type { Logger } from 'pino';
import type { DockerHost } from '../../src/docker/host';
import { sessionNetworkName } from '../../src/docker/networks';
import { LABELS, MANAGED_FILTER } from '../../src/model/labels';
import type { Db } from '../../src/store/db';
import { listSessionNames } from '../../src/store/sessions';

export interface OrphanNetworksOptions {
  host: DockerHost;
  db: Db;
  installation: string;
  logger: Logger;
}

export class OrphanNetworks {
  private running: Promise<string[]> | undefined;

  constructor(private readonly options: OrphanNetworksOptions) {}

  /** Removes the orphaned networks; returns their names. Never throws: a failure waits for the next resync. */
  prune(): Promise<string[]> {
    this.running ??= this.pruneOnce()
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'removing networks of deleted sessions failed');
        return [];
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async pruneOnce(): Promise<string[]> {
    const { host, db, installation, logger } = this.options;
    // Networks first, rows second: a network listed here whose row is missing from the later read was
    // there before the row was gone, never one a session created after the read.
    const networks = await host.listNetworks([MANAGED_FILTER, `${LABELS.installation}=${installation}`]);
    const sessions = new Set(await listSessionNames(db));
    const removed: string[] = [];
    for (const network of networks) {
      const session = network.Labels?.[LABELS.session];
      if (!session || sessions.has(session) || network.Name !== sessionNetworkName(session)) continue;
      const current = await host.inspectNetwork(network.Name);
      if (!current || Object.keys(current.Containers ?? {}).length > 0) continue;
      try {
        await host.removeNetwork(network.Name);
        removed.push(network.Name);
        logger.info({ network: network.Name, session }, 'removed the network of a deleted session');
      } catch (error) {
        // A container joined it since the inspect (Docker refuses: active endpoints): not an orphan now.
        logger.debug({ network: network.Name, err: error }, 'network of a deleted session not removed');
      }
    }
    return removed;
  }
}
