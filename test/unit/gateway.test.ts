/** The gateway's pure parts: target parsing, port resolution, token checks, header rewriting, routes, config. */
import { createHash } from 'node:crypto';
import { checkToken, cookiesWithoutToken, presentedTokens, queryToken, tokenCookie } from '../../src/gateway/auth';
import { clientResponseHeaders, upstreamRequestHeaders } from '../../src/gateway/headers';
import { toRoute, type Route } from '../../src/gateway/routes';
import { parseTarget, resolvePort } from '../../src/gateway/target';
import { loadGatewayConfig } from '../../src/config/gateway';
import type { RouteRow } from '../../src/store/gateway';

const TOKEN = 'a'.repeat(43);
const ready = {
  type: 'Ready',
  status: 'True',
  reason: 'SessionReady',
  message: '',
  lastTransitionTime: '',
  observedGeneration: 1,
};

function row(extra: Partial<RouteRow> = {}): RouteRow {
  return {
    name: 'alice',
    uid: 'u',
    spec: {
      image: 'sessionctl/base:dev',
      ports: [
        { name: 'http', containerPort: 8080 },
        { name: 'ws', containerPort: 8081 },
      ],
      auth: {},
    },
    status: { conditions: [ready as never], endpoints: { http: '127.0.0.1:4001', ws: '127.0.0.1:4002' } },
    deleting: false,
    tokenSha256: createHash('sha256').update(TOKEN).digest('hex'),
    tokenExpiresAt: new Date(Date.now() + 60_000),
    ...extra,
  };
}

describe('routes', () => {
  test('a Ready row with endpoints routes to its ports in spec order', () => {
    const route = toRoute(row());
    expect(route.ready).toBe(true);
    expect(route.defaultPort?.origin).toBe('127.0.0.1:4001');
    expect([...route.ports.keys()]).toEqual(['http', 'ws']);
    expect(route.stripPrefix).toBe(true);
    expect(route.tokenHeader).toBe('X-Session-Token');
  });

  test('an invalid spec, a deletion, a bad endpoint or an idle stop are never routable', () => {
    expect(toRoute(row({ spec: { image: 'x', bogus: 1 } }))).toMatchObject({ ready: false, reason: 'InvalidSpec' });
    expect(toRoute(row({ deleting: true }))).toMatchObject({ ready: false, reason: 'Terminating' });
    expect(
      toRoute(
        row({ status: { conditions: [ready as never], endpoints: { http: 'evil.example:99999', ws: 'no port' } } }),
      ).ready,
    ).toBe(false);
    const idle = toRoute(
      row({ status: { conditions: [{ ...ready, status: 'False', reason: 'IdleTimeout' } as never] } }),
    );
    expect(idle).toMatchObject({ ready: false, idleStopped: true, reason: 'IdleTimeout' });
  });
});

describe('targets', () => {
  const route = toRoute(row());
  const resolve = (url: string, routeOf: Route = route) =>
    resolvePort(routeOf, parseTarget(url, undefined, undefined)!);

  test('/s/<session>/... goes to the first port with the prefix stripped; a port name picks that port', () => {
    expect(resolve('/s/alice/x?y=1')).toEqual({
      upstream: route.ports.get('http'),
      cookiePath: '/s/alice',
      path: '/x?y=1',
    });
    expect(resolve('/s/alice')).toMatchObject({ path: '/' });
    expect(resolve('/s/alice?a=b')).toMatchObject({ path: '/?a=b' });
    expect(resolve('/s/alice/ws/echo')).toEqual({
      upstream: route.ports.get('ws'),
      cookiePath: '/s/alice',
      path: '/echo',
    });
  });

  test('Keep sends the whole path', () => {
    const kept = toRoute(row({ spec: { ...(row().spec as object), gateway: { prefix: 'Keep' } } }));
    expect(resolve('/s/alice/ws/echo', kept)?.path).toBe('/s/alice/ws/echo');
    expect(resolve('/s/alice/x', kept)?.path).toBe('/s/alice/x');
  });

  test('invalid names and other paths are not targets; host routing needs the configured domain', () => {
    expect(parseTarget('/s/Bad_Name/', undefined, undefined)).toBeUndefined();
    expect(parseTarget('/metrics', undefined, undefined)).toBeUndefined();
    expect(parseTarget('/x', 'alice.sessions.example:8000', 'sessions.example')).toEqual({
      session: 'alice',
      prefix: '',
      rest: '/x',
    });
    expect(parseTarget('/x', 'alice.evil.example', 'sessions.example')).toBeUndefined();
  });
});

