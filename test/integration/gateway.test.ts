/**
 * The gateway (`sessionctl gateway`) with the real controller, dockerd and PostgreSQL: busybox
 * sessions reached through it by token, cookie exchange, rotation, named ports, prefix keep/strip,
 * WebSocket echo, forwarded and hop-by-hop headers, activity reaching the row, wake from idle stop,
 * 404/401/403/503, slowloris, and no token in the gateway's log.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import WebSocket from 'ws';
import { startController, type ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers, removeManagedVolumes } from '../helpers/docker';
import { gatewaySpec, get, startGateway, type GatewayProcess } from '../helpers/gateway';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { listEvents } from '../../src/store/events';
import { waitFor } from '../helpers/wait';
import { readToken, requestTokenRotation } from '../../src/store/tokens';

let db: TestDatabase;
let controller: ControllerProcess;
let gateway: GatewayProcess;
const tokens: string[] = [];

/** The controller mints the token before it creates the container: wait for it. */
async function tokenOf(name: string): Promise<string> {
  const { token } = await waitFor(() => readToken(db.pool, name), { what: `the token of ${name}` });
  tokens.push(token);
  return token;
}

/** Ready in the database and routable through the gateway (the table follows notifications). */
async function reachable(name: string, token: string): Promise<void> {
  await waitConverged(db.pool, name);
  await waitFor(
    async () => (await get(`${gateway.url}/s/${name}/hello.txt`, { authorization: `Bearer ${token}` })).status === 200,
    { timeoutMs: 10_000, what: `${name} to be routable` },
  );
}

beforeAll(async () => {
  await removeManagedContainers();
  // Token volumes outlive their sessions and belong to the database that made them: a rerun's would clash.
  await removeManagedVolumes();
  db = await createTestDatabase('gateway');
  controller = await startController({ databaseUrl: db.url });
  gateway = await startGateway({
    databaseUrl: db.url,
    env: {
      SESSIONCTL_GATEWAY_HEADERS_TIMEOUT_MS: '1000',
      SESSIONCTL_GATEWAY_ACTIVITY_FLUSH_MS: '200',
      SESSIONCTL_GATEWAY_ACTIVITY_INTERVAL_SECONDS: '0.5',
      SESSIONCTL_GATEWAY_WAKE_TIMEOUT_SECONDS: '30',
    },
  });
  await Promise.all([
    upsert(db.pool, 'web', gatewaySpec()),
    upsert(db.pool, 'keeper', gatewaySpec({ gateway: { prefix: 'Keep', tokenHeader: 'Authorization' } })),
    upsert(db.pool, 'open', httpSpec()),
    upsert(db.pool, 'parked', gatewaySpec({ state: 'Stopped' })),
  ]);
});

afterAll(async () => {
  await gateway?.stop();
  await controller?.stop();
  await removeManagedContainers();
  await removeManagedVolumes();
  await db?.drop();
});

test('a token reaches the session (first port, named port, prefix stripped); no token, a wrong one, or none minted is refused', async () => {
  const token = await tokenOf('web');
  await reachable('web', token);
  const echoed = await get(`${gateway.url}/s/web/cgi-bin/echo?x=1`, { authorization: `Bearer ${token}` });
  expect(echoed.status).toBe(200);
  expect(echoed.body).toContain('token=ok');
  expect(echoed.body).toContain('uri=/cgi-bin/echo?x=1');
  const named = await get(`${gateway.url}/s/web/http/hello.txt`, { authorization: `Bearer ${token}` });
  expect([named.status, named.body.trim()]).toEqual([200, 'hello']);

  expect((await get(`${gateway.url}/s/web/hello.txt`)).status).toBe(401);
  expect(
    (await get(`${gateway.url}/s/web/hello.txt`, { authorization: 'Bearer wrong' })).headers['www-authenticate'],
  ).toContain('Bearer');
  expect((await get(`${gateway.url}/s/nobody/hello.txt`, { authorization: `Bearer ${token}` })).status).toBe(404);
  expect((await get(`${gateway.url}/elsewhere`)).status).toBe(404);
  await waitConverged(db.pool, 'open');
  expect((await get(`${gateway.url}/s/open/`, { authorization: `Bearer ${token}` })).status).toBe(403);
});

test('prefix Keep and the Authorization header option', async () => {
  const token = await tokenOf('keeper');
  await waitConverged(db.pool, 'keeper');
  const kept = await waitFor(
    async () => {
      const reply = await get(`${gateway.url}/s/keeper/hello.txt`, { authorization: `Bearer ${token}` });
      return reply.status === 200 ? reply : undefined;
    },
    { timeoutMs: 10_000, what: 'keeper to be routable' },
  );
  expect(kept.body.trim()).toBe('kept');
});

