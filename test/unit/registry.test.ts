/** The pure parts of registry access: header encoding, challenges, Retry-After, credentials, redaction. */
import { REGISTRY_HOST_PATTERN } from '../../crds/image-policy';
import { maskUrl } from '../../src/log';
import { basicAuthorization, encodeRegistryAuth } from '../../src/registry/auth-header';
import { parseChallenge, retryAfterMs } from '../../src/registry/challenge';
import {
  parseDockerConfig,
  pickCredentials,
  redactSecrets,
  registryHostOf,
  serverAddressOf,
  CredentialsFileError,
} from '../../src/registry/credentials';

describe('X-Registry-Auth', () => {
  test('is padded URL-safe base64 of the AuthConfig JSON: the daemon ignores an unpadded header', () => {
    // 57 bytes of JSON would need no padding; these credentials give a length that does.
    const header = encodeRegistryAuth({ username: 'ci', password: 'p?>~' }, '127.0.0.1:5000');
    expect(header).toMatch(/^[A-Za-z0-9_-]+=*$/);
    expect(header.length % 4).toBe(0);
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toEqual({
      username: 'ci',
      password: 'p?>~',
      serveraddress: '127.0.0.1:5000',
    });
    for (const password of ['a', 'ab', 'abc', 'abcd'])
      expect(encodeRegistryAuth({ username: 'u', password }, 'r').length % 4).toBe(0);
  });

  test('turns "+" and "/" into "-" and "_"', () => {
    const header = encodeRegistryAuth({ username: '>>>?', password: '???' }, 'r');
    expect(header).not.toMatch(/[+/]/);
  });

  test('basic authorization for token endpoints and basic-auth registries', () => {
    expect(basicAuthorization({ username: 'alice', password: 'pa:ss' })).toBe(
      `Basic ${Buffer.from('alice:pa:ss').toString('base64')}`,
    );
  });
});

