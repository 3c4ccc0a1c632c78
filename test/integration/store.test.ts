/**
 * The Postgres contract other services rely on, against a real PostgreSQL: generation moves only on a
 * real spec change, NOTIFY fires only then, DELETE becomes a graceful deletion while a finalizer
 * remains, status writes are guarded, migrations serialise, and events stay deduplicated and bounded.
 */
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { notifyBarrier } from '../helpers/notify-barrier';
import { upsert, row } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { loadMigrations, migrate } from '../../src/store/migrate';
import { createPool } from '../../src/store/db';
import {
  addFinalizer,
  finishDeletion,
  getSession,
  listUnobservedSessionNames,
  writeStatus,
} from '../../src/store/sessions';
import { listEvents, recordEvent } from '../../src/store/events';
import { SESSIONS_CHANNEL, parseNotification } from '../../src/store/listener';
import type { SessionStatus } from '../../crds/status';

let db: TestDatabase;
let listener: Client;
const notifications: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase('store');
  listener = new Client({ connectionString: db.url });
  await listener.connect();
  await listener.query(`LISTEN ${SESSIONS_CHANNEL}`);
  listener.on('notification', (message) => notifications.push(parseNotification(message.payload!)!.name));
});

afterAll(async () => {
  await listener.end();
  await db.drop();
});

const status = (generation: number): SessionStatus => ({
  observedGeneration: generation,
  phase: 'Running',
  conditions: [],
  restartCount: 0,
});

/** Notifications so far for `name`, counted after a barrier so that none of an earlier commit is still on its way. */
async function notificationsFor(name: string): Promise<number> {
  await notifyBarrier(db.pool, notifications);
  return notifications.filter((entry) => entry === name).length;
}

test('generation moves only on a real spec change; jsonb key order is no change', async () => {
  await db.pool.query(
    `INSERT INTO sessionctl.sessions (name, spec) VALUES ('gen', '{"image":"a","env":{"A":"1","B":"2"}}')`,
  );
  expect((await row(db.pool, 'gen'))!.generation).toBe(1);
  await db.pool.query(
    `UPDATE sessionctl.sessions SET spec = '{"env":{"B":"2","A":"1"},"image":"a"}' WHERE name = 'gen'`,
  );
  expect((await row(db.pool, 'gen'))!.generation).toBe(1);
  await upsert(db.pool, 'gen', { image: 'a', env: { A: '1', B: '3' } });
  expect((await row(db.pool, 'gen'))!.generation).toBe(2);
});

test('writers cannot forge bookkeeping columns', async () => {
  await db.pool.query(
    `INSERT INTO sessionctl.sessions (name, spec, generation, status, finalizers) VALUES ('forge', '{"image":"a"}', 99, '{"phase":"Running"}', '{x}')`,
  );
  const forged = await getSession(db.pool, 'forge');
  expect(forged).toMatchObject({ generation: 1, status: {}, finalizers: [] });
  await db.pool.query(`UPDATE sessionctl.sessions SET generation = 50, uid = gen_random_uuid() WHERE name = 'forge'`);
  expect(await getSession(db.pool, 'forge')).toMatchObject({ generation: 1, uid: forged!.uid });
});

test('NOTIFY fires on generation changes only, never on status writes', async () => {
  await upsert(db.pool, 'notify', { image: 'a' });
  await waitFor(() => notifications.includes('notify'), { what: 'the insert notification' });
  expect(await notificationsFor('notify')).toBe(1);
  const current = await getSession(db.pool, 'notify');
  expect(await writeStatus(db.pool, 'notify', current!.generation, status(current!.generation), 'default')).toBe(true);
  await addFinalizer(db.pool, 'notify', current!.uid);
  await upsert(db.pool, 'notify', { image: 'a' });
  expect(await notificationsFor('notify')).toBe(1);
  await upsert(db.pool, 'notify', { image: 'b' });
  expect(await notificationsFor('notify')).toBe(2);
});

