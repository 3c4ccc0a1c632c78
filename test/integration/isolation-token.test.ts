/**
 * The access token reaches the container as a file, not an environment variable, shown on the real
 * daemon as an attacker with read access to the daemon's API (docker inspect) or another user inside
 * the container would look for it. delivery: Env still works for images that need the variable.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers, removeManagedVolumes, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { readToken } from '../../src/store/tokens';

let db: TestDatabase;
let controller: ControllerProcess;

beforeAll(async () => {
  await removeManagedContainers();
  await removeManagedVolumes();
  db = await createTestDatabase('isolation_token');
  controller = await startController({ databaseUrl: db.url });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedVolumes();
  await db?.drop();
});

test('docker inspect shows no token; the file is readable by the session user only, also on a read-only root', async () => {
  await upsert(
    db.pool,
    'tok-file',
    httpSpec({
      ports: [],
      auth: {},
      securityContext: { runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true },
    }),
  );
  const ready = await waitConverged(db.pool, 'tok-file');
  const token = (await readToken(db.pool, 'tok-file'))!.token;
  const id = ready.status.containerId!;
  const inspect = await testDocker().getContainer(id).inspect();
  expect(JSON.stringify(inspect)).not.toContain(token);
  expect(inspect.Config.Env).toContain('SESSION_TOKEN_FILE=/run/sessionctl/token');
  expect((await execIn(id, ['sh', '-c', 'cat "$SESSION_TOKEN_FILE"'])).output).toBe(token);
  expect((await execIn(id, ['sh', '-c', 'echo "${SESSION_TOKEN:-unset}"'])).output.trim()).toBe('unset');
  expect((await execIn(id, ['stat', '-c', '%a %u %g', '/run/sessionctl/token'])).output.trim()).toBe('400 1000 1000');
  // Nothing in any process's environment either.
  expect(
    (await execIn(id, ['sh', '-c', 'cat /proc/1/environ /proc/self/environ | tr "\\0" "\\n"'])).output,
  ).not.toContain(token);
}, 90_000);

test('a rotation rewrites the file in the recreated container; deletion removes the token volume', async () => {
  const before = (await readToken(db.pool, 'tok-file'))!;
  const oldContainer = (await row(db.pool, 'tok-file'))!.status.containerId;
  await db.pool.query(`DELETE FROM sessionctl.session_tokens WHERE session_name = 'tok-file'`);
  const after = await waitFor(
    async () => {
      const token = await readToken(db.pool, 'tok-file');
      const view = await row(db.pool, 'tok-file');
      const fresh = view?.status.containerId && view.status.containerId !== oldContainer;
      return token && token.token !== before.token && view?.status.observedGeneration === view?.generation && fresh
        ? { token, view }
        : undefined;
    },
    { what: 'a new token and container' },
  );
  expect((await execIn(after.view.status.containerId!, ['cat', '/run/sessionctl/token'])).output).toBe(
    after.token.token,
  );
  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'tok-file'`);
  await waitFor(async () => (await row(db.pool, 'tok-file')) === undefined, { what: 'tok-file to be deleted' });
  const volumes = await testDocker().listVolumes({ filters: { name: ['sessionctl-tok-file_.token'] } });
  expect(volumes.Volumes ?? []).toEqual([]);
}, 90_000);

test('delivery: Env puts the token in the variable the spec names, as before', async () => {
  await upsert(db.pool, 'tok-env', httpSpec({ ports: [], auth: { delivery: 'Env', envName: 'JUPYTER_TOKEN' } }));
  const ready = await waitConverged(db.pool, 'tok-env');
  const token = (await readToken(db.pool, 'tok-env'))!.token;
  expect((await execIn(ready.status.containerId!, ['sh', '-c', 'echo "$JUPYTER_TOKEN"'])).output.trim()).toBe(token);
}, 60_000);
