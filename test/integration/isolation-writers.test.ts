/**
 * Writers cannot touch each other's sessions (migration 009), tried as writer B would against writer
 * A's rows through SQL, the store, the typed client and the CLI; the admin and the controller see all; rows
 * from before the migration stay usable; every database function has a pinned search_path (010).
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { sessionctl } from '../helpers/cli';
import { baseDatabaseUrl, createTestDatabase, type TestDatabase } from '../helpers/database';
import { createSessionClient, type SessionClient } from '../../src/client';
import { createPool } from '../../src/store/db';
import { DEFAULT_ROLES, loadMigrations, migrate } from '../../src/store/migrate';
import { getSession, listSessions, requestRestart } from '../../src/store/sessions';
import { mintToken, readToken, requestTokenRotation } from '../../src/store/tokens';
import { listEvents, recordEvent } from '../../src/store/events';

const suffix = randomBytes(4).toString('hex');
const password = randomBytes(12).toString('hex');
const users = {
  a: `sctl_iso_a_${suffix}`,
  b: `sctl_iso_b_${suffix}`,
  admin: `sctl_iso_admin_${suffix}`,
  controller: `sctl_iso_ctl_${suffix}`,
};

let db: TestDatabase;
let superuser: Client;
const clients: SessionClient[] = [];
const sql: Record<keyof typeof users, Client> = {} as Record<keyof typeof users, Client>;

function urlFor(user: string, database?: string): string {
  const url = new URL(db.url);
  if (database) url.pathname = `/${database}`;
  url.username = user;
  url.password = password;
  return url.toString();
}

function client(user: string): SessionClient {
  const created = createSessionClient({ connectionString: urlFor(user) });
  clients.push(created);
  return created;
}

async function sqlstate(statement: Promise<unknown>): Promise<string | undefined> {
  return statement.then(
    () => undefined,
    (error: { code?: string }) => error.code,
  );
}

beforeAll(async () => {
  db = await createTestDatabase('isolation_writers');
  superuser = new Client({ connectionString: baseDatabaseUrl() });
  await superuser.connect();
  const groups = {
    a: DEFAULT_ROLES.writer,
    b: DEFAULT_ROLES.writer,
    admin: DEFAULT_ROLES.admin,
    controller: DEFAULT_ROLES.controller,
  };
  for (const [key, user] of Object.entries(users) as Array<[keyof typeof users, string]>) {
    await superuser.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password}' IN ROLE ${groups[key]}`);
    sql[key] = new Client({ connectionString: urlFor(user) });
    await sql[key].connect();
  }
});

afterAll(async () => {
  for (const each of clients) await each.close();
  for (const each of Object.values(sql)) await each?.end().catch(() => undefined);
  await db?.drop();
  for (const user of Object.values(users)) await superuser.query(`DROP ROLE IF EXISTS ${user}`);
  await superuser?.end();
});

const spec = { image: 'sessionctl/base:dev', auth: {} };

test("writer B gets no rows, tokens or events of writer A's sessions and cannot change, delete, restart, rotate or take them over", async () => {
  const alice = client(users.a);
  const mallory = client(users.b);
  await alice.apply({ metadata: { name: 'a-secret' }, spec });
  await mallory.apply({ metadata: { name: 'b-own' }, spec });
  const row = await getSession(sql.controller, 'a-secret');
  expect(row).toBeDefined();
  await mintToken(sql.controller, 'a-secret', row!.uid, 3600);
  await recordEvent(sql.controller, {
    sessionName: 'a-secret',
    sessionUid: row!.uid,
    type: 'Normal',
    reason: 'Created',
    message: 'created',
  });
  expect((await alice.token('a-secret'))?.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect((await db.pool.query(`SELECT owner FROM sessionctl.sessions WHERE name = 'a-secret'`)).rows[0].owner).toBe(
    users.a,
  );

  expect((await mallory.list()).map((session) => session.metadata.name)).toEqual(['b-own']);
  expect(await mallory.get('a-secret')).toBeUndefined();
  expect(await mallory.token('a-secret')).toBeUndefined();
  expect(await readToken(sql.b, 'a-secret')).toBeUndefined();
  expect((await sql.b.query('SELECT token FROM sessionctl.session_tokens')).rowCount).toBe(0);
  expect(await listEvents(sql.b, 'a-secret')).toEqual([]);
  expect(
    (await sql.b.query(`UPDATE sessionctl.sessions SET spec = '{"image":"evil"}' WHERE name = 'a-secret'`)).rowCount,
  ).toBe(0);
  expect((await sql.b.query(`DELETE FROM sessionctl.sessions WHERE name = 'a-secret'`)).rowCount).toBe(0);
  expect(await requestRestart(sql.b, 'a-secret')).toBe(false);
  expect(await requestTokenRotation(sql.b, 'a-secret')).toBe(false);
  expect(await mallory.delete('a-secret')).toBe(false);
  // An upsert of A's name does not take the row over: the DO UPDATE arm meets A's row and fails.
  await expect(mallory.apply({ metadata: { name: 'a-secret' }, spec: { image: 'evil' } })).rejects.toMatchObject({
    code: '42501',
  });
  // Nor can B forge an owner.
  expect(
    await sqlstate(
      sql.b.query(`INSERT INTO sessionctl.sessions (name, spec, owner) VALUES ('b-forged', '{}', $1)`, [users.a]),
    ),
  ).toBe('42501');
  expect(await sqlstate(sql.b.query(`UPDATE sessionctl.sessions SET owner = $1 WHERE name = 'b-own'`, [users.a]))).toBe(
    '42501',
  );

  const untouched = await getSession(sql.controller, 'a-secret');
  expect(untouched).toMatchObject({ generation: 1, spec, deletionRequestedAt: null, restartRequestedAt: null });
  expect((await readToken(sql.a, 'a-secret'))?.tokenId).toBeDefined();
  expect(await listEvents(sql.a, 'a-secret')).toHaveLength(1);
});

test('the CLI works under a writer role, showing only its own sessions, and under the admin, showing all', async () => {
  const as = (user: string) => ({ DATABASE_URL: urlFor(user) });
  const listed = await sessionctl(['get', 'sessions', '-o', 'name'], as(users.b));
  expect(listed).toMatchObject({ code: 0, stderr: '' });
  expect(listed.stdout).toMatch(/b-own/);
  expect(listed.stdout).not.toMatch(/a-secret/);
  for (const args of [
    ['get', 'session', 'a-secret'],
    ['describe', 'session', 'a-secret'],
    ['token', 'a-secret'],
  ]) {
    const refused = await sessionctl(args, as(users.b));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/session "a-secret" not found/);
  }
  const all = await sessionctl(['get', 'sessions', '-o', 'name'], as(users.admin));
  expect(all).toMatchObject({ code: 0 });
  expect(all.stdout).toMatch(/a-secret/);
  expect(all.stdout).toMatch(/b-own/);
  const token = await sessionctl(['token', 'a-secret'], as(users.a));
  expect(token).toMatchObject({ code: 0, stdout: `${(await readToken(sql.a, 'a-secret'))!.token}\n` });
});

test('the admin sees and changes every session and may hand one to another owner; the controller sees all', async () => {
  const names = (await listSessions(sql.admin)).map((row) => row.name);
  expect(names).toEqual(expect.arrayContaining(['a-secret', 'b-own']));
  expect((await listSessions(sql.controller)).map((row) => row.name)).toEqual(
    expect.arrayContaining(['a-secret', 'b-own']),
  );
  expect(await readToken(sql.admin, 'a-secret')).toBeDefined();
  await sql.admin.query(`UPDATE sessionctl.sessions SET owner = $1 WHERE name = 'b-own'`, [users.a]);
  expect((await listSessions(sql.a)).map((row) => row.name)).toEqual(['a-secret', 'b-own']);
  expect(await listSessions(sql.b)).toEqual([]);
});

test('rows written before migration 009 belong to the writer group and stay usable by writers', async () => {
  const database = `sctl_iso_legacy_${suffix}`;
  await superuser.query(`CREATE DATABASE ${database}`);
  const legacyUrl = new URL(baseDatabaseUrl());
  legacyUrl.pathname = `/${database}`;
  const pool = createPool(legacyUrl.toString(), { max: 1 });
  try {
    await migrate(pool, { migrations: loadMigrations().filter((migration) => migration.version < 9) });
    await pool.query(`INSERT INTO sessionctl.sessions (name, spec) VALUES ('old', '{"image":"a"}')`);
    await migrate(pool);
    expect((await pool.query(`SELECT owner FROM sessionctl.sessions WHERE name = 'old'`)).rows[0].owner).toBe(
      DEFAULT_ROLES.writer,
    );
    const writer = new Client({ connectionString: urlFor(users.b, database) });
    await writer.connect();
    try {
      expect((await listSessions(writer)).map((row) => row.name)).toEqual(['old']);
      expect(
        (await writer.query(`UPDATE sessionctl.sessions SET spec = '{"image":"b"}' WHERE name = 'old'`)).rowCount,
      ).toBe(1);
    } finally {
      await writer.end();
    }
  } finally {
    await pool.end();
    await superuser.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
});

test('every function of the sessionctl schema runs with a pinned search_path, and a planted public function is never called', async () => {
  const unpinned = await db.pool.query(
    `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
      WHERE p.pronamespace = 'sessionctl'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search_path=pg_catalog%')`,
  );
  expect(unpinned.rows).toEqual([]);
  // An attacker who may create in public shadows a builtin the triggers call, then waits for a writer.
  await db.pool.query(
    `CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE sql AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$`,
  );
  try {
    await sql.a.query(`SET search_path = public, pg_catalog`);
    await sql.a.query(`INSERT INTO sessionctl.sessions (name, spec) VALUES ('planted', '{"image":"a"}')`);
    const { uid } = (await getSession(sql.a, 'planted'))!;
    expect(uid).not.toBe('00000000-0000-0000-0000-000000000000');
  } finally {
    await sql.a.query('RESET search_path');
    await db.pool.query('DROP FUNCTION public.gen_random_uuid()');
  }
});
