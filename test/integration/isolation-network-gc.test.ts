/**
 * Networks of sessions deleted while the controller was down: their rows are gone, so no deletion
 * ever removes them. The next controller removes them: at start when no container uses the network,
 * else at the first full resync after the orphan container is gone. The network of a live session,
 * and a network labelled for another installation, stay.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, removeManagedContainers, removeManagedNetworks, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { httpSpec, upsert, waitAllReady } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { sessionNetworkName } from '../../src/docker/networks';
import { LABELS, MANAGED_BY } from '../../src/model/labels';

let db: TestDatabase;
let controller: ControllerProcess | undefined;
const FOREIGN = sessionNetworkName('gc-foreign');

async function networkExists(name: string): Promise<boolean> {
  const found = await testDocker().listNetworks({ filters: { name: [name] } });
  return found.some((network) => network.Name === name);
}

beforeAll(async () => {
  await removeManagedContainers();
  await removeManagedNetworks();
  db = await createTestDatabase('isolation_network_gc');
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedNetworks();
  await db?.drop();
});

test('the networks of sessions deleted while the controller was down are removed by the next one', async () => {
  controller = await startController({ databaseUrl: db.url });
  const sessions = ['gc-kept', 'gc-gone', 'gc-bare'];
  for (const name of sessions) await upsert(db.pool, name, httpSpec({ ports: [] }));
  await waitAllReady(db.pool, sessions);
  for (const name of sessions) expect(await networkExists(sessionNetworkName(name))).toBe(true);
  // Another installation's session network (same labels, another installation id): never ours to remove.
  await testDocker().createNetwork({
    Name: FOREIGN,
    Labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: 'gc-foreign', [LABELS.installation]: 'another-one' },
  });
  expect(await controller.stop()).toBe(0);
  controller = undefined;

  // While it is down, an operator force-deletes two rows (finalizers cleared, so the DELETE is not
  // turned into a deletion request); one session's container goes too (by hand), the other's stays.
  await db.pool.query("UPDATE sessionctl.sessions SET finalizers = '{}' WHERE name IN ('gc-gone', 'gc-bare')");
  const deleted = await db.pool.query("DELETE FROM sessionctl.sessions WHERE name IN ('gc-gone', 'gc-bare')");
  expect(deleted.rowCount).toBe(2);
  for (const container of await containersOf('gc-bare'))
    await testDocker().getContainer(container.Id).remove({ force: true });

  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_RESYNC_SECONDS: '2' } });
  const started = controller;
  await waitFor(async () => !(await networkExists(sessionNetworkName('gc-bare'))), {
    timeoutMs: 30_000,
    what: 'the network of gc-bare (no row, no container) to be removed',
  });
  // gc-gone's orphan container goes first (its reconcile), then its network (a resync).
  await waitFor(async () => (await containersOf('gc-gone')).length === 0, {
    timeoutMs: 30_000,
    what: 'the orphan container of gc-gone to be removed',
  });
  await waitFor(async () => !(await networkExists(sessionNetworkName('gc-gone'))), {
    timeoutMs: 30_000,
    what: 'the network of gc-gone to be removed after its orphan container',
  });
  expect(await networkExists(sessionNetworkName('gc-kept'))).toBe(true);
  expect(await networkExists(FOREIGN)).toBe(true);
  expect(await containersOf('gc-kept')).toHaveLength(1);
  expect(started.output()).toMatch(/removed the network of a deleted session/);
  await testDocker().getNetwork(FOREIGN).remove();
}, 150_000);
