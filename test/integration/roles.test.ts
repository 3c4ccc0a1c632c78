/**
 * The SQL contract enforced by the database (migrations 003, 005, 006): a writer role that may insert, upsert,
 * delete and change only spec, labels, deletion and activity; a controller role that may write status;
 * role names configurable; migrations still idempotent and serialised. Runs as real login users.
 *
 * Roles are cluster-wide and other suites migrate their databases at the same time, so this file only
 * ever drops roles it created itself, with names carrying a random suffix.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, type Pool } from 'pg';
import { baseDatabaseUrl, createTestDatabase, type TestDatabase } from '../helpers/database';
import { notifyBarrier } from '../helpers/notify-barrier';
import { createPool } from '../../src/store/db';
import {
  DEFAULT_ROLES,
  loadMigrations,
  migrate,
  migrationsDirectory,
  type DatabaseRoles,
} from '../../src/store/migrate';
import {
  addFinalizer,
  finishDeletion,
  getSession,
  listUnobservedSessionNames,
  requestRestart,
  upsertSessions,
  writeStatus,
} from '../../src/store/sessions';
import { mintToken, readToken, requestTokenRotation } from '../../src/store/tokens';
import {
  deleteRegistryCredentials,
  readRegistryCredentials,
  saveRegistryCredentials,
} from '../../src/store/registry-credentials';
import { listEvents, recordEvent } from '../../src/store/events';
import { SESSIONS_CHANNEL, parseNotification } from '../../src/store/listener';
import type { SessionStatus } from '../../crds/status';

const suffix = randomBytes(4).toString('hex');
const password = randomBytes(12).toString('hex');
const writerUser = `sctl_test_writer_${suffix}`;
const controllerUser = `sctl_test_controller_${suffix}`;
/** Every role this file created, dropped in afterAll (after DROP OWNED BY in each database it used). */
const createdRoles: string[] = [];
/** Databases this file created itself (not through createTestDatabase), dropped in afterAll. */
const createdDatabases: string[] = [];

let db: TestDatabase;
let admin: Client;
let writer: Client;
let controller: Client;

function urlFor(database: string | undefined, user?: string): string {
  const url = new URL(database ? baseDatabaseUrl() : db.url);
  if (database) url.pathname = `/${database}`;
  if (user) {
    url.username = user;
    url.password = password;
  }
  return url.toString();
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function createLoginUser(name: string, group: string): Promise<void> {
  createdRoles.push(name);
  await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}' IN ROLE ${group}`);
}