test('status writes are guarded by the generation that was read', async () => {
  await upsert(db.pool, 'guard', { image: 'a' });
  const read = await getSession(db.pool, 'guard');
  await upsert(db.pool, 'guard', { image: 'b' });
  expect(await writeStatus(db.pool, 'guard', read!.generation, status(read!.generation), 'default')).toBe(false);
  const after = await getSession(db.pool, 'guard');
  expect(after!.spec).toEqual({ image: 'b' });
  expect(after!.status).toEqual({});
  expect(await listUnobservedSessionNames(db.pool)).toContain('guard');
  expect(await writeStatus(db.pool, 'guard', after!.generation, status(after!.generation), 'default')).toBe(true);
  expect(await listUnobservedSessionNames(db.pool)).not.toContain('guard');
});

test('DELETE of a row holding a finalizer becomes a graceful deletion', async () => {
  await upsert(db.pool, 'graceful', { image: 'a' });
  const created = await getSession(db.pool, 'graceful');
  expect(await addFinalizer(db.pool, 'graceful', created!.uid)).toBe(true);
  const deleted = await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'graceful'`);
  expect(deleted.rowCount).toBe(0);
  const pending = await getSession(db.pool, 'graceful');
  expect(pending!.deletionRequestedAt).not.toBeNull();
  expect(pending!.generation).toBe(created!.generation + 1);
  // An upsert cannot take the deletion back, and a second DELETE changes nothing more.
  await upsert(db.pool, 'graceful', { image: 'z' });
  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'graceful'`);
  expect((await getSession(db.pool, 'graceful'))!.deletionRequestedAt).toEqual(pending!.deletionRequestedAt);
  expect(await finishDeletion(db.pool, 'graceful', created!.uid)).toBe(true);
  expect(await getSession(db.pool, 'graceful')).toBeUndefined();
});

test('a row without finalizers is deleted at once', async () => {
  await upsert(db.pool, 'plain', { image: 'a' });
  expect((await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'plain'`)).rowCount).toBe(1);
});

test('the database refuses names that are not DNS labels and specs that are not objects', async () => {
  await expect(upsert(db.pool, 'Not_Valid', { image: 'a' })).rejects.toThrow(/sessions_name_is_dns_label/);
  await expect(upsert(db.pool, 'array', ['image'])).rejects.toThrow(/sessions_spec_is_object/);
});

test('concurrent migrators serialise on the advisory lock and apply each migration once', async () => {
  const pools = [createPool(db.url), createPool(db.url), createPool(db.url)];
  try {
    const results = await Promise.all(pools.map((pool) => migrate(pool)));
    expect(results.flat()).toEqual([]);
    const versions = await db.pool.query('SELECT version FROM sessionctl.schema_migrations ORDER BY version');
    expect(versions.rows.map((entry) => entry.version)).toEqual(loadMigrations().map((migration) => migration.version));
  } finally {
    await Promise.all(pools.map((pool) => pool.end()));
  }
});

test('events are deduplicated with a count and bounded per session', async () => {
  const event = {
    sessionName: 'ev',
    sessionUid: null,
    type: 'Warning' as const,
    reason: 'BackOff' as const,
    message: 'back-off 1s',
  };
  await recordEvent(db.pool, event);
  await recordEvent(db.pool, event);
  expect(await listEvents(db.pool, 'ev')).toEqual([expect.objectContaining({ reason: 'BackOff', count: 2 })]);
  for (let index = 0; index < 8; index++)
    await recordEvent(db.pool, { ...event, reason: 'Created', message: `created ${index}` }, 5);
  const kept = await listEvents(db.pool, 'ev');
  expect(kept).toHaveLength(5);
  expect(kept[0].message).toBe('created 7');
});

test('migrate() refuses a database that a newer sessionctl migrated, naming both versions', async () => {
  const newest = Math.max(...loadMigrations().map((migration) => migration.version));
  await db.pool.query(`INSERT INTO sessionctl.schema_migrations (version, name) VALUES (999, 'from_the_future')`);
  try {
    await expect(migrate(db.pool)).rejects.toThrow(
      `the database schema is at version 999, newer than this sessionctl knows (${newest}; unknown migrations: 999)`,
    );
  } finally {
    await db.pool.query('DELETE FROM sessionctl.schema_migrations WHERE version = 999');
  }
});

test('the installation id is made once and readable by the controller role', async () => {
  const { rows } = await db.pool.query<{ id: string }>('SELECT id FROM sessionctl.installation');
  expect(rows).toHaveLength(1);
  expect(rows[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
  await expect(db.pool.query('INSERT INTO sessionctl.installation DEFAULT VALUES')).rejects.toThrow(/duplicate key/);
});
