/**
 * Bad input gets a clear error and loses nothing: a broken row is reported with its field path and
 * retried with growing backoff, never hot-looping, while every other session converges.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { listEvents } from '../../src/store/events';

let db: TestDatabase;
let controller: ControllerProcess;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('badinput');
  controller = await startController({ databaseUrl: db.url });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

async function waitReason(name: string, type: string, reason: string) {
  return waitFor(
    async () => {
      const view = await row(db.pool, name);
      return view && view.status.observedGeneration === view.generation && condition(view, type)?.reason === reason
        ? view
        : undefined;
    },
    { what: `${name} to report ${type} ${reason}` },
  );
}

/** retryInMs of each failed reconcile of one session, in order, from the controller's JSON logs. */
function retryDelays(session: string): number[] {
  return controller
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { session?: string; msg?: string; retryInMs?: number })
    .filter((entry) => entry.session === session && entry.msg === 'reconcile failed')
    .map((entry) => entry.retryInMs!);
}

test('broken rows are reported with the field path, retried with growing backoff, and others are unaffected', async () => {
  await upsert(db.pool, 'bad-memory', httpSpec({ resources: { memory: 'lots' } }));
  await upsert(db.pool, 'bad-type', { image: 42, ports: 'http' });
  await upsert(db.pool, 'bad-image', httpSpec({ image: 'sessionctl/missing:dev', imagePullPolicy: 'Never' }));
  await upsert(db.pool, 'good', httpSpec());

  const memory = await waitReason('bad-memory', 'Valid', 'InvalidSpec');
  expect(condition(memory, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
  expect(condition(memory, 'Ready')!.message).toMatch(/spec\.resources\.memory: expected a memory quantity/);
  expect(memory.status.phase).toBe('Pending');

  const types = await waitReason('bad-type', 'Valid', 'InvalidSpec');
  expect(condition(types, 'Valid')!.message).toMatch(/spec\.image/);
  expect(condition(types, 'Valid')!.message).toMatch(/spec\.ports/);

  const image = await waitReason('bad-image', 'ImageReady', 'ImageNotPresent');
  expect(condition(image, 'Ready')).toMatchObject({ status: 'False', reason: 'ImageNotPresent' });
  expect(condition(image, 'Ready')!.message).toMatch(/sessionctl\/missing:dev/);

  await waitConverged(db.pool, 'good');

  // Retries continue, each further apart than the last (the work queue's per-key backoff: 500 ms
  // doubling, ±20% jitter, so each delay is at least 1.33 times the one before): wait for four of them.
  for (const name of ['bad-memory', 'bad-image']) {
    await waitFor(() => retryDelays(name).length >= 4, { timeoutMs: 30_000, what: `four retries of ${name}` });
  }
  const invalidEvents = (await listEvents(db.pool, 'bad-memory')).filter((event) => event.reason === 'InvalidSpec');
  for (const name of ['bad-memory', 'bad-image']) {
    const delays = retryDelays(name);
    const shrinking = delays.slice(1).filter((delay, index) => delay < 1.3 * delays[index]);
    expect({ name, delays, shrinking }).toEqual({ name, delays, shrinking: [] });
  }
  // One event, deduplicated: counted once per failed attempt at most, never once per retry of another row.
  expect(invalidEvents).toHaveLength(1);
  expect(invalidEvents[0].count).toBeGreaterThanOrEqual(1);
  expect(invalidEvents[0].count).toBeLessThanOrEqual(retryDelays('bad-memory').length + 1);
  // The controller stayed up and the good session stayed Ready throughout.
  expect(controller.child.exitCode).toBeNull();
  expect(condition(await row(db.pool, 'good'), 'Ready')?.status).toBe('True');
});

test('runtime fields: privileged, cpus "-1" and a health port that names no port are refused with the field path, and no container is made', async () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['bad-privileged', { securityContext: { privileged: true } }, /spec\.securityContext\.privileged: .*never allowed/],
    ['bad-privileged-top', { privileged: true }, /spec\.privileged: .*never allowed/],
    ['bad-cpus', { resources: { cpus: '-1' } }, /spec\.resources\.cpus: .*positive number of CPUs/],
    [
      'bad-health-port',
      { healthCheck: { httpGet: { port: 'web', path: '/' } } },
      /spec\.healthCheck\.httpGet\.port: names no port: spec\.ports has "http"/,
    ],
  ];
  for (const [name, fields] of cases) await upsert(db.pool, name, httpSpec(fields));
  for (const [name, , message] of cases) {
    const view = await waitReason(name, 'Valid', 'InvalidSpec');
    expect(condition(view, 'Valid')).toMatchObject({ status: 'False' });
    expect(condition(view, 'Valid')!.message).toMatch(message);
    expect(view.status.containerId).toBeUndefined();
  }
  expect(controller.child.exitCode).toBeNull();
  expect(condition(await row(db.pool, 'good'), 'Ready')?.status).toBe('True');
});

test('fixing a broken spec converges at once, without waiting out the backoff', async () => {
  await upsert(db.pool, 'bad-memory', httpSpec({ resources: { memory: '64Mi' } }));
  await waitConverged(db.pool, 'bad-memory', 'True', 5_000);
});

test('DOCKER_HOST=tcp:// without TLS makes the controller exit non-zero with a clear message', async () => {
  const refused = await startController({ databaseUrl: db.url, env: { DOCKER_TLS_VERIFY: '' }, waitReady: false });
  expect(await refused.exited).toBe(1);
  expect(refused.output()).toMatch(
    /DOCKER_HOST=tcp:\/\/127\.0\.0\.1:\d+ without DOCKER_TLS_VERIFY=1 would be plain TCP.*Refusing/,
  );
});

test('a unix socket is refused unless the development flag is set', async () => {
  const refused = await startController({
    databaseUrl: db.url,
    env: { DOCKER_HOST: 'unix:///var/run/docker.sock' },
    waitReady: false,
  });
  expect(await refused.exited).toBe(1);
  expect(refused.output()).toMatch(/SESSIONCTL_DEV_ALLOW_UNIX_SOCKET=1/);
});

test('the daemon refuses a client without a certificate', async () => {
  const ca = readFileSync(path.join(process.env.DOCKER_CERT_PATH!, 'ca.pem'));
  const outcome = await new Promise<string>((resolve) => {
    const request = https.get(
      {
        host: '127.0.0.1',
        port: Number(new URL(process.env.DOCKER_HOST!.replace(/^tcp:/, 'https:')).port),
        path: '/version',
        ca,
      },
      (response) => resolve(`HTTP ${response.statusCode}`),
    );
    request.on('error', (error) => resolve(`error: ${error.message}`));
  });
  expect(outcome).toMatch(/^error: .*(certificate|handshake|socket hang up|ECONNRESET)/i);
});