test('a session that is not Ready for another reason answers 503 with Retry-After and the reason', async () => {
  const token = await tokenOf('parked');
  await waitConverged(db.pool, 'parked', 'False');
  const reply = await waitFor(
    async () => {
      const answer = await get(`${gateway.url}/s/parked/`, { authorization: `Bearer ${token}` });
      return answer.status === 503 ? answer : undefined;
    },
    { timeoutMs: 10_000, what: 'parked to answer 503' },
  );
  expect(reply.headers['retry-after']).toBeDefined();
  expect(reply.headers['x-sessionctl-reason']).toBe(condition(await row(db.pool, 'parked'), 'Ready')!.reason);
});

test('?token= becomes an HttpOnly cookie scoped to the session and a redirect without the token; the cookie works', async () => {
  const token = await tokenOf('web');
  await reachable('web', token);
  const exchange = await get(`${gateway.url}/s/web/cgi-bin/echo?a=1&token=${token}`);
  expect(exchange.status).toBe(302);
  expect(exchange.headers.location).toBe('/s/web/cgi-bin/echo?a=1');
  const cookie = exchange.headers['set-cookie']![0];
  expect(cookie).toMatch(/^sessionctl-token=[^;]+; Path=\/s\/web; HttpOnly; SameSite=Lax$/);
  const followed = await get(`${gateway.url}${exchange.headers.location}`, {
    cookie: `${cookie.split(';')[0]}; theme=dark`,
  });
  expect(followed.status).toBe(200);
  expect(followed.body).toContain('token=ok');
  // The gateway's cookie is stripped; the application's own cookies pass.
  expect(followed.body).toContain('cookie=theme=dark\n');
  expect((await get(`${gateway.url}/s/web/?token=wrong`)).status).toBe(401);
});

test('forwarded headers are set and hop-by-hop ones, spoofed tokens and user credentials are not passed on', async () => {
  const token = await tokenOf('web');
  await reachable('web', token);
  const reply = await get(`${gateway.url}/s/web/cgi-bin/echo`, {
    authorization: `Bearer ${token}`,
    connection: 'keep-alive, X-Hop',
    'x-hop': '1',
    'x-session-token': 'spoofed',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-proto': 'https',
  });
  expect(reply.body).toContain('token=ok');
  expect(reply.body).toContain('xff=127.0.0.1\n');
  expect(reply.body).toContain('xfproto=http\n');
  expect(reply.body).toContain(`xfhost=127.0.0.1:${gateway.port}\n`);
  expect(reply.body).toContain('hop=\n');
  expect(reply.body).toContain('authorization=\n');
});

test('a WebSocket echo through the gateway on the named port, counted as open while it lasts', async () => {
  const token = await tokenOf('web');
  await reachable('web', token);
  const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/s/web/ws/echo`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  expect(await gateway.metric('sessionctl_gateway_websockets_open')).toBe(1);
  const echoes: string[] = [];
  for (const text of ['hello', 'world']) {
    const received = new Promise<string>((resolve) => socket.once('message', (data) => resolve(data.toString())));
    // Unmasked: the container's echo is `cat`, which sends the frame back as it is, as a server must.
    socket.send(text, { mask: false });
    echoes.push(await received);
  }
  expect(echoes).toEqual(['hello', 'world']);
  socket.terminate();
  await waitFor(async () => (await gateway.metric('sessionctl_gateway_websockets_open')) === 0, {
    what: 'the tunnel to close',
  });

  const refused = new WebSocket(`ws://127.0.0.1:${gateway.port}/s/web/ws/echo`);
  const status = await new Promise<number>((resolve) =>
    refused.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0)),
  );
  expect(status).toBe(401);
});

test('a slowloris connection is closed after the header timeout', async () => {
  const socket = net.connect(gateway.port, '127.0.0.1');
  socket.write('GET /s/web/hello.txt HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => socket.writable && socket.write('X-A: b\r\n'), 200);
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  try {
    // The gateway answers 408 and closes; a write racing the close may fail with EPIPE, which is the same outcome.
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.once('error', () => resolve());
    });
  } finally {
    clearInterval(drip);
    socket.destroy();
  }
  if (answer !== '') expect(answer).toMatch(/^HTTP\/1\.1 408/);
});

