/**
 * The gateway serving HTTPS (SESSIONCTL_GATEWAY_TLS_CERT/KEY) with the real controller, dockerd and
 * PostgreSQL: a busybox session reached over https with its token, the ?token= exchange giving a
 * cookie marked Secure that then works, X-Forwarded-Proto https, routing by host name, the header
 * size limit, and plain HTTP refused on the port.
 * The certificate is made by openssl for 127.0.0.1 in a temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startController, type ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers, removeManagedVolumes } from '../helpers/docker';
import { gatewaySpec, get, startGateway, type GatewayProcess } from '../helpers/gateway';
import { row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { readToken } from '../../src/store/tokens';

let db: TestDatabase;
let controller: ControllerProcess;
let gateway: GatewayProcess;
let certs: string;
let ca: string;
let token: string;

/** A self-signed certificate for 127.0.0.1 and *.sessions.test (host routing), valid for a day. */
function makeCertificate(dir: string): { certPath: string; keyPath: string } {
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:*.sessions.test'],
    ],
    { stdio: 'pipe' },
  );
  return { certPath, keyPath };
}

beforeAll(async () => {
  await removeManagedContainers();
  // Token volumes outlive their sessions and belong to the database that made them: a rerun's would clash.
  await removeManagedVolumes();
  db = await createTestDatabase('gateway_tls');
  certs = mkdtempSync(path.join(os.tmpdir(), 'sctl-gateway-tls-'));
  const tls = makeCertificate(certs);
  ca = readFileSync(tls.certPath, 'utf8');
  controller = await startController({ databaseUrl: db.url });
  gateway = await startGateway({ databaseUrl: db.url, tls, env: { SESSIONCTL_GATEWAY_DOMAIN: 'sessions.test' } });
  await upsert(db.pool, 'secure', gatewaySpec());
  ({ token } = await waitFor(() => readToken(db.pool, 'secure'), { what: 'the token of secure' }));
  await waitConverged(db.pool, 'secure').catch(async (error: Error) => {
    const view = await row(db.pool, 'secure');
    const log = controller.output().split('\n').slice(-20).join('\n');
    throw new Error(`${error.message}\nstatus: ${JSON.stringify(view?.status)}\ncontroller:\n${log}`);
  });
  await waitFor(
    async () =>
      (await get(`${gateway.url}/s/secure/hello.txt`, { authorization: `Bearer ${token}` }, 'GET', ca)).status === 200,
    { timeoutMs: 10_000, what: 'secure to be routable over https' },
  );
});

afterAll(async () => {
  await gateway?.stop();
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedVolumes();
  await db?.drop();
  if (certs) rmSync(certs, { recursive: true, force: true });
});

test('a token reaches the session over https; the container is told the request came over https', async () => {
  expect(gateway.url).toMatch(/^https:/);
  const reply = await get(`${gateway.url}/s/secure/cgi-bin/echo`, { authorization: `Bearer ${token}` }, 'GET', ca);
  expect(reply.status).toBe(200);
  expect(reply.body).toContain('token=ok');
  expect(reply.body).toContain('xfproto=https\n');
  expect((await get(`${gateway.url}/s/secure/hello.txt`, {}, 'GET', ca)).status).toBe(401);
});

test('?token= over https sets a Secure, HttpOnly cookie scoped to the session, which then works', async () => {
  const exchange = await get(`${gateway.url}/s/secure/cgi-bin/echo?token=${token}`, {}, 'GET', ca);
  expect(exchange.status).toBe(302);
  expect(exchange.headers.location).toBe('/s/secure/cgi-bin/echo');
  const cookie = exchange.headers['set-cookie']![0];
  expect(cookie).toMatch(/^sessionctl-token=[^;]+; Path=\/s\/secure; HttpOnly; SameSite=Lax; Secure$/);
  const followed = await get(`${gateway.url}${exchange.headers.location}`, { cookie: cookie.split(';')[0] }, 'GET', ca);
  expect(followed.status).toBe(200);
  expect(followed.body).toContain('token=ok');
});

test('by host name (<session>.<domain>) the session is reached at its own root', async () => {
  const headers = { host: `secure.sessions.test:${gateway.port}`, authorization: `Bearer ${token}` };
  const reply = await get(`${gateway.url}/cgi-bin/echo`, headers, 'GET', ca);
  expect(reply.status).toBe(200);
  expect(reply.body).toContain('uri=/cgi-bin/echo\n');
  const unknown = await get(`${gateway.url}/`, { ...headers, host: 'nobody.sessions.test' }, 'GET', ca);
  expect(unknown.status).toBe(404);
});

test('a request head larger than the limit is refused with 431', async () => {
  const reply = await get(
    `${gateway.url}/s/secure/hello.txt`,
    { authorization: `Bearer ${token}`, 'x-padding': 'x'.repeat(20_000) },
    'GET',
    ca,
  );
  expect(reply.status).toBe(431);
});

test('plain HTTP on the TLS port gets no session', async () => {
  const plain = gateway.url.replace(/^https:/, 'http:');
  const outcome = await new Promise<string>((resolve) => {
    const request = http.get(
      `${plain}/s/secure/hello.txt`,
      { headers: { authorization: `Bearer ${token}` } },
      (response) => {
        response.resume();
        resolve(`status ${response.statusCode}`);
      },
    );
    request.on('error', () => resolve('refused'));
  });
  expect(outcome).not.toBe('status 200');
});

test('the token does not appear in the gateway log', () => {
  expect(gateway.output()).not.toContain(token);
});
