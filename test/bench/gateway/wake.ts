/**
 * Wake on request, measured: a session stopped by its idle timeout is asked for through the gateway,
 * and the time to the first byte of the answer is compared, in the same run and on the same daemon,
 * with what the container itself needs: dockerode creating and starting the same container, from the
 * controller's own create options, to the first byte from its published port. Runs the real controller and
 * gateway against the dev dockerd (the npm script brings it up).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type Dockerode from 'dockerode';
import { startController, type ControllerProcess } from '../../helpers/controller';
import { createTestDatabase } from '../../helpers/database';
import { containersOf, removeManagedContainers, removeManagedVolumes, testDocker } from '../../helpers/docker';
import { startGateway, type GatewayProcess } from '../../helpers/gateway';
import { condition, httpSpec, row, upsert } from '../../helpers/sessions';
import { waitFor } from '../../helpers/wait';
import { readToken } from '../../../src/store/tokens';
import { containerDefaults } from '../../../controllers/session/host-wiring';
import { validateSpec } from '../../../crds/session';
import { loadConfig } from '../../../src/config';
import { containerCreateOptions } from '../../../src/docker/container-config';
import { sessionNetworkCreateOptions } from '../../../src/docker/networks';

export interface WakeFigures {
  samples: number;
  /** Idle-stopped session: request through the gateway to the first byte of its answer. */
  wakeMs: { p50: number; max: number };
  /** dockerode create + start of the same container (the controller's create options), to the first byte from its port. */
  rawMs: { p50: number; max: number };
  /** wakeMs.p50 / rawMs.p50. */
  ratio: number;
  /** Every round's wake and raw figure, in order, for the spread. */
  rounds: Array<{ wakeMs: number; rawMs: number }>;
}

const ROUNDS = Number(process.env.BENCH_WAKE_ROUNDS ?? 5);
const IDLE_SECONDS = 3;
const spec = httpSpec({ idleTimeoutSeconds: IDLE_SECONDS, idleAction: 'Stop', auth: { tokenTtlSeconds: 3600 } });

/** Resolves at the response's head (the first byte): fetch resolves once the status line and headers arrive. */
async function firstByteMs(url: string, headers: Record<string, string>): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, { headers });
  const ms = performance.now() - started;
  const body = await response.text();
  if (response.status !== 200)
    throw new Error(
      `the woken session answered ${response.status} (${response.headers.get('x-sessionctl-reason')}): ${body.trim()}`,
    );
  return ms;
}

/**
 * The container exactly as the controller makes it for this spec (the controller's own create options:
 * its network of its own, hardening, limits and token mount), created and started by dockerode
 * directly, to the first byte from its port. Its name and labels are not the controller's, so that
 * the controller leaves it alone. The network is made beforehand and not timed: a woken session's
 * network exists already, so the baseline is the cheaper of the two.
 */
async function rawCreateStart(docker: Dockerode, round: number): Promise<number> {
  const valid = validateSpec(spec);
  if (!valid.ok) throw new Error('the wake spec does not validate');
  const name = `bench-raw-${process.pid}-${round}`;
  const defaults = containerDefaults(loadConfig(), 'bench-raw');
  const networkOptions = sessionNetworkCreateOptions(name, randomUUID(), defaults.defaultEgress ?? 'Internet');
  const network = await docker.createNetwork({ ...networkOptions, Labels: {} });
  const options = containerCreateOptions({ name, uid: randomUUID(), generation: 1 }, valid.value, defaults, {
    network: networkOptions.Name,
  });
  const volumes = (options.HostConfig?.Mounts ?? []).flatMap((mount) =>
    mount.Type === 'volume' ? [mount.Source] : [],
  );
  let container: Dockerode.Container | undefined;
  try {
    const started = performance.now();
    container = await docker.createContainer({ ...options, name: `sctl-${name}`, Labels: {} });
    await container.start();
    const info = await container.inspect();
    const port = Object.values(info.NetworkSettings.Ports ?? {})[0]?.[0]?.HostPort;
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port}/`).then(
          (response) => response.arrayBuffer().then(() => true),
          () => false,
        ),
      { timeoutMs: 30_000, intervalMs: 5, what: 'the raw container to answer' },
    );
    return performance.now() - started;
  } finally {
    await container?.remove({ force: true });
    await network.remove();
    for (const volume of volumes) await docker.getVolume(volume).remove();
  }
}

/** Stopped by its idle timeout: the Ready reason says so and no container of it runs. */
async function idledOut(db: { pool: import('pg').Pool }, gateway: GatewayProcess): Promise<void> {
  await waitFor(
    async () => {
      if (condition(await row(db.pool, 'wake'), 'Ready')?.reason !== 'IdleTimeout') return false;
      // The controller may stop the container or remove it; either way nothing of it runs.
      return (await containersOf('wake')).every((container) => container.State !== 'running');
    },
    { timeoutMs: 60_000, what: 'the session to idle out and its container to stop' },
  );
  // The gateway's table must have seen the stop before the timed request, or it would not wake.
  await waitFor(async () => (await gateway.metric('sessionctl_gateway_routes', { ready: 'false' })) === 1, {
    timeoutMs: 10_000,
    what: 'the gateway to see the stop',
  });
}

const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: Math.round(sorted[Math.floor(sorted.length / 2)]), max: Math.round(sorted[sorted.length - 1]) };
};

export async function measureWake(): Promise<WakeFigures> {
  await removeManagedContainers();
  // The session's token volume belongs to the database that made it: one left by an earlier run would clash.
  await removeManagedVolumes();
  const db = await createTestDatabase('bench_wake');
  let controller: ControllerProcess | undefined;
  let gateway: GatewayProcess | undefined;
  try {
    controller = await startController({ databaseUrl: db.url });
    gateway = await startGateway({ databaseUrl: db.url, env: { SESSIONCTL_GATEWAY_ACTIVITY_FLUSH_MS: '200' } });
    await upsert(db.pool, 'wake', spec);
    const { token } = await waitFor(() => readToken(db.pool, 'wake'), { timeoutMs: 60_000, what: 'the token' });
    const url = `${gateway.url}/s/wake/`;
    const headers = { authorization: `Bearer ${token}` };
    const wake: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await idledOut(db, gateway);
      wake.push(await firstByteMs(url, headers));
      raw.push(await rawCreateStart(testDocker(), round));
    }
    const [wakeMs, rawMs] = [summary(wake), summary(raw)];
    return {
      samples: ROUNDS,
      wakeMs,
      rawMs,
      ratio: Number((wakeMs.p50 / rawMs.p50).toFixed(2)),
      rounds: wake.map((ms, index) => ({ wakeMs: Math.round(ms), rawMs: Math.round(raw[index]) })),
    };
  } finally {
    // BENCH_WAKE_LOG=<file>: both processes' logs, to see where a slow wake spent its time.
    if (process.env.BENCH_WAKE_LOG)
      writeFileSync(process.env.BENCH_WAKE_LOG, `${controller?.output() ?? ''}\n${gateway?.output() ?? ''}`);
    await gateway?.stop();
    await controller?.stop();
    await removeManagedContainers();
    await removeManagedVolumes();
    await db.drop();
  }
}
