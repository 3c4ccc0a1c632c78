/**
 * RegistryClient's token dance against a scripted registry (an injected fetch that records every
 * request): where credentials may go, redirects of the token service, and one token request for
 * many sessions asking at once.
 */
import { parseImageReference } from '../../crds/image-policy';
import { createMetrics } from '../../src/metrics/registry';
import { RegistryClient, RegistryError, isLoopbackHost, tokenRealmUrl } from '../../src/registry/client';

const CREDENTIALS = { username: 'puller', password: 'hunter2-secret' };
const DIGEST = `sha256:${'c'.repeat(64)}`;

interface Sent {
  url: string;
  method: string;
  redirect?: string;
  authorization?: string;
}

/** A registry at https://registry.example whose 401 names `realm`; the token service answers `token`. */
function scriptedRegistry(realm: string, token: (url: URL) => Promise<Response> | Response) {
  const sent: Sent[] = [];
  const fetchImpl = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const headers = (init?.headers ?? {}) as Record<string, string>;
    sent.push({
      url: url.toString(),
      method: init?.method ?? 'GET',
      redirect: init?.redirect,
      authorization: headers.Authorization,
    });
    if (url.pathname.startsWith('/v2/')) {
      if (headers.Authorization === 'Bearer good-token')
        return new Response(null, { status: 200, headers: { 'Docker-Content-Digest': DIGEST } });
      return new Response(null, {
        status: 401,
        headers: { 'WWW-Authenticate': `Bearer realm="${realm}",service="registry.example"` },
      });
    }
    return token(url);
  }) as typeof fetch;
  const client = new RegistryClient({ metrics: createMetrics(), tokenTtlMs: 3_600_000, fetch: fetchImpl });
  return { client, sent };
}

const reference = parseImageReference('registry.example/team/app:v1');
const tokenResponse = () =>
  new Response(JSON.stringify({ token: 'good-token', expires_in: 300 }), {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
  });

describe('token realm', () => {
  test('https anywhere; plain http only on loopback or for an insecure registry', () => {
    expect(tokenRealmUrl('https://auth.docker.io/token', 'docker.io').host).toBe('auth.docker.io');
    expect(tokenRealmUrl('http://127.0.0.1:5001/auth', '127.0.0.1:5000').port).toBe('5001');
    expect(tokenRealmUrl('http://localhost/auth', 'registry.example').hostname).toBe('localhost');
    expect(tokenRealmUrl('http://[::1]:9/auth', 'registry.example').port).toBe('9');
    expect(tokenRealmUrl('http://auth.lan/token', 'registry.lan:5000', ['registry.lan:5000']).host).toBe('auth.lan');
    expect(() => tokenRealmUrl('http://auth.lan/token', 'registry.lan:5000', ['other.lan'])).toThrow(
      'registry registry.lan:5000 named the token service http://auth.lan, which is not https: credentials go over plain HTTP only to loopback hosts and to registries in SESSIONCTL_INSECURE_REGISTRIES',
    );
    expect(() => tokenRealmUrl('file:///etc/passwd', 'registry.example')).toThrow(RegistryError);
    expect(() => tokenRealmUrl('not a url', 'registry.example')).toThrow(/named a token service that is not a URL/);
  });

  test('loopback hosts, with or without a port', () => {
    expect(
      ['localhost', 'localhost:5000', '127.0.0.1', '127.3.4.5:80', '[::1]', '[::1]:5000'].every(isLoopbackHost),
    ).toBe(true);
    expect(
      ['registry.example', '10.0.0.1:5000', '128.0.0.1', '[::2]', 'localhost.evil.example'].some(isLoopbackHost),
    ).toBe(false);
  });

  test('a plain-http realm on another host gets no request, so no credentials', async () => {
    const { client, sent } = scriptedRegistry('http://auth.example/token', () => tokenResponse());
    const failure = await client
      .resolveDigest(reference, CREDENTIALS)
      .catch((error: unknown) => error as RegistryError);
    expect(failure).toBeInstanceOf(RegistryError);
    expect((failure as RegistryError).message).toMatch(/token service http:\/\/auth\.example, which is not https/);
    expect(sent.map((request) => `${request.method} ${request.url}`)).toEqual([
      'HEAD https://registry.example/v2/team/app/manifests/v1',
    ]);
    expect(sent.some((request) => request.authorization !== undefined)).toBe(false);
  });

  test('a redirect from the token service is not followed', async () => {
    const { client, sent } = scriptedRegistry(
      'https://auth.example/token',
      () => new Response(null, { status: 302, headers: { Location: 'https://elsewhere.example/steal' } }),
    );
    await expect(client.resolveDigest(reference, CREDENTIALS)).rejects.toThrow(
      /token service of registry registry\.example answered a redirect \(HTTP 302\), which is not followed/,
    );
    const tokenRequests = sent.filter((request) => request.url.startsWith('https://auth.example/'));
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0].redirect).toBe('manual');
    expect(sent.some((request) => request.url.includes('elsewhere'))).toBe(false);
  });
});

describe('token requests', () => {
  test('twenty sessions asking at once share one token request, then the cached token', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { client, sent } = scriptedRegistry('https://auth.example/token', async () => {
      await gate;
      return tokenResponse();
    });
    const asking = Array.from({ length: 20 }, () => client.resolveDigest(reference, CREDENTIALS));
    // Let every HEAD get its 401 and reach the token service before it answers.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    release();
    expect(await Promise.all(asking)).toEqual(Array(20).fill(DIGEST));
    const tokenRequests = sent.filter((request) => request.url.startsWith('https://auth.example/'));
    expect(tokenRequests).toHaveLength(1);
    expect(new URL(tokenRequests[0].url).searchParams.get('scope')).toBe('repository:team/app:pull');
    expect(await client.resolveDigest(reference, CREDENTIALS)).toBe(DIGEST);
    expect(sent.filter((request) => request.url.startsWith('https://auth.example/'))).toHaveLength(1);
  });

  test('a refused token request fails every session that shared it, and the next ask tries again', async () => {
    let answers = 0;
    const { client, sent } = scriptedRegistry('https://auth.example/token', () =>
      ++answers === 1 ? new Response(null, { status: 401 }) : tokenResponse(),
    );
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => client.resolveDigest(reference, CREDENTIALS)),
    );
    expect(
      results.every(
        (result) => result.status === 'rejected' && /refused user "puller" \(HTTP 401\)/.test(String(result.reason)),
      ),
    ).toBe(true);
    expect(
      results.some((result) => result.status === 'rejected' && String(result.reason).includes(CREDENTIALS.password)),
    ).toBe(false);
    expect(await client.resolveDigest(reference, CREDENTIALS)).toBe(DIGEST);
    expect(sent.filter((request) => request.url.startsWith('https://auth.example/'))).toHaveLength(2);
  });
});