describe('tokens', () => {
  const route = toRoute(row());

  test('bearer and cookie are presented; the hash decides; expiry and a missing token refuse', () => {
    expect(presentedTokens({ authorization: `Bearer ${TOKEN}` })).toEqual([TOKEN]);
    expect(presentedTokens({ cookie: `x=1; sessionctl-token=${TOKEN}; y=2` })).toEqual([TOKEN]);
    expect(presentedTokens({ cookie: `notsessionctl-token=${TOKEN}` })).toEqual([]);
    expect(checkToken(route, [TOKEN], Date.now()).result).toBe('ok');
    expect(checkToken(route, ['wrong'], Date.now()).result).toBe('invalid');
    expect(checkToken(route, [], Date.now()).result).toBe('missing');
    expect(checkToken(route, [TOKEN], Date.now() + 120_000).result).toBe('invalid');
    expect(checkToken(toRoute(row({ tokenSha256: null })), [TOKEN], Date.now()).result).toBe('no-token');
  });

  test('?token= is taken out of the URL; the cookie is HttpOnly, Lax, scoped, Secure under TLS', () => {
    expect(queryToken(`/s/alice/x?a=1&token=${TOKEN}&b=2`)).toEqual({ token: TOKEN, rest: '/s/alice/x?a=1&b=2' });
    expect(queryToken('/s/alice/x?a=1')).toBeUndefined();
    expect(tokenCookie(TOKEN, '/s/alice', true)).toBe(
      `sessionctl-token=${TOKEN}; Path=/s/alice; HttpOnly; SameSite=Lax; Secure`,
    );
    expect(cookiesWithoutToken(`a=1; sessionctl-token=${TOKEN}; b=2`)).toBe('a=1; b=2');
    expect(cookiesWithoutToken(`sessionctl-token=${TOKEN}`)).toBeUndefined();
  });
});

describe('headers', () => {
  test('credentials, spoofed tokens and hop-by-hop headers are dropped; forwarded headers and the container header are set', () => {
    const raw = [
      'Host',
      'gw:8000',
      'Authorization',
      `Bearer ${TOKEN}`,
      'Connection',
      'keep-alive, X-Hop',
      'X-Hop',
      '1',
      'X-Session-Token',
      'spoof',
      'X-Forwarded-For',
      '203.0.113.9',
      'Cookie',
      `sessionctl-token=${TOKEN}`,
      'Accept',
      '*/*',
    ];
    const out = upstreamRequestHeaders(raw, {
      remoteAddress: '10.0.0.1',
      proto: 'https',
      token: TOKEN,
      tokenHeader: 'X-Session-Token',
      trustForwarded: false,
    });
    expect(out).toEqual([
      'Host',
      'gw:8000',
      'Accept',
      '*/*',
      'x-forwarded-for',
      '10.0.0.1',
      'x-forwarded-proto',
      'https',
      'x-forwarded-host',
      'gw:8000',
      'x-session-token',
      TOKEN,
    ]);
    const trusted = upstreamRequestHeaders(raw, {
      remoteAddress: '10.0.0.1',
      proto: 'http',
      token: TOKEN,
      tokenHeader: 'Authorization',
      trustForwarded: true,
    });
    expect(trusted).toContain('203.0.113.9, 10.0.0.1');
    expect(trusted.slice(-2)).toEqual(['authorization', `Bearer ${TOKEN}`]);
  });

  test('response hop-by-hop headers are dropped', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
    ].map((text) => Buffer.from(text));
    expect(clientResponseHeaders(raw)).toEqual(['Content-Type', 'text/plain']);
  });
});

describe('config', () => {
  test('defaults, and a clear error naming the variable', () => {
    expect(loadGatewayConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 8000,
      activityIntervalMs: 30_000,
      trustForwarded: false,
    });
    expect(() => loadGatewayConfig({ SESSIONCTL_GATEWAY_ADDR: 'nope' })).toThrow(
      /SESSIONCTL_GATEWAY_ADDR: expected host:port/,
    );
    expect(() => loadGatewayConfig({ SESSIONCTL_GATEWAY_TLS_CERT: '/x.pem' })).toThrow(
      /SESSIONCTL_GATEWAY_TLS_KEY: set both/,
    );
  });
});
