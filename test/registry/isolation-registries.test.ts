/**
 * Registries a writer names in spec.image, tried as an attacker would, on the real daemon and
 * database: Debian's docker-registry is the honest registry whose credentials are stored; scripted
 * registries on 127.0.0.1 play the attacker's (a challenge asking for credentials, a redirect of the
 * manifest HEAD, crafted error text). Credentials go only to the exact host they were stored for, no
 * redirect is followed, the registry's text reaches status escaped and cut, and the `registry`
 * metric label takes no value a writer chose.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sessionctl } from '../helpers/cli';
import { startController, type ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers, removeManagedNetworks } from '../helpers/docker';
import { BASE_IMAGE, buildVariant, localImageId, pushImage, tagImage, untag } from '../helpers/images';
import { startRegistry, type TestRegistry } from '../helpers/registry';
import { startScriptedRegistry, type ScriptedRegistry } from '../helpers/scripted-registry';
import { condition, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { USER_AGENT } from '../../src/registry/client';

const username = 'ci-pull';
const password = `pw-${randomBytes(12).toString('hex')}`;
const redirectPassword = `rd-${randomBytes(12).toString('hex')}`;
const filePassword = `file-${randomBytes(12).toString('hex')}`;
const EVIL_TEXT = `\u001b]0;owned\u0007\u001b[2J${'A'.repeat(3000)}`;

let honest: TestRegistry;
let asking: ScriptedRegistry;
let redirecting: ScriptedRegistry;
let collector: ScriptedRegistry;
let talking: ScriptedRegistry;
let db: TestDatabase;
let controller: ControllerProcess;
let dockerConfig: string;
const tagged: string[] = [];

const spec = (image: string, imagePullPolicy: 'Always' | 'IfNotPresent') => ({
  image,
  imagePullPolicy,
  command: ['sleep', '3600'],
  resources: { memory: '16Mi', cpus: '0.1' },
});

/** Asks for Basic credentials on every request: whatever it is sent, it records. */
function askForCredentials(_request: unknown, response: import('node:http').ServerResponse): void {
  response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="give me your password"' }).end();
}

beforeAll(async () => {
  await removeManagedContainers();
  honest = await startRegistry({ htpasswd: { username, password } });
  const honestImage = `${honest.host}/team/app:v1`;
  await buildVariant(honestImage, 'isolation-registries');
  await pushImage(honestImage, { username, password }, honest.host);
  await untag(honestImage);
  tagged.push(honestImage);
  collector = await startScriptedRegistry((_request, response) => response.writeHead(200).end());
  asking = await startScriptedRegistry(askForCredentials);
  // Trusted enough to have credentials stored, but its manifest answers point elsewhere.
  redirecting = await startScriptedRegistry((request, response) => {
    if (!request.headers.authorization) return askForCredentials(request, response);
    response.writeHead(307, { Location: `http://${collector.host}${request.url}` }).end();
  });
  // Talks: its 404 carries terminal escapes and a long text, which the daemon relays in its pull error.
  talking = await startScriptedRegistry((request, response) => {
    if (request.url === '/v2/' || request.url === '/v2')
      return response.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
    const body = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: EVIL_TEXT, detail: null }] });
    response.writeHead(404, { 'Content-Type': 'application/json' }).end(request.method === 'HEAD' ? undefined : body);
  });
  // Present on the host, so that a failed digest check falls back to it and no pull is attempted.
  const baseId = (await localImageId(BASE_IMAGE))!;
  for (const registry of [asking, redirecting]) {
    await tagImage(baseId, `${registry.host}/team/app:v1`);
    tagged.push(`${registry.host}/team/app:v1`);
  }
  // A file whose keys are near misses of the scripted registries' host:port: none may match.
  dockerConfig = mkdtempSync(path.join(os.tmpdir(), 'sctl-dockercfg-'));
  const auth = Buffer.from(`file-user:${filePassword}`).toString('base64');
  const nearMisses = ['127.0.0.1', `http://127.0.0.1/`, `127.0.0.1:${asking.host.split(':')[1]}0`, 'localhost'];
  writeFileSync(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: Object.fromEntries(nearMisses.map((key) => [key, { auth }])) }),
    { mode: 0o600 },
  );
  db = await createTestDatabase('isolation_registries');
  for (const [host, user, secret] of [
    [honest.host, username, password],
    [redirecting.host, 'redirect-user', redirectPassword],
  ]) {
    const login = await sessionctl(
      ['registry', 'login', host, '-u', user, '--password-stdin'],
      { DATABASE_URL: db.url },
      secret,
    );
    expect(login.code).toBe(0);
  }
  controller = await startController({ databaseUrl: db.url, env: { DOCKER_CONFIG: dockerConfig } });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedNetworks();
  for (const image of tagged) await untag(image);
  await db?.drop();
  for (const server of [honest, asking, redirecting, collector, talking]) await server?.stop();
  rmSync(dockerConfig, { recursive: true, force: true });
});

