/**
 * Pulls from a real registry (Debian's docker-registry with htpasswd basic auth) through the real
 * dockerd: pull policies, one pull for many sessions, wrong credentials without a hot loop, and no
 * secret in anything readable. The registry's access log is the proof of what was asked.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sessionctl } from '../helpers/cli';
import { startController, type ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, removeManagedContainers } from '../helpers/docker';
import { buildVariant, pushImage, untag } from '../helpers/images';
import { startRegistry, type TestRegistry } from '../helpers/registry';
import { leakedSecrets, readableRecords } from '../helpers/secrets';
import { condition, row, upsert, waitAllReady, waitConverged, waitForEventReasons } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { wakeAndSettle } from '../helpers/notify-barrier';
import { PULL_BACKOFF } from '../../controllers/session/image-pull';
import { encodeRegistryAuth } from '../../src/registry/auth-header';

const username = 'puller';
const password = `pw-${randomBytes(12).toString('hex')}`;
let registry: TestRegistry;
let db: TestDatabase;
let controller: ControllerProcess;
let dockerConfig: string;
let appDigest: string;
const pushed: string[] = [];

const spec = (image: string, extra: Record<string, unknown> = {}) => ({
  image,
  command: ['sleep', '3600'],
  resources: { memory: '16Mi', cpus: '0.1' },
  ...extra,
});

beforeAll(async () => {
  await removeManagedContainers();
  registry = await startRegistry({ htpasswd: { username, password } });
  for (const repo of ['team/app:v1', 'team/other:v1']) {
    const reference = `${registry.host}/${repo}`;
    await buildVariant(reference, repo);
    const digest = await pushImage(reference, { username, password }, registry.host);
    if (repo === 'team/app:v1') appDigest = digest;
    // The dev daemon built it: forget it there, so that the controller has to pull it.
    await untag(reference);
    pushed.push(reference);
  }
  dockerConfig = mkdtempSync(path.join(os.tmpdir(), 'sctl-dockercfg-'));
  writeFileSync(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } }),
    { mode: 0o600 },
  );
  db = await createTestDatabase('registry_basic');
  controller = await startController({
    databaseUrl: db.url,
    env: { DOCKER_CONFIG: dockerConfig, SESSIONCTL_PULL_CONCURRENCY: '2' },
  });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  for (const reference of pushed) await untag(reference);
  await db?.drop();
  await registry?.stop();
  rmSync(dockerConfig, { recursive: true, force: true });
});

const manifestGets = (repo: string) =>
  registry.requests({ method: 'GET', path: new RegExp(`^/v2/${repo}/manifests/`) });

test('20 sessions on one new image make exactly one pull, and show it while they wait', async () => {
  const names = Array.from({ length: 20 }, (_, index) => `pull-${String(index).padStart(2, '0')}`);
  const image = `${registry.host}/team/app:v1`;
  await db.pool.query(
    `INSERT INTO sessionctl.sessions (name, spec) SELECT name, $2::jsonb FROM unnest($1::text[]) AS name`,
    [names, JSON.stringify(spec(image))],
  );
  // Pull progress reaches status while the sessions wait.
  const pulling = await waitFor(
    async () => {
      const view = await row(db.pool, 'pull-07');
      const imageReady = condition(view, 'ImageReady');
      return imageReady?.reason === 'ImagePulling' || imageReady?.reason === 'ImagePresent' ? imageReady : undefined;
    },
    { timeoutMs: 30_000, what: 'pull-07 to report its image' },
  );
  if (pulling.reason === 'ImagePulling')
    expect(pulling.message).toMatch(new RegExp(`pulling image ${image.replace(/[.]/g, '\\.')} on host default`));
  await waitAllReady(db.pool, names);

  expect(manifestGets('team/app')).toHaveLength(1);
  expect(await controller.metric('sessionctl_image_pulls_total', { result: 'success' })).toBe(1);
  // Every container carries the digest the registry gave the pushed manifest.
  const [container] = await containersOf('pull-13');
  expect(container.Labels['dev.sessionctl.image-digest']).toBe(appDigest);
  await waitForEventReasons(
    db.pool,
    'pull-07',
    pulling.reason === 'ImagePulling' ? ['Pulling', 'Pulled', 'Created'] : ['Created'],
  );
  expect(condition(await row(db.pool, 'pull-07'), 'ImageReady')).toMatchObject({
    status: 'True',
    reason: 'ImagePresent',
  });
});

test('a steady state with IfNotPresent makes zero registry requests, even across recreates', async () => {
  const before = registry.accessLog().length;
  // A recreate (env change) and a new session on the same image: both find it on the host.
  await upsert(db.pool, 'pull-03', spec(`${registry.host}/team/app:v1`, { env: { EDITED: '1' } }));
  await upsert(db.pool, 'pull-extra', spec(`${registry.host}/team/app:v1`));
  await waitFor(async () => (await row(db.pool, 'pull-03'))?.generation === 2, { what: 'the edit' });
  await waitConverged(db.pool, 'pull-03');
  await waitConverged(db.pool, 'pull-extra');
  // Another look at both, through a full reconcile each: still nothing to ask the registry.
  await wakeAndSettle(db.pool, controller, ['pull-03', 'pull-extra']);
  expect(registry.accessLog().slice(before)).toEqual([]);
  expect(await controller.metric('sessionctl_registry_requests_total')).toBe(0);
});

test('imagePullPolicy: Always checks the digest with a HEAD (basic auth) and pulls nothing when it matches', async () => {
  const before = registry.accessLog().length;
  await upsert(db.pool, 'always', spec(`${registry.host}/team/app:v1`, { imagePullPolicy: 'Always' }));
  await waitConverged(db.pool, 'always');
  const asked = registry.accessLog().slice(before);
  expect(
    asked.filter((line) => line.method === 'HEAD' && line.path === '/v2/team/app/manifests/v1' && line.status === 200),
  ).toHaveLength(1);
  expect(asked.filter((line) => line.method === 'GET' && /manifests|blobs/.test(line.path))).toEqual([]);
  expect(await controller.metric('sessionctl_image_pulls_total', { result: 'success' })).toBe(1);
});

test('imagePullPolicy: Never with a missing image reports ImageNotPresent', async () => {
  await upsert(db.pool, 'never', spec(`${registry.host}/team/other:v1`, { imagePullPolicy: 'Never' }));
  const view = await waitConverged(db.pool, 'never', 'False');
  expect(condition(view, 'ImageReady')).toMatchObject({ status: 'False', reason: 'ImageNotPresent' });
  expect(condition(view, 'ImageReady')!.message).toContain('imagePullPolicy is Never');
  expect(view.status.phase).toBe('Pending');
  expect(manifestGets('team/other')).toEqual([]);
});

test('wrong credentials: a clear ImagePullFailed, then attempts spaced by the pull back-off', async () => {
  // The table wins over config.json: a wrong password there breaks pulls from this registry.
  const login = await sessionctl(
    ['registry', 'login', registry.host, '-u', username, '--password-stdin'],
    { DATABASE_URL: db.url },
    'wrong-password-123\n',
  );
  expect(login).toMatchObject({ code: 0, stdout: `registry/${registry.host} created (user ${username})\n` });
  const names = ['wrong-a', 'wrong-b', 'wrong-c'];
  const started = Date.now();
  for (const name of names) await upsert(db.pool, name, spec(`${registry.host}/team/other:v1`));
  const failed = await waitFor(
    async () => {
      const imageReady = condition(await row(db.pool, 'wrong-a'), 'ImageReady');
      return imageReady?.reason === 'ImagePullFailed' ? imageReady : undefined;
    },
    { timeoutMs: 30_000, what: 'ImagePullFailed' },
  );
  expect(failed.message).toMatch(
    new RegExp(
      `pull image ${registry.host.replace(/[.]/g, '\\.')}/team/other:v1 failed \\(attempt 1\\): .*(unauthorized|authentication required|no basic auth credentials)`,
    ),
  );
  const view = await row(db.pool, 'wrong-a');
  expect(condition(view, 'Ready')).toMatchObject({ status: 'False', reason: 'ImagePullFailed' });

  // The pull back-off is 5 s doubling (PULL_BACKOFF), shared by the three sessions: wait for the
  // third failed attempt, then check in the registry's log that each came at least its back-off
  // after the one before (a hot loop would not), with a few refused requests per attempt at most.
  await waitFor(async () => (await controller.metric('sessionctl_image_pulls_total', { result: 'failure' })) >= 3, {
    timeoutMs: 90_000,
    what: 'three failed pull attempts',
  });
  const refused = registry.accessLog().filter((line) => line.at >= started && line.status === 401);
  // The requests of one attempt come within a second of each other; attempts come seconds apart.
  const attemptStarts = refused
    .map((line) => line.at)
    .filter((at, index, all) => index === 0 || at - all[index - 1] > 2_000);
  expect(attemptStarts.length).toBeGreaterThanOrEqual(3);
  const gaps = attemptStarts.slice(1).map((at, index) => at - attemptStarts[index]);
  // 1 s of slack: `at` is when the registry's log line reached the test, not when the request came.
  const early = gaps.filter((gap, index) => gap < PULL_BACKOFF.baseMs * 2 ** index - 1_000);
  expect({ gaps, early }).toEqual({ gaps, early: [] });
  expect(refused.length).toBeLessThanOrEqual(attemptStarts.length * 4);
  expect(condition(await row(db.pool, 'wrong-b'), 'ImageReady')).toMatchObject({
    status: 'False',
    reason: 'ImagePullBackOff',
  });
  expect(controller.child.exitCode).toBeNull();
});

test('fixing the credentials with `sessionctl registry login` lets the next attempt pull', async () => {
  const login = await sessionctl(
    ['registry', 'login', registry.host, '-u', username, '--password-stdin'],
    { DATABASE_URL: db.url },
    `${password}\n`,
  );
  expect(login).toMatchObject({ code: 0, stdout: `registry/${registry.host} updated (user ${username})\n` });
  const list = await sessionctl(['registry', 'list'], { DATABASE_URL: db.url });
  expect(list.stdout).toContain(registry.host);
  expect(list.stdout).not.toContain(password);
  // No hurry on our side: the next attempt comes when both the pull back-off (doubling from 5 s)
  // and the work queue's back-off (doubling from 0.5 s, with jitter) have passed.
  await waitAllReady(db.pool, ['wrong-a', 'wrong-b', 'wrong-c'], 200_000);
});

test('no password, auth header or credentials encoding in logs, status or events', async () => {
  const text = await readableRecords(db.pool, controller.output());
  expect(text).toContain('ImagePullFailed');
  expect(leakedSecrets(text, [password, 'wrong-password-123', `${username}:${password}`])).toEqual([]);
  // Nor the header the daemon was sent.
  expect(text).not.toContain(encodeRegistryAuth({ username, password }, registry.host));
  expect(text).not.toContain(encodeRegistryAuth({ username, password: 'wrong-password-123' }, registry.host));
  expect(text).not.toMatch(/X-Registry-Auth/i);
});

test('`sessionctl registry`: the password only from stdin, hosts checked, list without passwords, logout', async () => {
  const env = { DATABASE_URL: db.url };
  const onCommandLine = await sessionctl(['registry', 'login', registry.host, '-u', username], env);
  expect(onCommandLine).toMatchObject({ code: 2, stderr: expect.stringContaining('--password-stdin') });
  const notAHost = await sessionctl(
    ['registry', 'login', 'https://not a host/', '-u', username, '--password-stdin'],
    env,
    'x',
  );
  expect(notAHost).toMatchObject({ code: 2, stderr: expect.stringContaining('is not a registry host') });
  const list = await sessionctl(['registry', 'list'], env);
  expect(list.stdout).toMatch(
    new RegExp(`^REGISTRY +USERNAME +UPDATED\\n${registry.host.replace(/[.]/g, '\\.')} +${username} +\\d{4}-`),
  );
  expect(list.stdout).not.toContain(password);
  expect(await sessionctl(['registry', 'logout', `http://${registry.host}/`], env)).toMatchObject({
    code: 0,
    stdout: `registry/${registry.host} removed\n`,
  });
  expect(await sessionctl(['registry', 'logout', registry.host], env)).toMatchObject({
    code: 1,
    stderr: expect.stringContaining(`no credentials stored for registry ${registry.host}`),
  });
});
