/**
 * The placer: gives each session waiting for a host one, through the transactional placement of
 * src/store/placement.ts, so any number of replicas may place at once. It runs when woken (a new or
 * unplaced row, a host change that can make room, the safety poll), one pass at a time, and a pass
 * asked for while one runs is made right after it. What fits nowhere gets Scheduled=False with the
 * reason and the numbers, written once per message.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { validateSpec } from '../../../crds/session';
import { effectiveMemoryBytes, type ContainerDefaults } from '../../../src/docker/container-config';
import type { PlacementPolicy } from '../../../src/model/placement';
import type { Metrics } from '../../../src/metrics/registry';
import {
  finishUnplacedDeletions,
  listPendingPlacements,
  placeSessions,
  writeUnplacedStatus,
  type PendingPlacement,
  type PlaceRequest,
} from '../../../src/store/placement';
import { unscheduledStatus } from './fleet-status';

const BATCH = 500;

export interface PlacerOptions {
  pool: Pool;
  logger: Logger;
  metrics: Metrics;
  policy: PlacementPolicy;
  defaults: Pick<ContainerDefaults, 'memoryBytes'>;
  /** Sessions just placed, by host: the replica queues those on hosts it holds without waiting for the notification. */
  onPlaced(host: string, sessions: string[]): void;
  now?: () => Date;
}

export class Placer {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly options: PlacerOptions) {}

  /** Places what waits, now or right after the pass in progress. Never rejects. */
  wake(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.passes().finally(() => (this.running = undefined));
    return this.running;
  }

  private async passes(): Promise<void> {
    do {
      this.again = false;
      try {
        await finishUnplacedDeletions(this.options.pool);
        while ((await this.pass()) === BATCH);
      } catch (error) {
        this.options.logger.warn({ err: error }, 'placement pass failed; the next wake or safety poll retries');
      }
    } while (this.again);
  }

  /** One batch, oldest change first; returns how many were looked at. */
  private async pass(): Promise<number> {
    const { pool, policy } = this.options;
    const pending = await listPendingPlacements(pool, BATCH);
    if (pending.length === 0) {
      this.countUnschedulable([]);
      return 0;
    }
    const byName = new Map(pending.map((session) => [session.name, session]));
    const results = await placeSessions(pool, pending.map(this.request), { policy });
    const placed = new Map<string, string[]>();
    const unscheduled: Array<{ reason: string }> = [];
    for (const result of results) {
      if (result.outcome === 'placed') {
        placed.set(result.host, [...(placed.get(result.host) ?? []), result.session]);
        const waited = (Date.now() - byName.get(result.session)!.changedAt.getTime()) / 1000;
        this.options.metrics.fleet.schedulingLatency.observe(Math.max(0, waited));
      } else if (result.outcome === 'unscheduled') {
        unscheduled.push(result);
        await this.tellUnscheduled(byName.get(result.session)!, result);
      }
    }
    for (const [host, sessions] of placed) this.options.onPlaced(host, sessions);
    this.countUnschedulable(unscheduled);
    return pending.length;
  }

  /** What the placement needs from the row: memory, selector, pinned host; an unreadable spec is placed as the default. */
  private readonly request = (session: PendingPlacement): PlaceRequest => {
    const spec = validateSpec(session.spec);
    const valid = spec.ok ? spec.value : undefined;
    return {
      session: session.name,
      uid: session.uid,
      memoryBytes:
        (valid && effectiveMemoryBytes(valid, this.options.defaults)) || (this.options.defaults.memoryBytes ?? 0),
      ...(valid?.hostSelector ? { hostSelector: valid.hostSelector } : {}),
      ...(valid?.host ? { hostName: valid.host } : {}),
      ...(session.runningOn ? { runningOn: session.runningOn } : {}),
    };
  };

  private async tellUnscheduled(session: PendingPlacement, result: { reason: string; message: string }): Promise<void> {
    if (session.unscheduledMessage === result.message) return;
    const status = unscheduledStatus(
      session.status,
      session.generation,
      validateSpec(session.spec),
      result as Parameters<typeof unscheduledStatus>[3],
      (this.options.now ?? (() => new Date()))(),
    );
    await writeUnplacedStatus(this.options.pool, { name: session.name, generation: session.generation, status });
  }

  private countUnschedulable(unscheduled: Array<{ reason: string }>): void {
    const counts = new Map<string, number>();
    for (const { reason } of unscheduled) counts.set(reason, (counts.get(reason) ?? 0) + 1);
    for (const reason of ['NoMatchingHost', 'AllHostsCordoned', 'AllHostsUnavailable', 'AllHostsFull'])
      this.options.metrics.fleet.unschedulable.set({ reason }, counts.get(reason) ?? 0);
  }
}
