/**
 * Two installations on one daemon (two databases, two controllers: a staging and a production
 * controller sharing a host): each labels its containers with its installation id, neither takes the
 * other's containers for orphans, and a name held by the other installation is a reported conflict.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, removeManagedContainers, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { wakeAndSettle } from '../helpers/notify-barrier';
import { LABELS, MANAGED_BY } from '../../src/model/labels';
import { readInstallationId } from '../../src/store/installation';

let staging: TestDatabase;
let production: TestDatabase;
const controllers: ControllerProcess[] = [];

beforeAll(async () => {
  await removeManagedContainers();
  staging = await createTestDatabase('inst_staging');
  production = await createTestDatabase('inst_production');
});

afterAll(async () => {
  await Promise.all(controllers.map((controller) => controller.stop()));
  await removeManagedContainers();
  await staging?.drop();
  await production?.drop();
});

test('each installation keeps its own containers, and a shared name is a conflict, not an orphan', async () => {
  const [stagingId, productionId] = [await readInstallationId(staging.pool), await readInstallationId(production.pool)];
  expect(stagingId).not.toBe(productionId);
  const stagingController = await startController({ databaseUrl: staging.url });
  const productionController = await startController({ databaseUrl: production.url });
  controllers.push(stagingController, productionController);

  await upsert(staging.pool, 'stage-only', httpSpec({ ports: [] }));
  await upsert(production.pool, 'prod-only', httpSpec({ ports: [] }));
  const stage = (await waitConverged(staging.pool, 'stage-only')).status.containerId!;
  const prod = (await waitConverged(production.pool, 'prod-only')).status.containerId!;
  expect((await containersOf('stage-only'))[0]!.Labels[LABELS.installation]).toBe(stagingId);
  expect((await containersOf('prod-only'))[0]!.Labels[LABELS.installation]).toBe(productionId);

  // The same session name in both: the first keeps it, the second reports whose it is.
  await upsert(staging.pool, 'both', httpSpec({ ports: [] }));
  await waitConverged(staging.pool, 'both');
  await upsert(production.pool, 'both', httpSpec({ ports: [] }));
  const conflict = await waitFor(
    async () => {
      const view = await row(production.pool, 'both');
      return condition(view, 'ContainerRunning')?.reason === 'NameConflict' ? view : undefined;
    },
    { timeoutMs: 30_000, what: 'production to report the name held by staging' },
  );
  expect(condition(conflict, 'ContainerRunning')!.message).toContain(`another sessionctl installation (${stagingId})`);

  // A restarted controller lists the daemon afresh: still nothing of the other's is touched.
  await productionController.stop();
  const restarted = await startController({ databaseUrl: production.url });
  controllers.push(restarted);
  // Ready means every row and every container's session has been reconciled once.
  await waitFor(
    async () =>
      (await restarted.metric('sessionctl_ready')) === 1 &&
      (await restarted.metric('controller_runtime_reconcile_total')) >= 2,
    { timeoutMs: 30_000, what: 'the restarted controller to reconcile its rows' },
  );
  const ids = async (name: string) => (await containersOf(name)).map((info) => info.Id);
  expect(await ids('stage-only')).toEqual([stage]);
  expect(await ids('prod-only')).toEqual([prod]);
  expect((await containersOf('both')).map((info) => info.Labels[LABELS.installation])).toEqual([stagingId]);
}, 150_000);

test('a container made before containers carried an installation label is never removed as an orphan', async () => {
  const controller = controllers[controllers.length - 1]!;
  const managed = async () =>
    (
      (await (await fetch(`${controller.metricsUrl}/health`)).json()) as {
        dockerHosts: Array<{ containersManaged: number }>;
      }
    ).dockerHosts[0]!.containersManaged;
  const before = await managed();
  const legacy = await testDocker().createContainer({
    name: 'sessionctl-legacy',
    Image: 'sessionctl/base:dev',
    Cmd: ['sleep', '600'],
    Labels: {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.session]: 'legacy',
      [LABELS.uid]: '44444444-4444-4444-8444-444444444444',
      [LABELS.specHash]: 'x',
    },
  });
  await legacy.start();
  // The controller's inventory holds it (an unlabelled container is not another installation's to hide) ...
  await waitFor(async () => (await managed()) === before + 1, {
    timeoutMs: 20_000,
    what: 'the controller to see the legacy container',
  });
  // ... and a reconcile of its session, with no row, leaves it alone.
  await wakeAndSettle(production.pool, controller, ['legacy']);
  expect((await legacy.inspect()).State.Running).toBe(true);
});
