/**
 * Isolation of session volumes on the real daemon, tried as an attacker would: a session name and a
 * volume name chosen to collide with another session's volume, a volume planted under a victim's
 * name, and a Delete reclaim policy aimed at someone else's data. Retained volumes of the old naming
 * stay usable by their own session.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers, removeManagedVolumes, testDocker, volumeExists } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { LABELS, MANAGED_BY } from '../../src/model/labels';
import { VOLUME_LABEL } from '../../src/docker/volumes';

let db: TestDatabase;
let controller: ControllerProcess;
const planted: string[] = [];

/** Writes a file into a volume from a throwaway container that sessionctl does not manage. */
async function writeIntoVolume(volume: string, text: string): Promise<void> {
  const docker = testDocker();
  const container = await docker.createContainer({
    Image: 'sessionctl/base:dev',
    Cmd: ['sh', '-c', `echo ${text} > /v/secret.txt`],
    HostConfig: { Mounts: [{ Type: 'volume', Source: volume, Target: '/v' }], NetworkMode: 'none' },
  });
  await container.start();
  await container.wait();
  await container.remove({ force: true });
}

async function plantVolume(name: string, labels: Record<string, string>, secret?: string): Promise<void> {
  planted.push(name);
  await testDocker().createVolume({ Name: name, Labels: labels });
  if (secret) await writeIntoVolume(name, secret);
}

beforeAll(async () => {
  await removeManagedContainers();
  await removeManagedVolumes();
  db = await createTestDatabase('isolation_volumes');
  controller = await startController({ databaseUrl: db.url });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedVolumes();
  for (const name of planted)
    await testDocker()
      .getVolume(name)
      .remove({ force: true })
      .catch(() => undefined);
  await db?.drop();
});

const volumeSpec = (volume: string, extra = {}) =>
  httpSpec({ ports: [], volumes: [{ name: volume, mountPath: '/data' }], ...extra });

test('the colliding pair dave/workspace-home and dave-workspace/home get two volumes, each labelled with its owner', async () => {
  await upsert(db.pool, 'dave', volumeSpec('workspace-home'));
  await upsert(db.pool, 'dave-workspace', volumeSpec('home'));
  const dave = await waitConverged(db.pool, 'dave');
  const other = await waitConverged(db.pool, 'dave-workspace');
  expect((await execIn(dave.status.containerId!, ['sh', '-c', 'echo dave-only > /data/secret.txt'])).exitCode).toBe(0);
  // The attacker's session sees an empty volume of its own.
  expect((await execIn(other.status.containerId!, ['ls', '-A', '/data'])).output).toBe('');
  const mounts = await testDocker().getContainer(other.status.containerId!).inspect();
  expect(mounts.Mounts.map((mount) => mount.Name)).toEqual(['sessionctl-dave-workspace_home']);
  const labels = (await testDocker().getVolume('sessionctl-dave_workspace-home').inspect()).Labels;
  expect(labels).toMatchObject({
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.session]: 'dave',
    [VOLUME_LABEL]: 'workspace-home',
  });
  expect(labels[LABELS.uid]).toMatch(/^[0-9a-f-]{36}$/);
}, 90_000);

test('a volume planted under a victim session name is refused with VolumeConflict: nothing mounted, and Delete removes nothing', async () => {
  await plantVolume(
    'sessionctl-victim_data',
    { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: 'mallory', [VOLUME_LABEL]: 'data' },
    'mallory-bait',
  );
  await plantVolume('sessionctl-victim_cache', {}, 'unmanaged');
  await upsert(db.pool, 'victim', volumeSpec('data', { volumeReclaimPolicy: 'Delete' }));
  const refused = await waitConverged(db.pool, 'victim', 'False');
  expect(condition(refused, 'Ready')).toMatchObject({ reason: 'VolumeConflict' });
  expect(condition(refused, 'Ready')!.message).toMatch(
    /sessionctl-victim_data \(spec volume "data"\) belongs to session mallory; nothing was mounted/,
  );
  expect(refused.status.containerId).toBeUndefined();
  const events = await db.pool.query(
    `SELECT reason FROM sessionctl.events WHERE session_name = 'victim' AND reason = 'VolumeConflict'`,
  );
  expect(events.rowCount).toBeGreaterThan(0);

  // An unmanaged volume of the right name is not taken over either.
  await upsert(db.pool, 'victim', volumeSpec('cache', { volumeReclaimPolicy: 'Delete' }));
  await waitFor(
    async () => {
      const view = await row(db.pool, 'victim');
      return (
        view &&
        view.status.observedGeneration === view.generation &&
        /not managed by sessionctl/.test(condition(view, 'Ready')?.message ?? '')
      );
    },
    { what: 'the unmanaged volume to be refused' },
  );

  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'victim'`);
  await waitFor(async () => (await row(db.pool, 'victim')) === undefined, { what: 'victim to be deleted' });
  expect(await volumeExists('sessionctl-victim_data')).toBe(true);
  expect(await volumeExists('sessionctl-victim_cache')).toBe(true);
}, 90_000);

test('a retained volume of the old naming stays usable by its own session, never by the session whose new name collides with it', async () => {
  const legacyLabels = {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.session]: 'erin',
    [LABELS.uid]: '00000000-0000-4000-8000-000000000000',
  };
  await plantVolume('sessionctl-erin-work-home', legacyLabels, 'erin-kept');
  await upsert(db.pool, 'erin', volumeSpec('work-home'));
  const erin = await waitConverged(db.pool, 'erin');
  expect((await execIn(erin.status.containerId!, ['cat', '/data/secret.txt'])).output).toBe('erin-kept\n');

  // Under the old naming this session's volume was the same Docker volume as erin's.
  await upsert(db.pool, 'erin-work', volumeSpec('home', { volumeReclaimPolicy: 'Delete' }));
  const attacker = await waitConverged(db.pool, 'erin-work');
  expect((await execIn(attacker.status.containerId!, ['ls', '-A', '/data'])).output).toBe('');
  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'erin-work'`);
  await waitFor(async () => (await row(db.pool, 'erin-work')) === undefined, { what: 'erin-work to be deleted' });
  expect(await volumeExists('sessionctl-erin-work_home')).toBe(false);
  expect(await volumeExists('sessionctl-erin-work-home')).toBe(true);
}, 90_000);
