/**
 * A Docker registry token service for the tests (the protocol of docs.docker.com/registry/spec/auth):
 * GET /token?service=...&scope=repository:NAME:pull with Basic credentials -> a short-lived RS256 JWT
 * the registry checks against the certificate bundle written here. It can rotate its key (which
 * revokes every token issued so far, once the registry restarts with the new bundle) and answer
 * 429 with a Retry-After. Every request is recorded with its time.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './controller';

export interface TokenRequest {
  at: number;
  status: number;
  scope?: string;
  user?: string;
  agent: string;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** The certificate bundle the registry trusts (rewritten by rotateKey). */
  rootCertBundle: string;
  requests: TokenRequest[];
  /** Tokens handed out, to grep logs for. */
  issued: string[];
  /** New signing key: tokens issued before stop working once the registry reloads the bundle. */
  rotateKey(): void;
  /** The next `count` requests get 429 with `Retry-After: seconds`. */
  rateLimitNext(count: number, seconds: number): void;
  stop(): Promise<void>;
}

/** libtrust's key id, which distribution matches against the JWT header's `kid`. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let encoded = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      encoded += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return encoded.match(/.{4}/g)!.join(':');
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(options: {
  users: Record<string, string>;
  expiresInSeconds: number;
}): Promise<TokenServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sctl-token-'));
  const bundle = path.join(dir, 'bundle.pem');
  let key: KeyObject;
  let kid: string;
  const makeKey = () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        bundle,
        '-days',
        '1',
        '-subj',
        '/CN=sessionctl-test-token',
      ],
      { stdio: 'ignore' },
    );
    key = createPrivateKey(readFileSync(path.join(dir, 'key.pem')));
    kid = libtrustKeyId(createPublicKey(key));
  };
  makeKey();
  const port = await freePort();
  const service = 'sessionctl-test-registry';
  const issuer = 'sessionctl-test-issuer';
  const requests: TokenRequest[] = [];
  const issued: string[] = [];
  let limited = { count: 0, seconds: 0 };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', `http://127.0.0.1:${port}`);
    const scope = url.searchParams.get('scope') ?? undefined;
    const record = (status: number, user?: string) =>
      requests.push({ at: Date.now(), status, scope, user, agent: request.headers['user-agent'] ?? '' });
    if (limited.count > 0) {
      limited.count--;
      record(429);
      response
        .writeHead(429, { 'Retry-After': String(limited.seconds), 'Content-Type': 'application/json' })
        .end('{"details":"slow down"}');
      return;
    }
    const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '');
    const [user, password] = basic ? Buffer.from(basic[1], 'base64').toString().split(/:(.*)/s) : [];
    if (!user || options.users[user] !== password) {
      record(401, user);
      response.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"wrong credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scope
      ? scope.split(' ').map((entry) => {
          const [type, name, actions] = entry.split(':');
          return { type, name, actions: actions.split(',') };
        })
      : [];
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid }));
    const claims = b64url(
      JSON.stringify({
        iss: issuer,
        sub: user,
        aud: service,
        exp: now + options.expiresInSeconds,
        nbf: now - 1,
        iat: now,
        jti: randomUUID(),
        access,
      }),
    );
    const token = `${header}.${claims}.${b64url(sign('sha256', Buffer.from(`${header}.${claims}`), key))}`;
    issued.push(token);
    record(200, user);
    response.writeHead(200, { 'Content-Type': 'application/json' }).end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: options.expiresInSeconds,
        issued_at: new Date().toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: bundle,
    requests,
    issued,
    rotateKey: makeKey,
    rateLimitNext(count, seconds) {
      limited = { count, seconds };
    },
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
