/**
 * `npm run bench:fleet`, part 1: N sessions over the three dockerds, by two controller replicas,
 * against raw dockerode spreading the same creates over the same daemons (round robin, one queue per
 * daemon with the controller's per-host Docker concurrency; per session its own network, then the
 * container create and start with the controller's own create options, as the controller does in its
 * default network mode).
 */
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import PQueue from 'p-queue';
import type { FleetDaemon } from '../../helpers/fleet-docker';
import { rawCreateOptions } from '../lib/docker';
import { sleep, summarize, type Summary } from '../lib/stats';

export const RAW_LABEL = { 'sessionctl-bench.fleet-baseline': 'true' };

export interface RawFleetResult {
  seconds: number;
  perDaemon: Record<string, number>;
  perContainer: Summary;
  /** Starts refused because another daemon's proxy had just taken the host port (retried). */
  portCollisions: number;
}

/**
 * The dev daemons share one network namespace, and each picks free host ports for published ports
 * by itself: two may pick the same one, and the second start fails "address already in use" (on
 * separate machines this cannot happen). The baseline then does what the controller does: removes
 * the container and creates it again.
 */
async function createStart(daemon: FleetDaemon, name: string, network: string): Promise<number> {
  const options = rawCreateOptions(name, 'no', 'Shared');
  for (let attempt = 0; ; attempt++) {
    const container = await daemon.docker.createContainer({
      ...options,
      Labels: { ...options.Labels, ...RAW_LABEL },
      HostConfig: { ...options.HostConfig, NetworkMode: network },
    });
    try {
      await container.start();
      return attempt;
    } catch (error) {
      if (attempt >= 5 || !/address already in use/.test((error as Error).message)) throw error;
      await container.remove({ force: true });
    }
  }
}

export async function rawFleet(daemons: FleetDaemon[], names: string[], concurrency: number): Promise<RawFleetResult> {
  const queues = daemons.map(() => new PQueue({ concurrency }));
  const perDaemon: Record<string, number> = {};
  let portCollisions = 0;
  const t0 = performance.now();
  const ready = await Promise.all(
    names.map((name, index) => {
      const daemon = daemons[index % daemons.length];
      perDaemon[daemon.name] = (perDaemon[daemon.name] ?? 0) + 1;
      return queues[index % daemons.length].add(async () => {
        const network = rawCreateOptions(name, 'no', 'Shared').name!;
        await daemon.docker.createNetwork({ Name: network, Driver: 'bridge', CheckDuplicate: true, Labels: RAW_LABEL });
        portCollisions += await createStart(daemon, name, network);
        return (performance.now() - t0) / 1000;
      });
    }),
  );
  return {
    seconds: (performance.now() - t0) / 1000,
    perDaemon,
    perContainer: summarize(ready as number[]),
    portCollisions,
  };
}

/** The raw baseline's containers and networks on every daemon, removed (nothing else is touched). */
export async function removeRaw(daemons: FleetDaemon[]): Promise<number> {
  let removed = 0;
  const label = `${Object.keys(RAW_LABEL)[0]}=true`;
  await Promise.all(
    daemons.map(async (daemon) => {
      const queue = new PQueue({ concurrency: 4 });
      const infos = await daemon.docker.listContainers({ all: true, filters: { label: [label] } });
      removed += infos.length;
      await Promise.all(
        infos.map((info) =>
          queue.add(() =>
            daemon.docker
              .getContainer(info.Id)
              .remove({ force: true })
              .catch(() => undefined),
          ),
        ),
      );
      for (const network of await daemon.docker.listNetworks({ filters: { label: [label] } }))
        await daemon.docker
          .getNetwork(network.Id)
          .remove()
          .catch(() => undefined);
    }),
  );
  return removed;
}

/** Rows Ready at their generation on the host they are placed on (one cheap query). */
const READY_SQL = `SELECT count(*)::int AS n FROM sessionctl.sessions
  WHERE (status->>'observedGeneration')::bigint = generation AND placed_host IS NOT NULL
    AND status->>'host' = placed_host AND status @> '{"conditions":[{"type":"Ready","status":"True"}]}'
    AND ($1::text[] IS NULL OR name = ANY($1))`;

export async function readyCount(pool: Pool, names?: string[]): Promise<number> {
  return (await pool.query<{ n: number }>(READY_SQL, [names ?? null])).rows[0].n;
}

/** Polls every pollMs until `count` rows are Ready; seconds from `from` (a performance.now()). */
export async function waitReadyCount(
  pool: Pool,
  count: number,
  options: { from: number; pollMs: number; timeoutMs: number; names?: string[] },
): Promise<number> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const ready = await readyCount(pool, options.names);
    if (ready >= count) return (performance.now() - options.from) / 1000;
    if (Date.now() > deadline)
      throw new Error(`only ${ready} of ${count} sessions Ready after ${options.timeoutMs} ms`);
    await sleep(options.pollMs);
  }
}

export async function insertRows(pool: Pool, names: string[], spec: object): Promise<void> {
  for (let from = 0; from < names.length; from += 1000)
    await pool.query(
      'INSERT INTO sessionctl.sessions (name, spec) SELECT name, $2::jsonb FROM unnest($1::text[]) AS name',
      [names.slice(from, from + 1000), JSON.stringify(spec)],
    );
}

export async function placedPerHost(pool: Pool): Promise<Record<string, number>> {
  const result = await pool.query<{ host: string; n: number }>(
    'SELECT placed_host AS host, count(*)::int AS n FROM sessionctl.sessions WHERE placed_host IS NOT NULL GROUP BY 1 ORDER BY 1',
  );
  return Object.fromEntries(result.rows.map((row) => [row.host, row.n]));
}
