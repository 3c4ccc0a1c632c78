/**
 * Output safety on the real database and CLI, as an attacker writing rows would try it: terminal
 * escape sequences in label values, in a spec value the validation message quotes, and in unknown
 * field names reach status, events and `sessionctl get`/`describe` escaped, never raw.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { sessionctl } from '../helpers/cli';
import { condition, waitConverged } from '../helpers/sessions';

let db: TestDatabase;
let controller: ControllerProcess;

// ESC (clear screen, recolour, set the window title), a C1 CSI, and a right-to-left override.
const HOSTILE = '\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202e';
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('isolation_output');
  controller = await startController({ databaseUrl: db.url });
  await db.pool.query('INSERT INTO sessionctl.sessions (name, labels, spec) VALUES ($1, $2, $3)', [
    'shouty',
    JSON.stringify({ team: `law${HOSTILE}` }),
    JSON.stringify({ image: 'sessionctl/base:dev', resources: { memory: `1g${HOSTILE}` }, [`evil${HOSTILE}`]: true }),
  ]);
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

test('the validation message in status and events quotes the spec escaped', async () => {
  const refused = await waitConverged(db.pool, 'shouty', 'False');
  const message = condition(refused, 'Valid')!.message;
  expect(message).toContain('\\x1b[2J');
  expect(message).toContain('\\u202e');
  expect(message).not.toMatch(RAW);
  const events = await db.pool.query(`SELECT message FROM sessionctl.events WHERE session_name = 'shouty'`);
  expect(events.rowCount).toBeGreaterThan(0);
  for (const event of events.rows) expect(event.message).not.toMatch(RAW);
}, 60_000);

test.each([
  [['get', 'sessions', '-o', 'wide']],
  [['get', 'session', 'shouty', '-o', 'yaml']],
  [['get', 'session', 'shouty', '-o', 'json']],
  [['describe', 'session', 'shouty']],
])(
  'sessionctl %j prints escape sequences escaped',
  async (args) => {
    await waitConverged(db.pool, 'shouty', 'False');
    const result = await sessionctl(args, { DATABASE_URL: db.url });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(RAW);
    expect(result.stderr).not.toMatch(RAW);
    if (args[0] === 'describe' || args.includes('yaml') || args.includes('json'))
      expect(result.stdout).toMatch(/\\(x1b|u001b|e)\[2J/);
    if (args.includes('json')) expect(JSON.parse(result.stdout).metadata.labels.team).toBe(`law${HOSTILE}`);
  },
  60_000,
);
