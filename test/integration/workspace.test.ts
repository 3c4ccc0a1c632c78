/**
 * What a user's workspace gets on the real daemon: endpoints a proxy can route to, volumes that
 * outlive containers, hardened defaults, and host bind mounts only where the operator allows.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers, removeManagedVolumes, testDocker, volumeExists } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let controller: ControllerProcess;
const allowed = mkdtempSync('/tmp/sctl-allowed-');

beforeAll(async () => {
  await removeManagedContainers();
  await removeManagedVolumes();
  writeFileSync(path.join(allowed, 'shared.txt'), 'from the host\n');
  db = await createTestDatabase('workspace');
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_ALLOWED_HOST_PATHS: allowed } });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedVolumes();
  await db?.drop();
  rmSync(allowed, { recursive: true, force: true });
});

test('status.endpoints maps each port to a loopback host:port that answers HTTP, also after a restart', async () => {
  await upsert(db.pool, 'web', httpSpec({ ports: [{ name: 'http', containerPort: 8080 }] }));
  const ready = await waitConverged(db.pool, 'web');
  const endpoint = ready.status.endpoints?.http;
  expect(endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
  const response = await fetch(`http://${endpoint}/healthz`);
  expect(response.status).toBe(200);

  // Docker picks a new ephemeral port at every start: the endpoint follows it.
  await testDocker().getContainer(ready.status.containerId!).kill({ signal: 'SIGKILL' });
  const restarted = await waitFor(
    async () => {
      const view = await row(db.pool, 'web');
      return view?.status.restartCount === 1 &&
        condition(view, 'Ready')?.status === 'True' &&
        view.status.endpoints?.http
        ? view
        : undefined;
    },
    { what: 'the restarted session to publish its endpoint again' },
  );
  expect((await fetch(`http://${restarted.status.endpoints!.http}/healthz`)).status).toBe(200);
}, 60_000);

test('a file written to a named volume survives a spec change that recreates the container; Retain keeps it after deletion', async () => {
  const spec = httpSpec({ ports: [], volumes: [{ name: 'data', mountPath: '/data' }] });
  await upsert(db.pool, 'keeper', spec);
  const first = await waitConverged(db.pool, 'keeper');
  expect((await execIn(first.status.containerId!, ['sh', '-c', 'echo precious > /data/work.txt'])).exitCode).toBe(0);

  await upsert(db.pool, 'keeper', { ...spec, env: { MODE: 'changed' } });
  const second = await waitFor(
    async () => {
      const view = await waitConverged(db.pool, 'keeper');
      return view.status.containerId !== first.status.containerId ? view : undefined;
    },
    { what: 'the container to be recreated' },
  );
  expect((await execIn(second.status.containerId!, ['cat', '/data/work.txt'])).output).toBe('precious\n');

  await db.pool.query("DELETE FROM sessionctl.sessions WHERE name = 'keeper'");
  await waitFor(async () => (await row(db.pool, 'keeper')) === undefined, { what: 'keeper to be deleted' });
  expect(await volumeExists('sessionctl-keeper_data')).toBe(true);
}, 60_000);

test('volumeReclaimPolicy: Delete removes the volumes with the session', async () => {
  await upsert(
    db.pool,
    'scratch',
    httpSpec({ ports: [], volumes: [{ name: 'tmp', mountPath: '/scratch' }], volumeReclaimPolicy: 'Delete' }),
  );
  await waitConverged(db.pool, 'scratch');
  expect(await volumeExists('sessionctl-scratch_tmp')).toBe(true);
  await db.pool.query("DELETE FROM sessionctl.sessions WHERE name = 'scratch'");
  await waitFor(async () => (await row(db.pool, 'scratch')) === undefined, { what: 'scratch to be deleted' });
  expect(await volumeExists('sessionctl-scratch_tmp')).toBe(false);
}, 60_000);

test('hardened defaults, a read-only root filesystem and a non-root user', async () => {
  await upsert(
    db.pool,
    'locked',
    httpSpec({ ports: [], securityContext: { runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true } }),
  );
  const ready = await waitConverged(db.pool, 'locked');
  const id = ready.status.containerId!;
  expect((await execIn(id, ['id', '-u'])).output.trim()).toBe('1000');
  expect((await execIn(id, ['touch', '/root-is-read-only'])).exitCode).not.toBe(0);
  expect((await execIn(id, ['touch', '/tmp/tmp-is-writable'])).exitCode).toBe(0);

  const info = await testDocker().getContainer(id).inspect();
  expect(info.HostConfig).toMatchObject({
    Privileged: false,
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges:true'],
  });
  expect(info.HostConfig.PidsLimit).toBeGreaterThan(0);
  expect(JSON.stringify(info.Mounts)).not.toContain('docker.sock');
}, 60_000);

test('a bind mount under the allow-list works; one outside it is refused with the field path', async () => {
  await upsert(
    db.pool,
    'binder',
    httpSpec({ ports: [], volumes: [{ name: 'shared', mountPath: '/shared', hostPath: allowed, readOnly: true }] }),
  );
  const ready = await waitConverged(db.pool, 'binder');
  expect((await execIn(ready.status.containerId!, ['cat', '/shared/shared.txt'])).output).toBe('from the host\n');

  await upsert(
    db.pool,
    'escaper',
    httpSpec({ ports: [], volumes: [{ name: 'home', mountPath: '/h', hostPath: `${allowed}/../../root` }] }),
  );
  const refused = await waitConverged(db.pool, 'escaper', 'False');
  expect(condition(refused, 'Valid')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
  expect(condition(refused, 'Valid')!.message).toMatch(
    /^spec\.volumes\[0\]\.hostPath: \/root is outside the directories this controller allows/,
  );
  expect(refused.status.containerId).toBeUndefined();
}, 60_000);