test('requests record activity on the row and postpone the idle timeout; a session stopped by it is woken by a request', async () => {
  await upsert(db.pool, 'sleepy', gatewaySpec({ idleTimeoutSeconds: 5 }));
  const token = await tokenOf('sleepy');
  await reachable('sleepy', token);
  const before = await db.pool.query<{ at: Date | null }>(
    "SELECT last_activity_at AS at FROM sessionctl.sessions WHERE name = 'sleepy'",
  );
  await get(`${gateway.url}/s/sleepy/hello.txt`, { authorization: `Bearer ${token}` });
  await waitFor(
    async () => {
      const after = await db.pool.query<{ at: Date | null }>(
        "SELECT last_activity_at AS at FROM sessionctl.sessions WHERE name = 'sleepy'",
      );
      return after.rows[0].at !== null && after.rows[0].at.getTime() > (before.rows[0].at?.getTime() ?? 0);
    },
    { timeoutMs: 5_000, what: 'the activity flush to reach the row' },
  );

  // Requests through the gateway for longer than the idle timeout: the batched activity keeps it running.
  const until = Date.now() + 7_000;
  while (Date.now() < until) {
    expect((await get(`${gateway.url}/s/sleepy/hello.txt`, { authorization: `Bearer ${token}` })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  expect(condition(await row(db.pool, 'sleepy'), 'Ready')?.reason).toBe('SessionReady');

  await waitFor(async () => condition(await row(db.pool, 'sleepy'), 'Ready')?.reason === 'IdleTimeout', {
    timeoutMs: 30_000,
    what: 'sleepy to idle out',
  });
  const stoppedId = (await row(db.pool, 'sleepy'))?.status.containerId;
  // parked and sleepy: the gateway's table has seen the stop (no request may touch it before, or it would wake).
  await waitFor(async () => (await gateway.metric('sessionctl_gateway_routes', { ready: 'false' })) === 2, {
    timeoutMs: 5_000,
    what: 'the gateway to see the stop',
  });
  const page = await get(`${gateway.url}/s/sleepy/`, { authorization: `Bearer ${token}`, accept: 'text/html' });
  expect(page.status).toBe(503);
  expect(page.body).toContain('http-equiv="refresh"');
  expect(page.headers['retry-after']).toBeDefined();
  const woken = await get(`${gateway.url}/s/sleepy/hello.txt`, { authorization: `Bearer ${token}` });
  if (woken.status !== 200) {
    const view = await row(db.pool, 'sleepy');
    throw new Error(
      `wake failed: ${woken.status} ${woken.body}\nrow: ${JSON.stringify(view?.status)}\ncontroller:\n${controller
        .output()
        .split('\n')
        .filter((line) => line.includes('sleepy'))
        .slice(-15)
        .join('\n')}\ngateway:\n${gateway
        .output()
        .split('\n')
        .filter((line) => line.includes('sleepy'))
        .slice(-10)
        .join('\n')}`,
    );
  }
  expect([woken.status, woken.body.trim()]).toEqual([200, 'hello']);
  expect(await gateway.metric('sessionctl_gateway_wakes_total', { result: 'ready' })).toBeGreaterThanOrEqual(1);
  // A wake starts the container the idle timeout stopped: not a crash, so no restart is counted or backed off.
  const awake = await row(db.pool, 'sleepy');
  expect(awake?.status).toMatchObject({ containerId: stoppedId, restartCount: 0 });
  expect((await listEvents(db.pool, 'sleepy')).map((event) => event.reason)).not.toContain('Restarted');
});

test('a rotated token stops working at once, cookie included; the new one works', async () => {
  const old = await tokenOf('web');
  await reachable('web', old);
  const before = (await row(db.pool, 'web'))!.status.containerId;
  const cookie = `sessionctl-token=${old}`;
  expect((await get(`${gateway.url}/s/web/hello.txt`, { cookie })).status).toBe(200);
  expect(await requestTokenRotation(db.pool, 'web')).toBe(true);
  await waitFor(async () => (await get(`${gateway.url}/s/web/hello.txt`, { cookie })).status >= 400, {
    timeoutMs: 2_000,
    intervalMs: 20,
    what: 'the old cookie to be refused',
  });
  const fresh = await waitFor(
    async () => {
      const token = await readToken(db.pool, 'web');
      return token && token.token !== old ? token.token : undefined;
    },
    { what: 'a new token' },
  );
  tokens.push(fresh);
  // The controller recreates the container with the new token: wait for that one.
  await waitFor(
    async () => {
      const view = await waitConverged(db.pool, 'web');
      return view.status.containerId !== before;
    },
    { what: 'the container to be recreated with the new token' },
  );
  await reachable('web', fresh);
  expect((await get(`${gateway.url}/s/web/hello.txt`, { cookie })).status).toBe(401);
  expect((await get(`${gateway.url}/s/web/cgi-bin/echo`, { authorization: `Bearer ${fresh}` })).body).toContain(
    'token=ok',
  );
});

test('the metrics pass promtool check metrics, counters are there from the start, and the probes answer', async () => {
  const exposition = await (await fetch(`${gateway.metricsUrl}/metrics`)).text();
  expect(exposition).toContain('sessionctl_gateway_requests_total{code="503"}');
  expect(exposition).toContain('sessionctl_gateway_ready 1');
  const lint = await new Promise<{ code: number; output: string }>((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
    child.stdin!.end(exposition);
  });
  expect(lint).toEqual({ code: 0, output: '' });
  expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
  expect((await fetch(`${gateway.metricsUrl}/healthz`)).status).toBe(200);
});

test('no token appears in the gateway log', () => {
  expect(tokens.length).toBeGreaterThan(0);
  const output = gateway.output();
  for (const token of tokens) expect(output).not.toContain(token);
});