test('credentials go only to the exact registry they were stored for, and never along a redirect', async () => {
  await upsert(db.pool, 'reg-honest', spec(`${honest.host}/team/app:v1`, 'IfNotPresent'));
  await upsert(db.pool, 'reg-asking', spec(`${asking.host}/team/app:v1`, 'Always'));
  await upsert(db.pool, 'reg-redirect', spec(`${redirecting.host}/team/app:v1`, 'Always'));
  // Control: the honest registry's stored credentials work (the daemon pulled with them).
  for (const name of ['reg-honest', 'reg-asking', 'reg-redirect']) await waitConverged(db.pool, name, 'True', 90_000);
  expect(honest.requests({ method: 'GET', path: /^\/v2\/team\/app\/manifests\// }).some((l) => l.status === 200)).toBe(
    true,
  );
  // The asking registry was asked (the digest check of Always) and answered 401, and got nothing.
  expect(asking.requests.filter((request) => request.agent.startsWith(USER_AGENT)).length).toBeGreaterThanOrEqual(1);
  expect(asking.requests.filter((request) => request.authorization !== undefined)).toEqual([]);
  // The redirecting registry got its own credentials, and nothing went where it pointed.
  const sentToRedirecting = redirecting.requests.filter((request) => request.authorization !== undefined);
  expect(sentToRedirecting.length).toBeGreaterThanOrEqual(1);
  const expected = `Basic ${Buffer.from(`redirect-user:${redirectPassword}`).toString('base64')}`;
  expect(sentToRedirecting.every((request) => request.authorization === expected)).toBe(true);
  expect(collector.requests).toEqual([]);
  await waitFor(
    () =>
      /answered the manifest of team\/app with a redirect \(HTTP 307\), which is not followed/.test(
        controller.output(),
      ),
    {
      what: 'the controller to log the refused redirect',
    },
  );
  // No password (table or file) in anything the controller wrote.
  for (const secret of [password, redirectPassword, filePassword]) expect(controller.output()).not.toContain(secret);
}, 150_000);

test("an attacker registry's error text reaches status escaped, on one line, cut, with what to do", async () => {
  await upsert(db.pool, 'reg-talking', spec(`${talking.host}/team/evil:v1`, 'IfNotPresent'));
  const view = await waitFor(
    async () => {
      const current = await row(db.pool, 'reg-talking');
      return condition(current, 'ImageReady')?.reason === 'ImagePullFailed' ? current : undefined;
    },
    { timeoutMs: 60_000, what: 'ImagePullFailed for the talking registry' },
  );
  const message = condition(view, 'ImageReady')!.message!;
  expect(message).not.toMatch(/[\u0000-\u001f\u007f]/);
  expect(message).toContain('\\x1b]0;owned\\x07\\x1b[2J');
  expect(message).toMatch(/more characters cut\); next attempt in \d+s\. Check that spec\.image names an image/);
  expect(message.length).toBeLessThan(800);
}, 90_000);

test('the registry metric label carries no registry a writer chose', async () => {
  const text = await (await fetch(`${controller.metricsUrl}/metrics`)).text();
  const labels = [...text.matchAll(/^sessionctl_registry_requests_total\{[^}]*registry="([^"]*)"/gm)].map((m) => m[1]);
  expect(labels.length).toBeGreaterThan(0);
  expect(new Set(labels)).toEqual(new Set(['other']));
});
