/**
 * A hung daemon on the real machine: dockerd frozen with SIGSTOP accepts connections but answers
 * nothing. Every call the controller makes meanwhile ends at its deadline, is counted, marks the host
 * degraded, and frees its slot; the controller keeps serving what needs no Docker call, and
 * converges once the daemon answers again.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitAllReady, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let controller: ControllerProcess | undefined;
let frozen: number | undefined;

function dockerdPid(): number {
  const state = path.dirname(process.env.DOCKER_CERT_PATH!);
  return Number(readFileSync(path.join(state, 'docker', 'dockerd.pid'), 'utf8').trim());
}

function thaw(): void {
  if (frozen !== undefined) process.kill(frozen, 'SIGCONT');
  frozen = undefined;
}

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('hung');
});

afterAll(async () => {
  thaw();
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

async function hostHealth(): Promise<{ degraded: boolean; reachable: boolean }> {
  const report = (await (await fetch(`${controller!.metricsUrl}/health`)).json()) as {
    dockerHosts: Array<{ degraded: boolean; reachable: boolean }>;
  };
  return report.dockerHosts[0]!;
}

const FREEZE_MS = 30_000;

test('calls to a dockerd frozen for 30 s end at their deadline, mark the host degraded, and the controller converges without duplicates when it thaws', async () => {
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_DOCKER_TIMEOUT_SECONDS: '2' } });
  await upsert(db.pool, 'before', httpSpec({ ports: [] }));
  await waitConverged(db.pool, 'before');
  expect(await hostHealth()).toMatchObject({ degraded: false, reachable: true });

  frozen = dockerdPid();
  process.kill(frozen, 'SIGSTOP');
  const frozenAt = Date.now();
  const during = Array.from({ length: 6 }, (_, index) => `during-${index}`);
  try {
    for (const name of during) await upsert(db.pool, name, httpSpec({ ports: [] }));
    await waitFor(
      async () => (await controller!.metric('sessionctl_docker_request_timeouts_total', { host: 'default' })) >= 1,
      { timeoutMs: 15_000, what: 'a Docker call to time out' },
    );
    await waitFor(async () => (await hostHealth()).degraded, {
      timeoutMs: 15_000 - (Date.now() - frozenAt),
      what: '/health to show the host degraded within 15 s',
    });
    expect(await controller.metric('sessionctl_docker_host_degraded', { host: 'default' })).toBe(1);
    const reported = await waitFor(
      async () => {
        const view = await row(db.pool, 'during-0');
        return condition(view, 'ContainerRunning')?.reason === 'DockerUnavailable' ? view : undefined;
      },
      { timeoutMs: 20_000, what: 'a session to report that Docker did not answer' },
    );
    expect(condition(reported, 'ContainerRunning')?.message).toMatch(/got no answer within 2s/);
    // Work that needs no Docker call still goes on: an invalid spec is reported at once.
    await upsert(db.pool, 'broken', { image: 'sessionctl/base:dev', resources: { memory: 'lots' } });
    await waitFor(async () => condition(await row(db.pool, 'broken'), 'Valid')?.status === 'False', {
      timeoutMs: 10_000,
      what: 'the invalid spec to be reported while Docker hangs',
    });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, FREEZE_MS - (Date.now() - frozenAt))));
  } finally {
    thaw();
  }
  await waitAllReady(db.pool, ['before', ...during], 120_000);
  // Creates that timed out may have reached the daemon anyway: still exactly one container per session.
  for (const name of ['before', ...during])
    expect((await containersOf(name)).map((info) => info.State)).toEqual(['running']);
}, 240_000);
