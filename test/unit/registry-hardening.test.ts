/**
 * What an attacker choosing `spec.image` (or answering as its registry) cannot make the registry
 * client do: send stored credentials to another host, follow a redirect with them, fill memory with
 * a token answer, mint metric series, pass for loopback, or put raw text into status.
 */
import { parseImageReference } from '../../crds/image-policy';
import { createMetrics } from '../../src/metrics/registry';
import { readCappedText, TOKEN_RESPONSE_MAX_BYTES } from '../../src/registry/body';
import { RegistryClient } from '../../src/registry/client';
import { parseDockerConfig, pickCredentials } from '../../src/registry/credentials';
import { registryText, REGISTRY_TEXT_MAX_CHARS } from '../../src/registry/error-text';
import { isLoopbackHost, OTHER_REGISTRY, registryLabeller } from '../../src/registry/hosts';

const CREDENTIALS = { username: 'puller', password: 'hunter2-secret' };
const DIGEST = `sha256:${'d'.repeat(64)}`;

interface Sent {
  url: string;
  method: string;
  redirect?: string;
  authorization?: string;
}

/** A scripted fetch: `answer` decides each response; every request is recorded. */
function scripted(answer: (url: URL, headers: Record<string, string>) => Response) {
  const sent: Sent[] = [];
  const metrics = createMetrics();
  const fetchImpl = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const headers = (init?.headers ?? {}) as Record<string, string>;
    sent.push({
      url: url.toString(),
      method: init?.method ?? 'GET',
      redirect: init?.redirect,
      authorization: headers.Authorization,
    });
    return answer(url, headers);
  }) as typeof fetch;
  const client = new RegistryClient({
    metrics,
    tokenTtlMs: 3_600_000,
    fetch: fetchImpl,
    allowedRegistries: ['registry.example'],
  });
  return { client, sent, metrics };
}

const challenge = (realm: string) =>
  new Response(null, { status: 401, headers: { 'WWW-Authenticate': `Bearer realm="${realm}",service="svc"` } });

describe('the loopback check is exact', () => {
  test.each([
    'localhost',
    'LOCALHOST:5000',
    '127.0.0.1',
    '127.255.255.254:5000',
    '127.1.2.3',
    '[::1]',
    '[::1]:5000',
    '::1',
  ])('%s is loopback', (host) => expect(isLoopbackHost(host)).toBe(true));

  test.each([
    '127.evil.example',
    '127.0.0.1.evil.example',
    '127.0.0.1.nip.io:5000',
    'localhost.evil.example',
    'evil-localhost',
    '127.0.0.256',
    '127.0.0',
    '128.0.0.1',
    '0.0.0.0',
    '[::2]',
    '[::1].evil.example',
    'registry.example',
  ])('%s is not loopback', (host) => expect(isLoopbackHost(host)).toBe(false));
});

describe('credentials go only to the registry they were stored for', () => {
  const table = new Map([['registry.lan:5000', CREDENTIALS]]);
  const file = parseDockerConfig(
    JSON.stringify({ auths: { 'https://files.lan/v1/': { username: 'f', password: 'file-secret' } } }),
    'config.json',
  ).auths;

  test.each([
    'registry.lan',
    'registry.lan:50000',
    'registry.lan:500',
    'registry.lan:5000.evil.example',
    'evil.registry.lan:5000',
    'files.lan:443',
    'files.lan.evil.example',
    'evil.files.lan',
  ])('an image from %s gets none', (registry) => expect(pickCredentials(registry, table, file)).toBeUndefined());

  test('the exact host[:port] gets them, in any letter case', () => {
    expect(pickCredentials('REGISTRY.lan:5000', table, file)).toEqual({ credentials: CREDENTIALS, source: 'table' });
    expect(pickCredentials('files.lan', table, file)?.source).toBe('file');
  });
});

describe('redirects are never followed', () => {
  test('a manifest HEAD answered with a redirect sends nothing to its target and says why', async () => {
    const { client, sent } = scripted((url) =>
      url.hostname === 'registry.example'
        ? new Response(null, { status: 307, headers: { Location: 'https://collector.example/v2/x' } })
        : new Response(null, { status: 200, headers: { 'Docker-Content-Digest': DIGEST } }),
    );
    await expect(
      client.resolveDigest(parseImageReference('registry.example/team/app:v1'), CREDENTIALS),
    ).rejects.toThrow(
      'registry registry.example answered the manifest of team/app with a redirect (HTTP 307), which is not followed',
    );
    expect(sent).toHaveLength(1);
    expect(sent[0].redirect).toBe('manual');
    expect(sent.some((request) => request.url.includes('collector'))).toBe(false);
  });

  test('after the token dance, a redirect of the authenticated HEAD is not followed either', async () => {
    const { client, sent } = scripted((url, headers) => {
      if (url.hostname === 'auth.example') return new Response(JSON.stringify({ token: 'tok' }), { status: 200 });
      if (url.hostname === 'registry.example' && headers.Authorization === 'Bearer tok')
        return new Response(null, { status: 302, headers: { Location: 'https://collector.example/' } });
      if (url.hostname === 'registry.example') return challenge('https://auth.example/token');
      return new Response(null, { status: 200, headers: { 'Docker-Content-Digest': DIGEST } });
    });
    await expect(
      client.resolveDigest(parseImageReference('registry.example/team/app:v1'), CREDENTIALS),
    ).rejects.toThrow(/redirect \(HTTP 302\), which is not followed/);
    expect(sent.every((request) => request.redirect === 'manual')).toBe(true);
    expect(sent.map((request) => new URL(request.url).hostname)).toEqual([
      'registry.example',
      'auth.example',
      'registry.example',
    ]);
  });
});

