/**
 * Drift: whatever happens to containers behind the controller's back, it puts things right —
 * and never touches a container it does not manage.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, removeManagedContainers, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { listEvents } from '../../src/store/events';
import { LABELS, MANAGED_BY } from '../../src/model/labels';
import { readInstallationId } from '../../src/store/installation';

let db: TestDatabase;
let controller: ControllerProcess;

beforeAll(async () => {
  await removeManagedContainers();
  await testDocker()
    .getContainer('sessionctl-x')
    .remove({ force: true })
    .catch(() => undefined);
  db = await createTestDatabase('drift');
  controller = await startController({ databaseUrl: db.url });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await testDocker()
    .getContainer('sessionctl-x')
    .remove({ force: true })
    .catch(() => undefined);
  await db?.drop();
});

test('SIGKILL of the session process brings it back under restartPolicy: Always', async () => {
  await upsert(db.pool, 'killed', httpSpec());
  const ready = await waitConverged(db.pool, 'killed');
  await testDocker().getContainer(ready.status.containerId!).kill({ signal: 'SIGKILL' });
  const restarted = await waitFor(
    async () => {
      const view = await row(db.pool, 'killed');
      return view?.status.restartCount === 1 && condition(view, 'Ready')?.status === 'True' ? view : undefined;
    },
    { what: 'the killed session to be restarted and Ready' },
  );
  expect(restarted.status).toMatchObject({
    containerId: ready.status.containerId,
    lastExitCode: 137,
    lastExitReason: 'Error',
  });
  expect((await containersOf('killed'))[0].State).toBe('running');
  expect((await listEvents(db.pool, 'killed')).map((event) => event.reason)).toContain('Restarted');
  expect(await controller.metric('sessionctl_container_restarts_total', { reason: 'Error' })).toBeGreaterThanOrEqual(1);
});

test('docker rm -f brings the container back', async () => {
  await upsert(db.pool, 'removed', httpSpec());
  const ready = await waitConverged(db.pool, 'removed');
  await testDocker().getContainer(ready.status.containerId!).remove({ force: true });
  const back = await waitFor(
    async () => {
      const view = await row(db.pool, 'removed');
      return view?.status.containerId !== ready.status.containerId && condition(view, 'Ready')?.status === 'True'
        ? view
        : undefined;
    },
    { what: 'a new container for the removed session' },
  );
  expect((await containersOf('removed')).map((info) => [info.Id, info.State])).toEqual([
    [back.status.containerId, 'running'],
  ]);
  expect(
    await controller.metric('sessionctl_drift_corrections_total', { kind: 'container_missing' }),
  ).toBeGreaterThanOrEqual(1);
});

test("an orphan with this installation's labels is removed", async () => {
  const installation = await readInstallationId(db.pool);
  const orphan = await testDocker().createContainer({
    name: 'sessionctl-ghost',
    Image: 'sessionctl/base:dev',
    Cmd: ['sleep', '600'],
    Labels: {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.session]: 'ghost',
      [LABELS.uid]: '33333333-3333-4333-8333-333333333333',
      [LABELS.specHash]: 'x',
      [LABELS.installation]: installation,
    },
  });
  // The controller may already be removing it (it acts on the create event): then start is refused.
  await orphan.start().catch((error: { statusCode?: number }) => {
    if (error.statusCode !== 404 && error.statusCode !== 409) throw error;
  });
  await waitFor(async () => (await containersOf('ghost')).length === 0, { what: 'the orphan to be removed' });
  expect(
    await controller.metric('sessionctl_drift_corrections_total', { kind: 'orphan_removed' }),
  ).toBeGreaterThanOrEqual(1);
});

test('an unmanaged container named sessionctl-x is left alone, and session x reports the conflict', async () => {
  const squatter = await testDocker().createContainer({
    name: 'sessionctl-x',
    Image: 'sessionctl/base:dev',
    Cmd: ['sleep', '600'],
  });
  await squatter.start();
  await upsert(db.pool, 'x', httpSpec());
  const view = await waitFor(
    async () => {
      const current = await row(db.pool, 'x');
      return current?.status.observedGeneration === current?.generation &&
        condition(current, 'ContainerRunning')?.reason === 'NameConflict'
        ? current
        : undefined;
    },
    { what: 'session x to report the name conflict' },
  );
  expect(condition(view, 'Ready')).toMatchObject({ status: 'False', reason: 'NameConflict' });
  expect(condition(view, 'Ready')!.message).toMatch(/not managed by sessionctl/);
  const inspected = await squatter.inspect();
  expect(inspected.State.Running).toBe(true);
  expect(inspected.Config.Labels[LABELS.managedBy]).toBeUndefined();

  // Once the name is free, the session starts by itself.
  await squatter.remove({ force: true });
  await waitConverged(db.pool, 'x');
});
