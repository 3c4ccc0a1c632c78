/**
 * Registries a spec may name, as an attacker choosing the image would try it: with
 * SESSIONCTL_ALLOWED_REGISTRIES set, an image from any other registry is refused with ImageNotAllowed
 * before anything is pulled or asked of a registry, even when the image is already on the host.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, upsert, waitConverged } from '../helpers/sessions';

let db: TestDatabase;
let controller: ControllerProcess;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('isolation_registry');
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_ALLOWED_REGISTRIES: '127.0.0.1:5999' } });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

test('an image from a registry that is not allowed is refused with ImageNotAllowed; nothing is pulled or created', async () => {
  await upsert(db.pool, 'elsewhere', httpSpec({ ports: [], image: 'attacker.example/tools/miner:1' }));
  await upsert(db.pool, 'local-hub', httpSpec({ ports: [] }));
  for (const name of ['elsewhere', 'local-hub']) {
    const refused = await waitConverged(db.pool, name, 'False');
    expect(condition(refused, 'ImageReady')).toMatchObject({ status: 'False', reason: 'ImageNotAllowed' });
    expect(condition(refused, 'ImageReady')!.message).toMatch(
      /which this controller does not allow \(SESSIONCTL_ALLOWED_REGISTRIES: 127\.0\.0\.1:5999\)/,
    );
    expect(await containersOf(name)).toEqual([]);
  }
  expect(condition(await waitConverged(db.pool, 'elsewhere', 'False'), 'ImageReady')!.message).toMatch(
    /^image attacker\.example\/tools\/miner:1 is from registry attacker\.example/,
  );
  expect(await controller.metric('sessionctl_docker_requests_total', { operation: 'image_pull' })).toBe(0);
  expect(await controller.metric('sessionctl_docker_requests_total', { operation: 'image_inspect' })).toBe(0);
}, 60_000);
