/**
 * A half-open event stream on the real daemon: the controller reaches dockerd through a TCP relay
 * that freezes every connection it holds (no data, no close, as a dropped NAT entry does). The stream
 * then misses a container's death; the liveness check notices within seconds, not at the next full
 * resync (five minutes), and the controller reconnects, re-lists and restarts the container.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';

/** Relays TCP to the daemon; `freeze()` stops every connection open at that moment, without closing it. */
class FreezingRelay {
  private readonly pairs: Array<[Socket, Socket]> = [];
  private server: Server | undefined;
  port = 0;

  async start(target: { host: string; port: number }): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      client.pipe(upstream);
      upstream.pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      this.pairs.push([client, upstream]);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  freeze(): number {
    const open = this.pairs.filter(([client]) => !client.destroyed);
    for (const [client, upstream] of open) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    return open.length;
  }

  async stop(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

let db: TestDatabase;
let controller: ControllerProcess | undefined;
const relay = new FreezingRelay();

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('event_stream');
  const daemon = new URL(process.env.DOCKER_HOST!.replace(/^tcp:/, 'http:'));
  await relay.start({ host: daemon.hostname, port: Number(daemon.port) });
});

afterAll(async () => {
  await controller?.stop();
  await relay.stop();
  await removeManagedContainers();
  await db?.drop();
});

test('a frozen event stream is noticed by its liveness check, and a container that died meanwhile is restarted', async () => {
  controller = await startController({
    databaseUrl: db.url,
    env: { DOCKER_HOST: `tcp://127.0.0.1:${relay.port}`, SESSIONCTL_DOCKER_TIMEOUT_SECONDS: '3' },
  });
  await upsert(db.pool, 'watched', httpSpec({ ports: [] }));
  const ready = await waitConverged(db.pool, 'watched');
  expect(await controller.metric('sessionctl_docker_event_stream_stalls_total', { host: 'default' })).toBe(0);

  expect(relay.freeze()).toBeGreaterThan(0);
  await testDocker().getContainer(ready.status.containerId!).kill({ signal: 'SIGKILL' });

  // The full resync is five minutes away: only the liveness check can bring this about in time.
  await waitFor(
    async () => (await controller!.metric('sessionctl_docker_event_stream_stalls_total', { host: 'default' })) >= 1,
    { timeoutMs: 30_000, what: 'the stalled stream to be noticed' },
  );
  const restarted = await waitFor(
    async () => {
      const view = await row(db.pool, 'watched');
      return (view?.status.restartCount ?? 0) >= 1 && condition(view, 'Ready')?.status === 'True' ? view : undefined;
    },
    { timeoutMs: 30_000, what: 'the killed container to be restarted after the reconnect' },
  );
  expect(restarted.status).toMatchObject({ containerId: ready.status.containerId, lastExitCode: 137 });
}, 120_000);
