/**
 * A service that uses only the TypeScript client: apply, wait for Ready, watch a change arrive,
 * touch, and delete — against the real controller.
 */
import { createSessionClient, SessionValidationError, type SessionClient, type WatchEvent } from '../../src/client';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let controller: ControllerProcess;
let sessions: SessionClient;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('client');
  controller = await startController({ databaseUrl: db.url });
  sessions = createSessionClient({ connectionString: db.url });
});

afterAll(async () => {
  await sessions?.close();
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

const spec = {
  image: 'sessionctl/base:dev',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  resources: { memory: '32Mi' },
};

test('apply, wait for Ready, watch a change, touch and delete', async () => {
  expect(await sessions.apply({ metadata: { name: 'svc-a', labels: { owner: 'svc' } }, spec })).toEqual({
    name: 'svc-a',
    outcome: 'created',
    generation: 1,
  });
  expect((await sessions.apply({ metadata: { name: 'svc-a', labels: { owner: 'svc' } }, spec })).outcome).toBe(
    'unchanged',
  );
  const ready = await sessions.waitFor('svc-a', 'Ready', { timeoutMs: 30_000 });
  expect(ready?.status.phase).toBe('Running');
  expect((await sessions.list('owner=svc')).map((session) => session.metadata.name)).toEqual(['svc-a']);
  expect(await sessions.list('owner=other')).toEqual([]);
  // The controller records the create and the start before it writes Ready.
  const reasons = (await sessions.events('svc-a')).map((event) => event.reason);
  expect(reasons).toEqual(expect.arrayContaining(['Created', 'Started']));
  expect(await sessions.events('no-such-session')).toEqual([]);

  const abort = new AbortController();
  const seen: WatchEvent[] = [];
  let listening!: () => void;
  const ready2 = new Promise<void>((resolve) => (listening = resolve));
  const watching = (async () => {
    for await (const event of sessions.watch({
      selector: 'owner=svc',
      known: ['svc-a'],
      signal: abort.signal,
      onListening: listening,
    }))
      seen.push(event);
  })();
  await ready2;
  const committedAt = Date.now();
  await sessions.apply({
    metadata: { name: 'svc-a', labels: { owner: 'svc' } },
    spec: { ...spec, env: { MODE: 'changed' } },
  });
  await waitFor(() => seen.some((event) => event.type === 'MODIFIED' && event.session.metadata.generation === 2), {
    timeoutMs: 5_000,
    intervalMs: 5,
    what: 'the MODIFIED event of generation 2',
  });
  const arrivedAfterMs = Date.now() - committedAt;
  expect(arrivedAfterMs).toBeLessThan(100);

  expect(await sessions.touch('svc-a')).toBe(true);
  const touched = await db.pool.query('SELECT last_activity_at FROM sessionctl.sessions WHERE name = $1', ['svc-a']);
  expect(touched.rows[0].last_activity_at).toBeInstanceOf(Date);

  expect(await sessions.delete('svc-a')).toBe(true);
  expect(await sessions.waitFor('svc-a', 'Deleted', { timeoutMs: 30_000 })).toBeUndefined();
  // The watch reports the deletion itself: wait for that event, not for a while.
  await waitFor(() => seen.some((event) => event.type === 'DELETED' && event.name === 'svc-a'), {
    timeoutMs: 10_000,
    intervalMs: 5,
    what: 'the DELETED event on the watch',
  });
  abort.abort();
  await watching;
});

test('invalid input is refused before anything is written, naming the field', async () => {
  await expect(
    sessions.apply({
      metadata: { name: 'svc-bad' },
      spec: { image: 'sessionctl/base:dev', resources: { memory: 'lots' } },
    }),
  ).rejects.toThrow(SessionValidationError);
  await expect(
    sessions.apply({
      metadata: { name: 'svc-bad' },
      spec: { image: 'sessionctl/base:dev', resources: { memory: 'lots' } },
    }),
  ).rejects.toThrow(/spec\.resources\.memory/);
  expect(await sessions.get('svc-bad')).toBeUndefined();
});

test('waitFor times out with the last reason', async () => {
  await sessions.apply({
    metadata: { name: 'svc-never' },
    spec: { image: 'sessionctl/absent:dev', imagePullPolicy: 'Never' },
  });
  await expect(sessions.waitFor('svc-never', 'Ready', { timeoutMs: 3_000 })).rejects.toThrow(
    /timed out waiting for session svc-never to be Ready \(Ready=False ImageNotPresent/,
  );
});
