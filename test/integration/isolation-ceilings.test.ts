/**
 * Ceilings and quotas, as a greedy or hostile writer would test them: the operator's per-session
 * maximums refuse a spec with its field (the controller), the hard ceilings on spec size and env
 * entries hold in the database whoever writes, and per-owner quotas hold under concurrent creates.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { baseDatabaseUrl, createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, upsert, waitConverged } from '../helpers/sessions';
import { createSessionClient, SessionValidationError } from '../../src/client';
import { createPool } from '../../src/store/db';
import { DEFAULT_ROLES } from '../../src/store/migrate';

const suffix = randomBytes(4).toString('hex');
const password = randomBytes(12).toString('hex');
const writerUser = `sctl_iso_q_${suffix}`;

let db: TestDatabase;
/** No controller watches this one: rows here are only counted, never run. */
let quiet: TestDatabase;
let superuser: Client;
let controller: ControllerProcess;

function writerUrl(): string {
  const url = new URL(quiet.url);
  url.username = writerUser;
  url.password = password;
  return url.toString();
}

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('isolation_ceilings');
  quiet = await createTestDatabase('isolation_quotas');
  superuser = new Client({ connectionString: baseDatabaseUrl() });
  await superuser.connect();
  await superuser.query(`CREATE ROLE ${writerUser} LOGIN PASSWORD '${password}' IN ROLE ${DEFAULT_ROLES.writer}`);
  controller = await startController({
    databaseUrl: db.url,
    env: {
      SESSIONCTL_DEFAULT_MEMORY: '64Mi',
      SESSIONCTL_DEFAULT_CPUS: '0.5',
      SESSIONCTL_MAX_MEMORY: '256Mi',
      SESSIONCTL_MAX_CPUS: '1',
      SESSIONCTL_MAX_PIDS: '2048',
      SESSIONCTL_MAX_ENV: '4',
      SESSIONCTL_MAX_SPEC_BYTES: '4096',
    },
  });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
  await quiet?.drop();
  await superuser.query(`DROP ROLE IF EXISTS ${writerUser}`);
  await superuser?.end();
});

