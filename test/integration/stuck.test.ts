/**
 * Stuck containers on the real daemon: a container whose root filesystem Docker cannot delete (a file
 * in its upper layer made immutable with chattr, as a busy mount does after a daemon restart) can be
 * neither removed nor started. The controller renames it out of the way, gives the session a fresh
 * container, reports it, and removes it once Docker can.
 */
import { execFileSync } from 'node:child_process';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged, waitForEventReasons } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { stuckContainerName } from '../../src/model/labels';

let db: TestDatabase;
let controller: ControllerProcess | undefined;
const pinned: string[] = [];

beforeEach(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('stuck');
});

afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  for (const file of pinned.splice(0)) unpin(file);
  await removeManagedContainers();
  await db?.drop();
});

/** Makes the container's root filesystem undeletable; returns the pinned file on the host. */
async function pinRootFilesystem(containerId: string): Promise<string> {
  expect((await execIn(containerId, ['sh', '-c', 'echo pinned > /pin'])).exitCode).toBe(0);
  const info = await testDocker().getContainer(containerId).inspect();
  const file = `${(info.GraphDriver.Data as unknown as { UpperDir: string }).UpperDir}/pin`;
  execFileSync('chattr', ['+i', file]);
  pinned.push(file);
  return file;
}

function unpin(file: string): void {
  try {
    execFileSync('chattr', ['-i', file], { stdio: 'ignore' });
  } catch {
    // Already gone with its container.
  }
}

const containerState = (id: string) =>
  testDocker()
    .getContainer(id)
    .inspect()
    .then(
      (info) => ({ name: info.Name.replace(/^\//, ''), status: info.State.Status }),
      () => undefined,
    );

async function waitForNewContainer(name: string, old: string) {
  return waitFor(
    async () => {
      const view = await row(db.pool, name);
      return view?.status.observedGeneration === view?.generation &&
        view?.status.containerId !== old &&
        condition(view, 'Ready')?.status === 'True'
        ? view
        : undefined;
    },
    { timeoutMs: 60_000, what: `${name} to run a fresh container` },
  );
}

test('a recreate whose old container cannot be removed sets it aside, reports it, and removes it once Docker can', async () => {
  controller = await startController({ databaseUrl: db.url });
  await upsert(db.pool, 'pinned', httpSpec());
  const first = (await waitConverged(db.pool, 'pinned')).status.containerId!;
  const file = await pinRootFilesystem(first);

  await upsert(db.pool, 'pinned', httpSpec({ env: { MODE: 'changed' } }));
  const fresh = await waitForNewContainer('pinned', first);
  // Docker shows "removing" for a moment after the failed removal, then "dead".
  await waitFor(async () => (await containerState(first))?.status === 'dead', {
    timeoutMs: 10_000,
    what: 'the pinned container to be dead',
  });
  expect(await containerState(first)).toEqual({ name: stuckContainerName('pinned', first), status: 'dead' });
  await waitForEventReasons(db.pool, 'pinned', ['ContainerStuck']);
  expect(await controller.metric('sessionctl_stuck_containers', { host: 'default' })).toBe(1);
  const noted = await waitFor(
    async () => {
      const view = await row(db.pool, 'pinned');
      return condition(view, 'ContainerRunning')?.message.includes(stuckContainerName('pinned', first))
        ? view
        : undefined;
    },
    { timeoutMs: 10_000, what: 'ContainerRunning to mention the stuck container' },
  );
  expect(condition(noted, 'ContainerRunning')).toMatchObject({ status: 'True', reason: 'Running' });

  unpin(file);
  await waitFor(async () => (await containerState(first)) === undefined, {
    timeoutMs: 45_000,
    what: 'the stuck container to be removed once unpinned',
  });
  await waitFor(async () => (await controller!.metric('sessionctl_stuck_containers', { host: 'default' })) === 0, {
    timeoutMs: 5_000,
    what: 'the stuck gauge to fall to 0',
  });
  await waitFor(
    async () => {
      const view = await row(db.pool, 'pinned');
      return (
        !condition(view, 'ContainerRunning')?.message.includes('could not remove') &&
        view?.status.containerId === fresh.status.containerId
      );
    },
    { timeoutMs: 10_000, what: 'the status to stop mentioning the removed container' },
  );
}, 150_000);

test('a dead container under the session name is set aside; a restarted controller finds it and removes it later', async () => {
  controller = await startController({ databaseUrl: db.url });
  await upsert(db.pool, 'deadname', httpSpec());
  const first = (await waitConverged(db.pool, 'deadname')).status.containerId!;
  const file = await pinRootFilesystem(first);
  await controller.stop();
  controller = undefined;
  // Docker fails to delete the root filesystem and marks the container dead, still under its name.
  await expect(testDocker().getContainer(first).remove({ force: true })).rejects.toThrow(/remove root filesystem/);
  await waitFor(async () => (await containerState(first))?.status === 'dead', {
    timeoutMs: 10_000,
    what: 'the pinned container to be dead',
  });
  expect(await containerState(first)).toEqual({ name: 'sessionctl-deadname', status: 'dead' });

  controller = await startController({ databaseUrl: db.url });
  await waitForNewContainer('deadname', first);
  expect((await containerState(first))?.name).toBe(stuckContainerName('deadname', first));

  await controller.stop();
  controller = await startController({ databaseUrl: db.url });
  await waitFor(async () => (await controller!.metric('sessionctl_stuck_containers', { host: 'default' })) === 1, {
    timeoutMs: 10_000,
    what: 'the restarted controller to find the stuck container',
  });
  unpin(file);
  await waitFor(async () => (await containerState(first)) === undefined, {
    timeoutMs: 45_000,
    what: 'the stuck container to be removed by the restarted controller',
  });
  await waitConverged(db.pool, 'deadname');
}, 180_000);