/** The SQLSTATE a statement fails with, or undefined when it succeeds. */
async function sqlstate(statement: Promise<unknown>): Promise<string | undefined> {
  try {
    await statement;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

const status = (generation: number): SessionStatus => ({
  observedGeneration: generation,
  phase: 'Running',
  conditions: [],
  restartCount: 0,
});

beforeAll(async () => {
  db = await createTestDatabase('roles');
  admin = await connect(baseDatabaseUrl());
  await createLoginUser(writerUser, DEFAULT_ROLES.writer);
  await createLoginUser(controllerUser, DEFAULT_ROLES.controller);
  writer = await connect(urlFor(undefined, writerUser));
  controller = await connect(urlFor(undefined, controllerUser));
});

afterAll(async () => {
  await writer?.end().catch(() => undefined);
  await controller?.end().catch(() => undefined);
  await db?.drop();
  for (const database of createdDatabases) await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  for (const role of createdRoles.reverse()) await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin?.end();
});

describe('the writer role', () => {
  test('inserts, upserts, updates spec, labels and activity, and reads sessions and events', async () => {
    const listener = await connect(db.url);
    const notified: string[] = [];
    listener.on('notification', (message) => notified.push(parseNotification(message.payload!)!.name));
    await listener.query(`LISTEN ${SESSIONS_CHANNEL}`);
    try {
      await writer.query(
        `INSERT INTO sessionctl.sessions (name, labels, spec) VALUES ('w-one', '{"team":"law"}', '{"image":"a"}')`,
      );
      const inserted = await getSession(writer, 'w-one');
      // The BEFORE INSERT trigger ran as the writer: gen_random_uuid() and the bookkeeping assignments.
      expect(inserted).toMatchObject({ generation: 1, labels: { team: 'law' }, status: {}, finalizers: [] });
      expect(inserted!.uid).toMatch(/^[0-9a-f-]{36}$/);

      const upsert = `INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec`;
      await writer.query(upsert, ['w-one', '{"image":"b"}']);
      await writer.query(upsert, ['w-one', '{"image":"b"}']);
      expect((await getSession(writer, 'w-one'))!.generation).toBe(2);

      await writer.query(
        `UPDATE sessionctl.sessions SET spec = jsonb_set(spec, '{state}', '"Stopped"'), labels = '{"team":"ops"}' WHERE name = 'w-one'`,
      );
      await writer.query(`UPDATE sessionctl.sessions SET last_activity_at = now() WHERE name = 'w-one'`);
      const updated = await writer.query(
        `SELECT generation, labels, spec, last_activity_at FROM sessionctl.sessions WHERE name = 'w-one'`,
      );
      expect(updated.rows[0]).toMatchObject({
        generation: '3',
        labels: { team: 'ops' },
        spec: { image: 'b', state: 'Stopped' },
      });
      expect(updated.rows[0].last_activity_at).toBeInstanceOf(Date);

      // The repository the CLI and the TypeScript client use (a CTE upsert with RETURNING).
      expect(await upsertSessions(writer, [{ name: 'w-two', labels: { team: 'law' }, spec: { image: 'a' } }])).toEqual([
        { name: 'w-two', outcome: 'created', generation: 1 },
      ]);
      expect(await upsertSessions(writer, [{ name: 'w-two', labels: { team: 'law' }, spec: { image: 'a' } }])).toEqual([
        { name: 'w-two', outcome: 'unchanged', generation: 1 },
      ]);

      await recordEvent(db.pool, {
        sessionName: 'w-one',
        sessionUid: inserted!.uid,
        type: 'Normal',
        reason: 'Created',
        message: 'created',
      });
      expect(await listEvents(writer, 'w-one')).toEqual([expect.objectContaining({ reason: 'Created', count: 1 })]);

      // The NOTIFY trigger ran as the writer too (pg_notify); the barrier, sent last, arrives after all of them.
      await notifyBarrier(writer, notified);
      expect(notified.filter((name) => name === 'w-one')).toHaveLength(3);
    } finally {
      await listener.end();
    }
  });

  test('deletes: at once without a finalizer, gracefully while one remains', async () => {
    await writer.query(
      `INSERT INTO sessionctl.sessions (name, spec) VALUES ('w-plain', '{"image":"a"}'), ('w-graceful', '{"image":"a"}')`,
    );
    expect((await writer.query(`DELETE FROM sessionctl.sessions WHERE name = 'w-plain'`)).rowCount).toBe(1);

    await db.pool.query(
      `UPDATE sessionctl.sessions SET finalizers = '{sessionctl.dev/container}' WHERE name = 'w-graceful'`,
    );
    // The BEFORE DELETE trigger's UPDATE of deletion_requested_at runs as the writer.
    expect((await writer.query(`DELETE FROM sessionctl.sessions WHERE name = 'w-graceful'`)).rowCount).toBe(0);
    const pending = await getSession(writer, 'w-graceful');
    expect(pending).toMatchObject({ generation: 2, finalizers: ['sessionctl.dev/container'] });
    expect(pending!.deletionRequestedAt).toBeInstanceOf(Date);
    // A second DELETE, and an upsert, cannot take it back.
    expect((await writer.query(`DELETE FROM sessionctl.sessions WHERE name = 'w-graceful'`)).rowCount).toBe(0);
    await writer.query(`UPDATE sessionctl.sessions SET deletion_requested_at = NULL WHERE name = 'w-graceful'`);
    expect((await getSession(writer, 'w-graceful'))!.deletionRequestedAt).toEqual(pending!.deletionRequestedAt);
  });

  test.each([
    ['status', `status = '{}'`],
    ['finalizers', `finalizers = '{}'`],
    ['generation', 'generation = 7'],
    ['resource_version', 'resource_version = 7'],
    ['uid', 'uid = gen_random_uuid()'],
    ['host', `host = 'elsewhere'`],
    ['created_at', 'created_at = now()'],
    ['updated_at', 'updated_at = now()'],
    ['generation_changed_at', 'generation_changed_at = now()'],
    ['name', `name = 'renamed'`],
  ])('UPDATE ... SET %s is permission denied', async (_column, assignment) => {
    await writer.query(
      `INSERT INTO sessionctl.sessions (name, spec) VALUES ('w-forge', '{"image":"a"}') ON CONFLICT (name) DO NOTHING`,
    );
    const attempt = writer.query(`UPDATE sessionctl.sessions SET ${assignment} WHERE name = 'w-forge'`);
    await expect(attempt).rejects.toThrow(/permission denied for table sessions/);
    expect(await sqlstate(writer.query(`UPDATE sessionctl.sessions SET ${assignment} WHERE name = 'w-forge'`))).toBe(
      '42501',
    );
    // Nor through the DO UPDATE arm of an upsert.
    expect(
      await sqlstate(
        writer.query(
          `INSERT INTO sessionctl.sessions (name, spec) VALUES ('w-forge', '{"image":"a"}') ON CONFLICT (name) DO UPDATE SET ${assignment}`,
        ),
      ),
    ).toBe('42501');
  });

  test('may not insert controller-owned columns, write events, truncate or run DDL', async () => {
    expect(
      await sqlstate(
        writer.query(`INSERT INTO sessionctl.sessions (name, spec, host) VALUES ('w-host', '{"image":"a"}', 'h')`),
      ),
    ).toBe('42501');
    expect(
      await sqlstate(
        writer.query(`INSERT INTO sessionctl.sessions (name, spec, status) VALUES ('w-status', '{"image":"a"}', '{}')`),
      ),
    ).toBe('42501');
    expect(
      await sqlstate(
        recordEvent(writer, {
          sessionName: 'x',
          sessionUid: null,
          type: 'Normal',
          reason: 'Created',
          message: 'forged',
        }),
      ),
    ).toBe('42501');
    expect(await sqlstate(writer.query('DELETE FROM sessionctl.events'))).toBe('42501');
    expect(await sqlstate(writer.query('TRUNCATE sessionctl.sessions'))).toBe('42501');
    expect(await sqlstate(writer.query('CREATE TABLE sessionctl.mine (id int)'))).toBe('42501');
    expect(
      await sqlstate(writer.query('ALTER TABLE sessionctl.sessions DROP CONSTRAINT sessions_spec_is_object')),
    ).toBe('42501');
  });
});

describe('access tokens and restart requests (migration 005)', () => {
  test('the writer reads tokens and asks for rotations and restarts; only the controller mints', async () => {
    await writer.query(`INSERT INTO sessionctl.sessions (name, spec) VALUES ('t-one', '{"image":"a","auth":{}}')`);
    const uid = (await getSession(controller, 't-one'))!.uid;
    const minted = await mintToken(controller, 't-one', uid, 3600);
    expect(minted).toMatchObject({ sessionUid: uid });
    const token = await readToken(writer, 't-one');
    expect(token!.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(
      await sqlstate(
        writer.query(`UPDATE sessionctl.session_tokens SET token = 'forged' WHERE session_name = 't-one'`),
      ),
    ).toBe('42501');
    expect(await sqlstate(mintToken(writer, 't-one', uid, 3600))).toBe('42501');
    // A rotation request is a DELETE, and wakes the controller's channel.
    await controller.query('LISTEN sessionctl_sessions');
    const woken = new Promise<string>((resolve) =>
      controller.once('notification', (message) => resolve(message.payload ?? '')),
    );
    expect(await requestTokenRotation(writer, 't-one')).toBe(true);
    expect(JSON.parse(await woken)).toMatchObject({ name: 't-one' });
    await controller.query('UNLISTEN sessionctl_sessions');

    const before = (await getSession(writer, 't-one'))!.generation;
    expect(await requestRestart(writer, 't-one')).toBe(true);
    expect((await getSession(writer, 't-one'))!.generation).toBe(before + 1);
  });
});

describe('registry credentials (migration 006)', () => {
  test('the controller only reads them; writers cannot even read them; only the schema owner changes them', async () => {
    await saveRegistryCredentials(db.pool, 'registry.example:5000', { username: 'ci', password: 'pull-secret' });
    expect(await readRegistryCredentials(controller)).toEqual(
      new Map([['registry.example:5000', { username: 'ci', password: 'pull-secret' }]]),
    );
    expect(
      await sqlstate(
        saveRegistryCredentials(controller, 'registry.example:5000', { username: 'ci', password: 'forged' }),
      ),
    ).toBe('42501');
    expect(await sqlstate(deleteRegistryCredentials(controller, 'registry.example:5000'))).toBe('42501');
    expect(await sqlstate(readRegistryCredentials(writer))).toBe('42501');
    expect(
      await sqlstate(saveRegistryCredentials(db.pool, 'https://registry.example/', { username: 'ci', password: 'x' })),
    ).toBe('23514');
  });
});

describe('checks that refuse what can never be valid', () => {
  test('a spec that is a JSON array, and label values that are not strings, are refused', async () => {
    const insert = (name: string, labels: string, spec: string) =>
      writer.query('INSERT INTO sessionctl.sessions (name, labels, spec) VALUES ($1, $2, $3)', [name, labels, spec]);
    await expect(insert('c-array', '{}', '["image"]')).rejects.toMatchObject({
      code: '23514',
      constraint: 'sessions_spec_is_object',
    });
    for (const labels of [
      '{"tier":1}',
      '{"tier":null}',
      '{"tier":true}',
      '{"tier":{}}',
      '{"tier":["a"]}',
      '{"tier":[]}',
      '{"a":"x","tier":2}',
    ]) {
      await expect(insert('c-labels', labels, '{"image":"a"}')).rejects.toMatchObject({
        code: '23514',
        constraint: 'sessions_label_values_are_strings',
      });
    }
    await insert('c-labels', '{"a":"x","b":""}', '{"image":"a"}');
    await expect(
      writer.query(`UPDATE sessionctl.sessions SET labels = '{"a":2}' WHERE name = 'c-labels'`),
    ).rejects.toMatchObject({ code: '23514' });
    // The spec's content is the controller's to report (InvalidSpec), never the database's.
    await insert('c-no-image', '{}', '{"imagee":"typo","ports":"nope"}');
  });
});

describe('the controller role', () => {
  test('writes status guarded by generation, manages finalizers and events, and deletes rows', async () => {
    await writer.query(`INSERT INTO sessionctl.sessions (name, spec) VALUES ('k-one', '{"image":"a"}')`);
    const read = await getSession(controller, 'k-one');
    expect(await listUnobservedSessionNames(controller)).toContain('k-one');
    expect(await addFinalizer(controller, 'k-one', read!.uid)).toBe(true);
    await writer.query(`UPDATE sessionctl.sessions SET spec = '{"image":"b"}' WHERE name = 'k-one'`);
    expect(await writeStatus(controller, 'k-one', read!.generation, status(read!.generation), 'default')).toBe(false);
    expect(await writeStatus(controller, 'k-one', read!.generation + 1, status(read!.generation + 1), 'default')).toBe(
      true,
    );
    expect(await getSession(controller, 'k-one')).toMatchObject({
      generation: 2,
      host: 'default',
      status: { observedGeneration: 2 },
    });

    await recordEvent(controller, {
      sessionName: 'k-one',
      sessionUid: read!.uid,
      type: 'Normal',
      reason: 'Created',
      message: 'created',
    });
    await recordEvent(controller, {
      sessionName: 'k-one',
      sessionUid: read!.uid,
      type: 'Normal',
      reason: 'Created',
      message: 'created',
    });
    await recordEvent(
      controller,
      { sessionName: 'k-one', sessionUid: read!.uid, type: 'Normal', reason: 'Started', message: 'started' },
      1,
    );
    expect(await listEvents(controller, 'k-one')).toEqual([expect.objectContaining({ reason: 'Started' })]);

    await writer.query(`DELETE FROM sessionctl.sessions WHERE name = 'k-one'`);
    expect(await finishDeletion(controller, 'k-one', read!.uid)).toBe(true);
    expect(await getSession(controller, 'k-one')).toBeUndefined();

    await writer.query(`INSERT INTO sessionctl.sessions (name, spec) VALUES ('k-two', '{"image":"a"}')`);
    expect((await controller.query(`DELETE FROM sessionctl.sessions WHERE name = 'k-two'`)).rowCount).toBe(1);
  });

  test('may not run DDL or truncate', async () => {
    expect(await sqlstate(controller.query('CREATE TABLE sessionctl.mine (id int)'))).toBe('42501');
    expect(await sqlstate(controller.query('TRUNCATE sessionctl.events'))).toBe('42501');
    expect(await sqlstate(controller.query('DROP TRIGGER sessions_notify ON sessionctl.sessions'))).toBe('42501');
  });
});

describe('migrations', () => {
  test('re-running migrate applies nothing; as the writer or controller too, but they cannot apply a pending one', async () => {
    expect(await migrate(db.pool)).toEqual([]);
    for (const user of [writerUser, controllerUser]) {
      const pool = createPool(urlFor(undefined, user), { max: 1 });
      try {
        expect(await migrate(pool)).toEqual([]);
        const extra = { version: 999, name: 'extra', sql: 'CREATE TABLE sessionctl.extra (id int)' };
        await expect(migrate(pool, { migrations: [...loadMigrations(), extra] })).rejects.toThrow(
          /999_extra\.sql failed: permission denied/,
        );
      } finally {
        await pool.end();
      }
    }
    const versions = await db.pool.query('SELECT version FROM sessionctl.schema_migrations ORDER BY version');
    expect(versions.rows.map((entry) => entry.version)).toEqual(loadMigrations().map((migration) => migration.version));
  });

  test('concurrent migrators on the existing database apply nothing', async () => {
    const pools = [createPool(db.url), createPool(db.url), createPool(db.url)];
    try {
      expect((await Promise.all(pools.map((pool) => migrate(pool)))).flat()).toEqual([]);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  test('refuses role names that are not plain identifiers before touching the database', async () => {
    await expect(
      migrate(db.pool, { roles: { writer: 'Robert"); DROP TABLE x; --', controller: 'c' } }),
    ).rejects.toThrow(/writer role name/);
    await expect(migrate(db.pool, { roles: { writer: 'same', controller: 'same' } })).rejects.toThrow(/must differ/);
  });

  test('custom role names: created once across databases migrating concurrently, granted in each', async () => {
    const roles: DatabaseRoles = { writer: `sctl_test_w_${suffix}`, controller: `sctl_test_c_${suffix}` };
    createdRoles.push(roles.writer, roles.controller);
    const databases = [`sctl_roles_a_${suffix}`, `sctl_roles_b_${suffix}`];
    for (const database of databases) {
      createdDatabases.push(database);
      await admin.query(`CREATE DATABASE ${database}`);
    }
    // Three migrators on the first database and one on the second, all at once: the advisory lock is
    // per database, so the two databases race to create the same roles.
    const pools: Pool[] = [...databases, databases[0], databases[0]].map((database) =>
      createPool(urlFor(database), { max: 1 }),
    );
    try {
      const applied = await Promise.all(pools.map((pool) => migrate(pool, { roles })));
      const all = loadMigrations().map((migration) => migration.version);
      expect(applied[1]).toEqual(all);
      expect([applied[0], applied[2], applied[3]].flat().sort((a, b) => a - b)).toEqual(all);
      expect([applied[0], applied[2], applied[3]].filter((versions) => versions.length > 0)).toHaveLength(1);
      // The settings do not outlive migrate() on the pooled connections (one per pool).
      for (const pool of pools) {
        const leftover = await pool.query(
          `SELECT current_setting('sessionctl.writer_role', true) AS writer, current_setting('sessionctl.controller_role', true) AS controller`,
        );
        expect([leftover.rows[0].writer ?? '', leftover.rows[0].controller ?? '']).toEqual(['', '']);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }

    const found = await admin.query(
      'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname',
      [[roles.writer, roles.controller]],
    );
    expect(found.rows).toEqual([
      { rolname: roles.controller, rolcanlogin: false },
      { rolname: roles.writer, rolcanlogin: false },
    ]);

    for (const database of databases) {
      const client = await connect(urlFor(database));
      try {
        const privileges = await client.query(
          `SELECT has_column_privilege($1, 'sessionctl.sessions', 'spec', 'UPDATE') AS writer_spec,
                  has_column_privilege($1, 'sessionctl.sessions', 'status', 'UPDATE') AS writer_status,
                  has_column_privilege($2, 'sessionctl.sessions', 'status', 'UPDATE') AS controller_status,
                  has_table_privilege($2, 'sessionctl.events', 'INSERT') AS controller_events,
                  has_table_privilege($3, 'sessionctl.sessions', 'SELECT') AS default_writer_select`,
          [roles.writer, roles.controller, DEFAULT_ROLES.writer],
        );
        expect(privileges.rows[0]).toEqual({
          writer_spec: true,
          writer_status: false,
          controller_status: true,
          controller_events: true,
          default_writer_select: false,
        });
      } finally {
        await client.end();
      }
    }

    // A login user in the custom writer role gets the writer's contract.
    const customWriter = `sctl_test_cw_${suffix}`;
    await createLoginUser(customWriter, roles.writer);
    const client = await connect(urlFor(databases[1], customWriter));
    try {
      await client.query(
        `INSERT INTO sessionctl.sessions (name, spec) VALUES ('custom', '{"image":"a"}') ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec`,
      );
      expect(await sqlstate(client.query(`UPDATE sessionctl.sessions SET status = '{}' WHERE name = 'custom'`))).toBe(
        '42501',
      );
    } finally {
      await client.end();
    }

    // Privileges live in each database: revoke them there before the roles can be dropped.
    for (const database of databases) {
      const client = await connect(urlFor(database));
      try {
        await client.query(`DROP OWNED BY ${roles.writer}, ${roles.controller}, ${customWriter}`);
      } finally {
        await client.end();
      }
    }
    for (const role of [customWriter, roles.writer, roles.controller]) await admin.query(`DROP ROLE ${role}`);
  });

  test('role names reach the SQL quoted with %I', async () => {
    // Run 003's role block with names no configuration would allow, inside a transaction that is
    // rolled back (CREATE ROLE is transactional), so nothing is left in the cluster.
    const sql = readFileSync(path.join(migrationsDirectory(), '003_roles.sql'), 'utf8');
    const block = sql.slice(sql.indexOf('DO $roles$'), sql.indexOf('END $roles$;') + 'END $roles$;'.length);
    const hostile = { writer: `Sctl "w"; DROP TABLE sessionctl.events; -- ${suffix}`, controller: `sctl c ${suffix}` };
    const client = await connect(db.url);
    try {
      await client.query('BEGIN');
      await client.query(
        `SELECT set_config('sessionctl.writer_role', $1, true), set_config('sessionctl.controller_role', $2, true)`,
        [hostile.writer, hostile.controller],
      );
      await client.query(block);
      const check = await client.query(
        `SELECT (SELECT count(*)::int FROM pg_roles WHERE rolname = ANY($1)) AS roles,
                has_column_privilege($2, 'sessionctl.sessions', 'spec', 'UPDATE') AS writer_spec,
                has_column_privilege($2, 'sessionctl.sessions', 'status', 'UPDATE') AS writer_status,
                to_regclass('sessionctl.events') IS NOT NULL AS events_still_there`,
        [[hostile.writer, hostile.controller], hostile.writer],
      );
      expect(check.rows[0]).toEqual({ roles: 2, writer_spec: true, writer_status: false, events_still_there: true });
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
    const left = await admin.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1)', [
      [hostile.writer, hostile.controller],
    ]);
    expect(left.rows[0].n).toBe(0);
  });
});
