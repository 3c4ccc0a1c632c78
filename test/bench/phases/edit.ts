/**
 * One-session edit: change the environment of one of N running sessions and time until the new
 * container runs. Raw dockerode (remove, create, start: the floor), docker-compose (edit the file,
 * `up -d`: compose compares the config hash of all N services to find the one to recreate) and the
 * controller (UPDATE one row's spec: from the commit until the row is Ready at the new generation
 * with a new container). The container's own network (PerSession) stays: raw reuses it, as do the others.
 */
import { performance } from 'node:perf_hooks';
import type Dockerode from 'dockerode';
import type { TestDatabase } from '../../helpers/database';
import type { ComposeProject } from '../lib/compose';
import type { NetworkMode } from '../../../src/docker/networks';
import { rawCreateOptions } from '../lib/docker';
import { sleep, summarize, type Summary } from '../lib/stats';

export interface EditResult {
  trials: number;
  seconds: Summary;
  samples: number[];
}

export async function rawEdits(
  docker: Dockerode,
  names: string[],
  trials: number,
  networkMode: NetworkMode,
): Promise<EditResult> {
  const samples: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const name = names[(trial * 7) % names.length];
    const options = rawCreateOptions(name, 'no', networkMode);
    const t0 = performance.now();
    await docker.getContainer(options.name!).remove({ force: true });
    const container = await docker.createContainer({ ...options, Env: [...(options.Env ?? []), `EDIT=${trial}`] });
    await container.start();
    samples.push((performance.now() - t0) / 1000);
  }
  return { trials, seconds: summarize(samples), samples };
}

export async function composeEdits(
  docker: Dockerode,
  project: ComposeProject,
  trials: number,
): Promise<EditResult & { output: string }> {
  const samples: number[] = [];
  let output = '';
  for (let trial = 0; trial < trials; trial++) {
    const service = project.services[(trial * 7) % project.services.length];
    project.edit(service, 'EDIT', String(trial));
    const up = await project.up(600_000);
    const { Config } = await docker.getContainer(project.containerName(service)).inspect();
    if (!Config.Env.includes(`EDIT=${trial}`)) throw new Error(`compose did not recreate ${service} with the edit`);
    samples.push(up.seconds);
    output = up.output;
  }
  return { trials, seconds: summarize(samples), samples, output: output.slice(-1000) };
}

const CONVERGED_SQL = `SELECT (status->>'observedGeneration')::bigint = generation
    AND status @> '{"conditions":[{"type":"Ready","status":"True"}]}' AND status->>'containerId' <> $2 AS done
  FROM sessionctl.sessions WHERE name = $1`;

export async function controllerEdits(
  db: TestDatabase,
  names: string[],
  spec: { env?: Record<string, string> },
  trials: number,
  pollMs = 5,
): Promise<EditResult> {
  const samples: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const name = names[(trial * 7) % names.length];
    const before = (
      await db.pool.query<{ id: string }>(
        `SELECT status->>'containerId' AS id FROM sessionctl.sessions WHERE name = $1`,
        [name],
      )
    ).rows[0].id;
    const edited = { ...spec, env: { ...spec.env, EDIT: String(trial) } };
    await db.pool.query('UPDATE sessionctl.sessions SET spec = $2 WHERE name = $1', [name, JSON.stringify(edited)]);
    // Timed from the commit's acknowledgement, as the throughput phase does.
    const t0 = performance.now();
    const deadline = Date.now() + 60_000;
    for (;;) {
      if ((await db.pool.query<{ done: boolean }>(CONVERGED_SQL, [name, before])).rows[0]?.done) break;
      if (Date.now() > deadline) throw new Error(`session ${name} did not converge after an edit within 60 s`);
      await sleep(pollMs);
    }
    samples.push((performance.now() - t0) / 1000);
  }
  return { trials, seconds: summarize(samples), samples };
}
