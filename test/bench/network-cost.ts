/**
 * `npm run bench:network`: what a network per session costs at create time. In one run, on one daemon,
 * alternating one at a time: (shared) create+start a session's container on the default bridge, as
 * before isolation; (per-session) create its network, then create+start the container on it. Both
 * use the controller's own create options. Prints p50/p95 of each side and the ratio, and writes
 * test/bench/results/network.json. Removes only what it created.
 *
 *   npm run bench:network -- --rounds 20
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type Dockerode from 'dockerode';
import { packageRoot } from '../../src/store/migrate';
import { percentile } from './lib/stats';
import { loadDockerHostConfig } from '../../src/config/docker-host';
import { createDockerClient } from '../../src/docker/client';
import { rawCreateOptions } from './lib/docker';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' } } });
const ROUNDS = Number(values.rounds);
const LABEL = { 'sessionctl-bench.network': 'true' };

async function createStart(docker: Dockerode, name: string, network?: string): Promise<Dockerode.Container> {
  const options = rawCreateOptions(name, 'no', 'Shared');
  const container = await docker.createContainer({
    ...options,
    HostConfig: { ...options.HostConfig, NetworkMode: network },
  });
  await container.start();
  return container;
}

async function main(): Promise<void> {
  const docker = createDockerClient(loadDockerHostConfig());
  const shared: number[] = [];
  const perSession: number[] = [];
  const made: Array<() => Promise<unknown>> = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      let started = performance.now();
      const a = await createStart(docker, `net-shared-${round}`);
      shared.push(performance.now() - started);
      made.push(() => a.remove({ force: true }));

      started = performance.now();
      const name = `benchnet-${round}`;
      await docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: LABEL });
      const b = await createStart(docker, `net-own-${round}`, name);
      perSession.push(performance.now() - started);
      made.push(async () => {
        await b.remove({ force: true });
        await docker.getNetwork(name).remove();
      });
    }
  } finally {
    for (const cleanup of made) await cleanup().catch(() => undefined);
  }
  const summary = (samples: number[]) => ({
    p50: Math.round(percentile(samples, 50)),
    p95: Math.round(percentile(samples, 95)),
  });
  const result = {
    rounds: ROUNDS,
    sharedBridgeMs: summary(shared),
    perSessionNetworkMs: summary(perSession),
    ratioP50: Math.round((percentile(perSession, 50) / percentile(shared, 50)) * 100) / 100,
  };
  console.log(JSON.stringify(result, null, 2));
  const dir = path.join(packageRoot(), 'test', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'network.json'),
    `${JSON.stringify({ at: new Date().toISOString(), ...result }, null, 2)}\n`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
