/**
 * Wake on request, measured: a session stopped by its idle timeout is asked for through the gateway,
 * and the time to the first byte of the answer is compared, in the same run and on the same daemon,
 * with what the container itself needs: dockerode creating and starting the same image and command
 * with the same limits, to the first byte from its published port. Runs the real controller and
 * gateway against the dev dockerd (the npm script brings it up).
 */
import type Dockerode from 'dockerode';
import { startController, type ControllerProcess } from '../../helpers/controller';
import { createTestDatabase } from '../../helpers/database';
import { containersOf, removeManagedContainers, removeManagedVolumes, testDocker } from '../../helpers/docker';
import { startGateway, type GatewayProcess } from '../../helpers/gateway';
import { condition, httpSpec, row, upsert } from '../../helpers/sessions';
import { waitFor } from '../../helpers/wait';
import { readToken } from '../../../src/store/tokens';

export interface WakeFigures {
  samples: number;
  /** Idle-stopped session: request through the gateway to the first byte of its answer. */
  wakeMs: { p50: number; max: number };
  /** dockerode create + start of the same container, to the first byte from its port. */
  rawMs: { p50: number; max: number };
  /** wakeMs.p50 / rawMs.p50. */
  ratio: number;
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

/** The container as the controller would run it, created and started by dockerode directly. */
async function rawCreateStart(docker: Dockerode, round: number): Promise<number> {
  const started = performance.now();
  const container = await docker.createContainer({
    name: `sctl-bench-raw-${process.pid}-${round}`,
    Image: spec.image,
    Cmd: spec.command,
    Env: Object.entries(spec.env ?? {}).map(([key, value]) => `${key}=${value}`),
    ExposedPorts: { '8080/tcp': {} },
    HostConfig: {
      PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
      Memory: 32 * 1024 * 1024,
      NanoCpus: 200_000_000,
    },
  });
  try {
    await container.start();
    const info = await container.inspect();
    const port = info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
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
    await container.remove({ force: true });
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
    return { samples: ROUNDS, wakeMs, rawMs, ratio: Number((wakeMs.p50 / rawMs.p50).toFixed(2)) };
  } finally {
    await gateway?.stop();
    await controller?.stop();
    await removeManagedContainers();
    await removeManagedVolumes();
    await db.drop();
  }
}
