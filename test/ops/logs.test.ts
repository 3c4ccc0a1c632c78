/**
 * The controller's logs as an operator reads them: JSON lines by default (stdout is not a
 * terminal here), pino-pretty with SESSIONCTL_LOG_FORMAT=pretty, LOG_LEVEL respected, every line
 * about a session carrying the session name and the reconcileId, and no secret in any line.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { startController, type ControllerProcess } from '../helpers/controller';
import { containersOf, removeManagedContainers, testDocker } from '../helpers/docker';
import { httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { testWithCommand } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
const controllers: ControllerProcess[] = [];

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('logs');
});

afterAll(async () => {
  for (const controller of controllers) await controller.stop();
  await removeManagedContainers();
  await db?.drop();
});

interface LogLine {
  level: number;
  time: string;
  msg: string;
  session?: string;
  reconcileId?: string;
  [field: string]: unknown;
}

function jsonLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

test("JSON by default; a session's lines carry its name and reconcileId; secrets are redacted", async () => {
  const secret = `sekret-${randomBytes(8).toString('hex')}`;
  const controller = await startController({
    databaseUrl: db.url,
    env: { LOG_LEVEL: 'debug' },
    unsetEnv: ['SESSIONCTL_LOG_FORMAT'],
  });
  controllers.push(controller);
  await upsert(db.pool, 'logs-a', httpSpec({ env: { API_KEY: secret } }));
  await waitConverged(db.pool, 'logs-a');
  // A crash the controller repairs, then a deletion: restart, removal and deletion lines.
  const [container] = await containersOf('logs-a');
  await testDocker().getContainer(container.Id).kill();
  await waitFor(async () => (await row(db.pool, 'logs-a'))?.status.restartCount === 1, {
    what: 'the controller to restart the killed container',
  });
  await db.pool.query('DELETE FROM sessionctl.sessions WHERE name = $1', ['logs-a']);
  await waitFor(async () => (await row(db.pool, 'logs-a')) === undefined, { what: 'the session row to be gone' });
  await waitFor(() => controller.output().includes('"session deleted"'), { what: 'the deletion to be logged' });
  await controller.stop();

  const lines = jsonLines(controller.output());
  for (const line of lines) {
    expect(typeof line.level).toBe('number');
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
    expect(typeof line.msg).toBe('string');
  }
  const about = lines.filter((line) => line.session === 'logs-a');
  const messages = about.map((line) => line.msg);
  for (const expected of [
    'planned',
    'container created',
    'container started',
    'container restarted',
    'container removed',
    'session deleted',
  ])
    expect(messages).toContain(expected);
  for (const line of about) expect(line.reconcileId).toMatch(/^[0-9a-f]{12}$/);
  // Lines about a container of the session name it too: none lacks the session.
  for (const line of lines.filter((entry) => /^container |^session /.test(entry.msg)))
    expect(line.session).toBe('logs-a');
  // Debug lines show the spec, with its environment redacted; the value appears nowhere.
  const planned = about.find((line) => line.msg === 'planned' && line.spec) as { spec: { env: unknown } } | undefined;
  expect(planned?.spec.env).toBe('[redacted]');
  expect(controller.output()).not.toContain(secret);
  // The database password is masked in the start-up line.
  const starting = lines.find((line) => line.msg === 'starting controller') as { database: string } | undefined;
  const password = decodeURIComponent(new URL(db.url).password);
  expect(starting?.database).toMatch(/:\*\*\*@/);
  expect(password.length).toBeGreaterThan(0);
  expect(starting?.database).not.toContain(`:${password}@`);
});

test('LOG_LEVEL=warn leaves out info and debug lines', async () => {
  const controller = await startController({ databaseUrl: db.url, env: { LOG_LEVEL: 'warn' } });
  controllers.push(controller);
  await upsert(db.pool, 'logs-b', httpSpec());
  await waitConverged(db.pool, 'logs-b');
  await controller.stop();
  // Reconciles happened, at info level: none may show.
  const lines = jsonLines(controller.output());
  expect(lines.filter((line) => line.level < 40)).toEqual([]);
  // At info level the same run logs them.
  const verbose = await startController({ databaseUrl: db.url, env: { LOG_LEVEL: 'info' } });
  controllers.push(verbose);
  await verbose.stop();
  expect(jsonLines(verbose.output()).map((line) => line.msg)).toEqual(
    expect.arrayContaining([
      'starting controller',
      'controller started',
      'controller stopped; containers keep running',
    ]),
  );
});

test('SESSIONCTL_LOG_FORMAT=pretty gives human-readable lines', async () => {
  const controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_LOG_FORMAT: 'pretty' } });
  controllers.push(controller);
  await controller.stop();
  // eslint-disable-next-line no-control-regex
  const text = controller.output().replace(/\x1b\[[0-9;]*m/g, '');
  const started = text.split('\n').find((line) => line.includes('controller started'));
  expect(started).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: controller started$/);
  expect(() => JSON.parse(started!)).toThrow();
  // Fields follow on indented lines.
  expect(text).toMatch(/\n\s+workers: 16\n/);
});

const probe = () =>
  `console.log(require(${JSON.stringify(require.resolve('../../dist/src/config'))}).loadConfig({}).logFormat)`;
const runFile = (file: string, args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile(file, args, (error, stdout) => (error ? reject(error) : resolve(stdout.trim()))),
  );

test('when stdout is not a terminal the default is JSON', async () => {
  expect(await runFile(process.execPath, ['-e', probe()])).toBe('json');
});

// util-linux `script` gives the child a pseudo-terminal, as an operator's shell would.
testWithCommand(
  'script',
  'util-linux, gives the child a pseudo-terminal',
  'on a terminal the default is pretty',
  async () => {
    expect(await runFile('script', ['-qec', `${process.execPath} -e '${probe()}'`, '/dev/null'])).toBe('pretty');
  },
);