describe('WWW-Authenticate', () => {
  test('a Bearer challenge gives realm, service and scope', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/busybox:pull',
      },
    });
  });

  test('unquoted values, spaces, escapes and a Basic challenge', () => {
    expect(parseChallenge('Basic realm="test \\"quoted\\""')).toEqual({
      scheme: 'basic',
      params: { realm: 'test "quoted"' },
    });
    expect(parseChallenge('Bearer realm=http://127.0.0.1:1/token, service=reg')).toEqual({
      scheme: 'bearer',
      params: { realm: 'http://127.0.0.1:1/token', service: 'reg' },
    });
    expect(parseChallenge('bearer error="invalid_token"')?.params.error).toBe('invalid_token');
  });

  test('nothing to parse', () => {
    expect(parseChallenge(undefined)).toBeUndefined();
    expect(parseChallenge('')).toBeUndefined();
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  test('seconds or an HTTP date', () => {
    expect(retryAfterMs('8', now)).toBe(8_000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });
  test('absent or unreadable', () => {
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });
});

describe('credentials', () => {
  const auth = (text: string) => Buffer.from(text).toString('base64');

  test('config.json: auth or username/password, keys normalised to the registry host', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: auth('hub-user:hub:pass') },
          'https://Registry.Example:5000/v2/': { username: 'ci', password: 'secret' },
        },
      }),
      '/x/config.json',
    );
    expect(config.auths).toEqual(
      new Map([
        ['docker.io', { username: 'hub-user', password: 'hub:pass' }],
        ['registry.example:5000', { username: 'ci', password: 'secret' }],
      ]),
    );
    expect(config.warnings).toEqual([]);
  });

  test('credsStore, credHelpers and identity tokens are reported, not used', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        credsStore: 'desktop',
        credHelpers: { 'gcr.io': 'gcloud' },
        auths: { 'r.example': { identitytoken: 'x' } },
      }),
      '/x/config.json',
    );
    expect(config.auths.size).toBe(0);
    expect(config.warnings.join('\n')).toMatch(
      /credsStore "desktop" is not supported[\s\S]*credHelpers are not supported \(gcr\.io\)[\s\S]*identitytoken/,
    );
  });

  test('a broken file names the file and the entry, never the secret', () => {
    expect(() => parseDockerConfig('{', '/x/config.json')).toThrow(/\/x\/config\.json is not valid JSON/);
    expect(() =>
      parseDockerConfig(
        JSON.stringify({ auths: { 'r.example': { auth: auth('no-colon-secret') } } }),
        '/x/config.json',
      ),
    ).toThrow(CredentialsFileError);
    try {
      parseDockerConfig(
        JSON.stringify({ auths: { 'r.example': { auth: auth('no-colon-secret') } } }),
        '/x/config.json',
      );
    } catch (error) {
      expect((error as Error).message).toContain('auths."r.example".auth');
      expect((error as Error).message).not.toContain('no-colon-secret');
    }
  });

  test('a file that is not JSON is reported by line and column, with nothing of its text', () => {
    const secret = auth('pull-user:hunter2-very-secret');
    const broken = [
      `{"auths": {\n  "r.example": {"auth": ${secret}}}}`, // unquoted: V8 would quote the text around it
      `{"auths": {"r.example": {"auth": "${secret}" "x": 1}}}`,
      `{"auths": {"r.example": {"auth": "${secret}"`,
      `{"auths": {"r.example": {"auth": "${secret}\\q"}}}`,
    ];
    // The same offsets V8 reports ("at position 76"...), counted from 1.
    const expected = ['line 2, column 25', 'line 1, column 77', 'line 1, column 76', 'line 1, column 76'];
    broken.forEach((text, index) => {
      let message = '';
      try {
        parseDockerConfig(text, '/x/config.json');
      } catch (error) {
        expect(error).toBeInstanceOf(CredentialsFileError);
        message = (error as Error).message;
      }
      expect(message).toBe(`/x/config.json is not valid JSON (${expected[index]})`);
      // Not even a piece of the base64: V8's context is 10 characters either side.
      for (let start = 0; start + 6 <= secret.length; start++)
        expect(message).not.toContain(secret.slice(start, start + 6));
    });
  });

  test('the table wins over the file; Docker Hub has one key whatever its spelling', () => {
    const table = new Map([['r.example', { username: 'from-table', password: 't' }]]);
    const file = new Map([
      ['r.example', { username: 'from-file', password: 'f' }],
      ['docker.io', { username: 'hub', password: 'h' }],
    ]);
    expect(pickCredentials('r.example', table, file)).toEqual({
      credentials: { username: 'from-table', password: 't' },
      source: 'table',
    });
    expect(pickCredentials('docker.io', table, file)).toEqual({
      credentials: { username: 'hub', password: 'h' },
      source: 'file',
    });
    expect(pickCredentials('other.example', table, file)).toBeUndefined();
    expect(registryHostOf('index.docker.io')).toBe('docker.io');
    expect(registryHostOf('registry-1.docker.io')).toBe('docker.io');
    expect(serverAddressOf('docker.io')).toBe('https://index.docker.io/v1/');
    expect(serverAddressOf('127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });

  test('redaction removes given secrets and URL passwords from messages', () => {
    expect(redactSecrets('Head "http://u:hunter22@r/v2/": unauthorized, sent hunter22', ['hunter22'])).toBe(
      'Head "http://u:***@r/v2/": unauthorized, sent ***',
    );
    expect(redactSecrets('nothing to hide', [undefined, 'abc'])).toBe('nothing to hide');
    // The logger's maskUrl does the URL part: every URL of a message, and no further than its end.
    expect(maskUrl('postgres://app:pw1@db:5432/x, then https://u:pw2@r.example/v2/ by a@b')).toBe(
      'postgres://app:***@db:5432/x, then https://u:***@r.example/v2/ by a@b',
    );
    expect(
      REGISTRY_HOST_PATTERN.test('registry.lan:5000') &&
        !REGISTRY_HOST_PATTERN.test('https://registry.lan') &&
        !REGISTRY_HOST_PATTERN.test('r.lan/path'),
    ).toBe(true);
  });
});
