/**
 * A registry with token auth (Debian's docker-registry) and the suite's own token service: digest
 * checks with a cached bearer token, a moved tag rolled out in batches, a revoked token replaced
 * after the 401, a 429 honoured, and no token or password in anything readable.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sessionctl } from '../helpers/cli';
import { startController, type ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { containersOf, managedContainers, removeManagedContainers } from '../helpers/docker';
import { BASE_IMAGE, buildVariant, localImageId, pushImage, tagImage, untag } from '../helpers/images';
import { startRegistry, type TestRegistry } from '../helpers/registry';
import { leakedSecrets, readableRecords } from '../helpers/secrets';
import { startTokenServer, type TokenServer } from '../helpers/token-server';
import { row, waitAllReady } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { listEvents } from '../../src/store/events';
import { USER_AGENT } from '../../src/registry/client';

const username = 'ci-pull';
const password = `pw-${randomBytes(12).toString('hex')}`;
let tokens: TokenServer;
let registry: TestRegistry;
let db: TestDatabase;
let controller: ControllerProcess;
let emptyDockerConfig: string;
const images: string[] = [];
let pollImage: string;
let stillImage: string;
const pollers = Array.from({ length: 6 }, (_, index) => `poll-${index}`);
const others = ['still-0', 'still-1', 'base-0', 'base-1'];
const POLL_SECONDS = 5;

const spec = (image: string, extra: Record<string, unknown> = {}) => ({
  image,
  command: ['sleep', '3600'],
  resources: { memory: '16Mi', cpus: '0.1' },
  ...extra,
});
const ours = <T extends { agent: string }>(lines: T[]) => lines.filter((line) => line.agent.startsWith(USER_AGENT));
const pollScope = 'repository:team/poll:pull';

beforeAll(async () => {
  await removeManagedContainers();
  tokens = await startTokenServer({ users: { [username]: password }, expiresInSeconds: 60 });
  registry = await startRegistry({
    token: {
      realm: tokens.realm,
      service: tokens.service,
      issuer: tokens.issuer,
      rootCertBundle: tokens.rootCertBundle,
    },
  });
  pollImage = `${registry.host}/team/poll:v1`;
  stillImage = `${registry.host}/team/still:v1`;
  for (const image of [pollImage, stillImage]) {
    await buildVariant(image, `${image}-1`);
    await pushImage(image, { username, password }, registry.host);
    images.push(image);
  }
  emptyDockerConfig = mkdtempSync(path.join(os.tmpdir(), 'sctl-dockercfg-'));
  db = await createTestDatabase('registry_token');
  const login = await sessionctl(
    ['registry', 'login', registry.host, '-u', username, '--password-stdin'],
    { DATABASE_URL: db.url },
    password,
  );
  expect(login.code).toBe(0);
  controller = await startController({
    databaseUrl: db.url,
    env: { DOCKER_CONFIG: emptyDockerConfig, SESSIONCTL_IMAGE_UPDATE_BATCH_SIZE: '2' },
  });
  const poll = { imageUpdatePolicy: 'Poll', imagePollIntervalSeconds: POLL_SECONDS };
  for (const name of pollers)
    await db.pool.query('INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2)', [
      name,
      JSON.stringify(spec(pollImage, poll)),
    ]);
  for (const name of ['still-0', 'still-1'])
    await db.pool.query('INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2)', [
      name,
      JSON.stringify(spec(stillImage, poll)),
    ]);
  for (const name of ['base-0', 'base-1'])
    await db.pool.query('INSERT INTO sessionctl.sessions (name, spec) VALUES ($1, $2)', [
      name,
      JSON.stringify(spec(BASE_IMAGE)),
    ]);
  await waitAllReady(db.pool, [...pollers, ...others]);
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  for (const image of images) await untag(image);
  await db?.drop();
  await registry?.stop();
  await tokens?.stop();
  rmSync(emptyDockerConfig, { recursive: true, force: true });
});

test('polling checks the tag with one HEAD per interval for all its sessions, with a cached token', async () => {
  const since = Date.now();
  const heads = () =>
    ours(registry.accessLog()).filter(
      (line) => line.at >= since && line.method === 'HEAD' && line.path === '/v2/team/poll/manifests/v1',
    );
  // Wait for three answered checks, then look at how far apart they came.
  await waitFor(() => heads().filter((line) => line.status === 200).length >= 3, {
    timeoutMs: 6 * POLL_SECONDS * 1000,
    what: 'three digest checks of team/poll:v1',
  });
  // Six sessions follow the tag, yet one check per interval; only the very first meets the 401 challenge.
  const answered = heads().filter((line) => line.status === 200);
  expect(heads().filter((line) => line.status === 401).length).toBeLessThanOrEqual(1);
  // 1.5 s of slack: `at` is when the registry's log line reached the test, and the interval is jittered.
  const gaps = answered.slice(1).map((line, index) => line.at - answered[index].at);
  expect({ gaps, early: gaps.filter((gap) => gap < POLL_SECONDS * 1000 - 1_500) }).toEqual({ gaps, early: [] });
  // One token per scope, reused by every later check.
  expect(ours(tokens.requests).filter((request) => request.scope === pollScope && request.status === 200)).toHaveLength(
    1,
  );
  expect(await controller.metric('sessionctl_registry_token_cache_hits_total')).toBeGreaterThanOrEqual(
    heads.length - 1,
  );
  expect(await controller.metric('sessionctl_image_pulls_total')).toBe(0);
});

test('a new image pushed under the same tag recreates exactly the sessions on it, in batches of 2', async () => {
  const before = new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]));
  const oldId = (await localImageId(pollImage))!;
  await buildVariant(pollImage, `${pollImage}-2`);
  const newDigest = await pushImage(pollImage, { username, password }, registry.host);
  // The daemon that built it still has the old image under the tag, like any host before a pull.
  await tagImage(oldId, pollImage);

  await waitFor(
    async () => {
      for (const name of pollers) {
        const [container] = await containersOf(name);
        if (container?.Labels['dev.sessionctl.image-digest'] !== newDigest || container.State !== 'running')
          return false;
      }
      return true;
    },
    { timeoutMs: 90_000, what: 'every poll session to run the new digest' },
  );
  await waitAllReady(db.pool, [...pollers, ...others]);
  expect(
    registry
      .requests({ method: 'GET', path: /^\/v2\/team\/poll\/manifests\// })
      .filter((line) => line.agent.startsWith('docker/')),
  ).toHaveLength(1);
  const after = new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]));
  for (const name of pollers) expect(after.get(name)).not.toBe(before.get(name));
  for (const name of others) expect(after.get(name)).toBe(before.get(name));

  // Each recreate names its batch: three batches of two, one after the other.
  const recreates: Array<{ batch: number; at: number }> = [];
  for (const name of pollers) {
    const event = (await listEvents(db.pool, name)).find(
      (candidate) => candidate.reason === 'Recreated' && candidate.message.includes('update batch'),
    );
    expect(event).toBeDefined();
    recreates.push({ batch: Number(/update batch (\d+)/.exec(event!.message)![1]), at: event!.lastSeen.getTime() });
  }
  const batches = new Map<number, number[]>();
  for (const recreate of recreates) batches.set(recreate.batch, [...(batches.get(recreate.batch) ?? []), recreate.at]);
  expect([...batches.values()].map((times) => times.length)).toEqual([2, 2, 2]);
  // Those that waited for a later batch said so.
  const pending = await Promise.all(
    pollers.map(async (name) =>
      (await listEvents(db.pool, name)).some((event) => event.reason === 'ImageUpdatePending'),
    ),
  );
  expect(pending.filter(Boolean).length).toBeGreaterThanOrEqual(2);
  const ordered = [...batches.keys()].sort((a, b) => a - b);
  for (let index = 1; index < ordered.length; index++) {
    expect(Math.min(...batches.get(ordered[index])!)).toBeGreaterThanOrEqual(
      Math.max(...batches.get(ordered[index - 1])!),
    );
  }
});

test('a token revoked early is replaced after the 401, and the next check succeeds', async () => {
  // A new signing key, and the registry restarted to trust only it: the cached token is now refused.
  tokens.rotateKey();
  await registry.restart();
  const since = Date.now();
  const tokenRequestsBefore = ours(tokens.requests).filter((request) => request.scope === pollScope).length;
  const healed = await waitFor(
    () => {
      const heads = ours(registry.accessLog()).filter(
        (line) => line.at >= since && line.path === '/v2/team/poll/manifests/v1',
      );
      const refused = heads.findIndex((line) => line.status === 401);
      return refused >= 0 && heads.slice(refused + 1).some((line) => line.status === 200) ? heads : undefined;
    },
    { timeoutMs: 30_000, what: 'a refused check followed by a successful one' },
  );
  expect(healed[0].status).toBe(401);
  expect(ours(tokens.requests).filter((request) => request.scope === pollScope).length).toBe(tokenRequestsBefore + 1);
  expect(await controller.metric('sessionctl_registry_requests_total', { code: '401' })).toBeGreaterThanOrEqual(1);
  await waitAllReady(db.pool, [...pollers, ...others]);
});

test('a 429 from the token service is honoured: nothing is asked of that registry before Retry-After', async () => {
  tokens.rateLimitNext(1, 8);
  tokens.rotateKey();
  await registry.restart();
  const limited = await waitFor(() => ours(tokens.requests).find((request) => request.status === 429), {
    timeoutMs: 30_000,
    what: 'a 429 from the token service',
  });
  const next = await waitFor(
    () => {
      const after = [
        ...ours(tokens.requests).map((request) => request.at),
        ...ours(registry.accessLog()).map((line) => line.at),
      ].filter((at) => at > limited.at);
      return after.length > 0 ? Math.min(...after) : undefined;
    },
    { timeoutMs: 30_000, what: 'the first request after the 429' },
  );
  expect(next - limited.at).toBeGreaterThanOrEqual(8_000 - 50);
  await waitFor(() => ours(tokens.requests).some((request) => request.at > limited.at && request.status === 200), {
    timeoutMs: 30_000,
    what: 'a token after the wait',
  });
  expect(await controller.metric('sessionctl_registry_requests_total', { code: '429' })).toBe(1);
  expect((await row(db.pool, 'poll-0'))!.status.phase).toBe('Running');
});

test('our own token TTL (shorter than the token expiry) makes the controller fetch a fresh token; a restart recreates nothing', async () => {
  const before = new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]));
  const earlierOutput = controller.output();
  await controller.stop();
  controller = await startController({
    databaseUrl: db.url,
    env: { DOCKER_CONFIG: emptyDockerConfig, SESSIONCTL_REGISTRY_TOKEN_TTL_SECONDS: '6' },
  });
  const since = Date.now();
  // The token service says 60 s; our TTL of 6 s wins, so checks 5 s apart fetch a token every other
  // time or so. Waited for rather than slept: a loaded CI machine may take longer than 20 s.
  const fetched = await waitFor(
    () => {
      const sofar = ours(tokens.requests).filter(
        (request) => request.at >= since && request.scope === pollScope && request.status === 200,
      );
      return sofar.length >= 2 ? sofar : undefined;
    },
    { timeoutMs: 90_000, what: 'two token fetches for the polled image' },
  );
  for (let index = 1; index < fetched.length; index++)
    expect(fetched[index].at - fetched[index - 1].at).toBeGreaterThanOrEqual(6_000 - 1_000);
  expect(new Map((await managedContainers()).map((info) => [info.Labels['dev.sessionctl.session'], info.Id]))).toEqual(
    before,
  );
  previousOutput = earlierOutput;
});

let previousOutput = '';

test('no password or bearer token in logs, status or events', async () => {
  const text = await readableRecords(db.pool, `${previousOutput}\n${controller.output()}`);
  expect(tokens.issued.length).toBeGreaterThan(0);
  expect(leakedSecrets(text, [password, `${username}:${password}`, ...tokens.issued])).toEqual([]);
  // The signature alone would be enough to leak a token.
  for (const token of tokens.issued) expect(text).not.toContain(token.split('.')[2]);
});