test.each([
  [
    'memory',
    { resources: { memory: '1t' } },
    /^spec\.resources\.memory: memory 1024Gi is above this controller's maximum of 256Mi \(SESSIONCTL_MAX_MEMORY\); ask for at most 256Mi/,
  ],
  [
    'cpus',
    { resources: { cpus: '64' } },
    /^spec\.resources\.cpus: 64 CPUs is above this controller's maximum of 1 CPUs \(SESSIONCTL_MAX_CPUS\)/,
  ],
  [
    'pids',
    { resources: { pids: 4_194_304 } },
    /^spec\.resources\.pids: 4194304 pids is above this controller's maximum of 2048 \(SESSIONCTL_MAX_PIDS\)/,
  ],
  [
    'env',
    { env: { A: '1', B: '2', C: '3', D: '4', E: '5' } },
    /^spec\.env: 5 environment variables is above this controller's maximum of 4 \(SESSIONCTL_MAX_ENV\)/,
  ],
  [
    'size',
    { args: ['x'.repeat(5000)] },
    /^spec: a spec of \d+ bytes is above this controller's maximum of 4096 bytes \(SESSIONCTL_MAX_SPEC_BYTES\)/,
  ],
])(
  "the operator's ceiling on %s refuses the spec as InvalidSpec, naming the field and the limit",
  async (what, extra, message) => {
    const name = `greedy-${what}`;
    await upsert(db.pool, name, { ...httpSpec({ ports: [] }), ...extra });
    const refused = await waitConverged(db.pool, name, 'False');
    expect(condition(refused, 'Valid')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(condition(refused, 'Valid')!.message).toMatch(message);
    expect(refused.status.containerId).toBeUndefined();
  },
  60_000,
);

test('the hard ceilings on spec size and env entries hold in the database, and the client says which field', async () => {
  const huge = { image: 'a', args: ['x'.repeat(300_000)] };
  await expect(upsert(quiet.pool, 'huge', huge)).rejects.toMatchObject({
    code: '23514',
    constraint: 'sessions_spec_size',
  });
  const env = Object.fromEntries(Array.from({ length: 1025 }, (_, index) => [`V${index}`, 'x']));
  await expect(upsert(quiet.pool, 'crowded', { image: 'a', env })).rejects.toMatchObject({
    code: '23514',
    constraint: 'sessions_env_entries',
  });
  const client = createSessionClient({ connectionString: writerUrl() });
  try {
    const attempt = client.apply({ metadata: { name: 'crowded' }, spec: { image: 'a', env } });
    await expect(attempt).rejects.toBeInstanceOf(SessionValidationError);
    await expect(attempt).rejects.toThrow(/spec\.env: at most 1024 environment variables/);
    await expect(client.apply({ metadata: { name: 'huge' }, spec: huge })).rejects.toThrow(
      /^invalid session: spec: the spec is \d+ bytes, more than the 262144 allowed/,
    );
  } finally {
    await client.close();
  }
});

test('20 concurrent creates against a quota of 10 sessions admit exactly 10; a memory quota refuses with its message', async () => {
  await quiet.pool.query('INSERT INTO sessionctl.owner_quotas (owner, max_sessions) VALUES ($1, 10)', [writerUser]);
  const pool = createPool(writerUrl(), { max: 20 });
  try {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        pool.query('INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2)', [
          `quota-${index}`,
          JSON.stringify({ image: 'a', state: 'Stopped' }),
        ]),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(10);
    const refusals = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(refusals).toHaveLength(10);
    for (const refusal of refusals) {
      expect(refusal.reason).toMatchObject({
        code: '53400',
        message: `owner ${writerUser} already has 10 sessions, its quota allows 10`,
      });
      expect(refusal.reason.hint).toMatch(/max_sessions in sessionctl\.owner_quotas/);
    }
    const owned = await quiet.pool.query('SELECT count(*)::int AS n FROM sessionctl.sessions WHERE owner = $1', [
      writerUser,
    ]);
    expect(owned.rows[0].n).toBe(10);
    // Re-applying an admitted session at the quota is not a new session.
    const admitted = (await pool.query<{ name: string }>('SELECT name FROM sessionctl.sessions LIMIT 1')).rows[0].name;
    await pool.query(
      `INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, '{"image":"b"}') ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec`,
      [admitted],
    );

    await quiet.pool.query('DELETE FROM sessionctl.sessions WHERE owner = $1', [writerUser]);
    await quiet.pool.query(
      'UPDATE sessionctl.owner_quotas SET max_sessions = NULL, max_memory_bytes = 100 * 1024 * 1024 WHERE owner = $1',
      [writerUser],
    );
    await pool.query(
      `INSERT INTO sessionctl.sessions (name, spec) VALUES ('mem-a', '{"image":"a","resources":{"memory":"64Mi"}}')`,
    );
    await expect(
      pool.query(
        `INSERT INTO sessionctl.sessions (name, spec) VALUES ('mem-b', '{"image":"a","resources":{"memory":"64Mi"}}')`,
      ),
    ).rejects.toMatchObject({
      code: '53400',
      message: `spec.resources.memory: owner ${writerUser} would use 134217728 bytes of memory, its quota allows 104857600`,
    });
    // Growing an existing session past the quota is refused too; shrinking one is fine.
    await expect(
      pool.query(
        `UPDATE sessionctl.sessions SET spec = '{"image":"a","resources":{"memory":"128Mi"}}' WHERE name = 'mem-a'`,
      ),
    ).rejects.toMatchObject({ code: '53400' });
    await pool.query(
      `UPDATE sessionctl.sessions SET spec = '{"image":"a","resources":{"memory":"32Mi"}}' WHERE name = 'mem-a'`,
    );
    await pool.query(
      `INSERT INTO sessionctl.sessions (name, spec) VALUES ('mem-b', '{"image":"a","resources":{"memory":"64Mi"}}')`,
    );
  } finally {
    await pool.end();
    await quiet.pool.query('DELETE FROM sessionctl.sessions WHERE owner = $1', [writerUser]);
  }
});