describe('size caps', () => {
  test('a token answer over the cap is refused without reading it all', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x61));
      },
    });
    const { client } = scripted((url) =>
      url.hostname === 'auth.example'
        ? new Response(endless, { status: 200 })
        : challenge('https://auth.example/token'),
    );
    await expect(
      client.resolveDigest(parseImageReference('registry.example/team/app:v1'), CREDENTIALS),
    ).rejects.toThrow(
      `the token service of registry registry.example sent an answer over the ${TOKEN_RESPONSE_MAX_BYTES}-byte limit; it is not read further`,
    );
    // The cap plus at most a chunk or two of read-ahead: the stream is cancelled, not drained.
    expect(pulled * 16 * 1024).toBeLessThanOrEqual(TOKEN_RESPONSE_MAX_BYTES + 3 * 16 * 1024);
  });

  test('a declared Content-Length over the cap is refused before reading', async () => {
    const response = new Response('x'.repeat(10), { headers: { 'Content-Length': '999999' } });
    await expect(readCappedText(response, 1024)).rejects.toThrow('answer of 999999 bytes, over the 1024-byte limit');
  });

  test('a token answer that is not JSON is refused without quoting it', async () => {
    const { client } = scripted((url) =>
      url.hostname === 'auth.example'
        ? new Response('<html>\u001b[31mpwned', { status: 200 })
        : challenge('https://auth.example/token'),
    );
    const failure = await client
      .resolveDigest(parseImageReference('registry.example/team/app:v1'), CREDENTIALS)
      .catch((error: Error) => error.message);
    expect(failure).toBe('the token service of registry registry.example answered with no JSON object');
  });
});

describe('the registry metric label is bounded', () => {
  test('configured registries and Docker Hub keep their name; any other is "other"', () => {
    const label = registryLabeller(['registry.lan:5000']);
    expect(label('registry.lan:5000')).toBe('registry.lan:5000');
    expect(label('docker.io')).toBe('docker.io');
    expect(label('attacker-1.example')).toBe(OTHER_REGISTRY);
    expect(label('127.0.0.1:5999')).toBe(OTHER_REGISTRY);
  });

  test('requests to a hundred attacker-chosen registries make one series', async () => {
    const { client, metrics } = scripted(() => new Response(null, { status: 404 }));
    for (let i = 0; i < 100; i++)
      await client.resolveDigest(parseImageReference(`r${i}.attacker.example/x/y:1`)).catch(() => undefined);
    await client.resolveDigest(parseImageReference('registry.example/x/y:1')).catch(() => undefined);
    const values = (await metrics.registryRequests.get()).values;
    expect(values.map((value) => [value.labels.registry, value.value]).sort()).toEqual([
      ['other', 100],
      ['registry.example', 1],
    ]);
  });
});

describe('per-repository memory is forgotten', () => {
  test('forgetRepository drops the token of the repository, and of the registry once unused', async () => {
    const { client } = scripted((url, headers) => {
      if (url.hostname === 'auth.example') return new Response(JSON.stringify({ token: 'tok' }), { status: 200 });
      if (headers.Authorization === 'Bearer tok')
        return new Response(null, { status: 200, headers: { 'Docker-Content-Digest': DIGEST } });
      return challenge('https://auth.example/token');
    });
    await client.resolveDigest(parseImageReference('registry.example/team/a:v1'), CREDENTIALS);
    await client.resolveDigest(parseImageReference('registry.example/team/b:v1'), CREDENTIALS);
    expect(client.cacheSizes().tokens).toBe(2);
    client.forgetRepository('registry.example', 'team/a', true);
    expect(client.cacheSizes().tokens).toBe(1);
    client.forgetRepository('registry.example', 'team/b', false);
    expect(client.cacheSizes()).toEqual({ tokens: 0, registries: 0 });
  });
});

describe("a registry's text in status", () => {
  test('is escaped, on one line, and cut', () => {
    expect(registryText('denied:\u001b]0;owned\u0007 \u202eevil\r\nnext')).toBe(
      'denied:\\x1b]0;owned\\x07 \\u202eevil next',
    );
    const long = registryText('x'.repeat(5000));
    expect(long.startsWith('x'.repeat(REGISTRY_TEXT_MAX_CHARS))).toBe(true);
    expect(long).toBe(
      `${'x'.repeat(REGISTRY_TEXT_MAX_CHARS)}… (${5000 - REGISTRY_TEXT_MAX_CHARS} more characters cut)`,
    );
  });
});
