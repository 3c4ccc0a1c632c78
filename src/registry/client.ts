/**
 * A minimal Docker Registry HTTP API v2 client for one question: which digest does this tag point to
 * now? It asks with a HEAD on the manifest, which Docker Hub does not count as a pull, and does the
 * token dance the registries ask for:
 *   401 + `WWW-Authenticate: Bearer realm,service,scope` -> GET the realm with the credentials ->
 *   a bearer token, cached per registry and scope until the earlier of its expiry and our own TTL,
 *   so that a revoked token heals itself. A 401 with a cached token drops it and retries once.
 *   401 + `Basic` -> the credentials themselves.
 * A 429 stops every request to that registry until its Retry-After (or a doubling back-off) passes.
 * The credentials go to the realm the registry names (Docker Hub's is another host), so the realm
 * must be https (or loopback, or the registry insecure by configuration). No redirect is followed,
 * neither of the manifest HEAD nor of the token request: credentials and tokens go only to the hosts
 * named. Token answers are read up to a size cap; the `registry` metric label takes only configured
 * registries (else `other`). Sessions asking together share one token request per registry and scope.
 */
import type { ImageReference } from '../../crds/image-policy';
import { DOCKER_HUB } from '../../crds/image-policy';
import type { Metrics } from '../metrics/registry';
import { basicAuthorization, type RegistryCredentials } from './auth-header';
import { BodyTooLargeError, discardBody, readCappedText, TOKEN_RESPONSE_MAX_BYTES } from './body';
import { parseChallenge, retryAfterMs } from './challenge';
import { redactSecrets } from './credentials';
import { isLoopbackHost, registryLabeller } from './hosts';

export { isLoopbackHost } from './hosts';

/** Manifest lists, OCI indexes and single manifests: the digest the daemon records is the one served. */
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export type RegistryErrorCode = 'Unauthorized' | 'NotFound' | 'RateLimited' | 'Unavailable';

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface RegistryClientOptions {
  metrics: Metrics;
  /** Our own upper bound on a cached token's life (default one hour). */
  tokenTtlMs: number;
  /** Registries reached over plain HTTP besides loopback ones, as the daemon's insecure-registries. */
  insecureRegistries?: string[];
  /** SESSIONCTL_ALLOWED_REGISTRIES: with the insecure ones and Docker Hub, the `registry` label's values. */
  allowedRegistries?: string[];
  requestTimeoutMs?: number;
  now?: () => number;
  /** For unit tests; the global fetch otherwise. */
  fetch?: typeof fetch;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** So that registry operators (and the tests' access logs) can tell our checks from the daemon's pulls. */
export const USER_AGENT = 'sessionctl-registry-client';

export const RATE_LIMIT_BACKOFF = { baseMs: 5_000, maxMs: 300_000 };

/**
 * The token service URL from a registry's challenge, or a RegistryError when the credentials would
 * cross the network in clear text: whoever answers the registry's 401 chooses the realm.
 */
export function tokenRealmUrl(realm: string, registry: string, insecureRegistries: readonly string[] = []): URL {
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new RegistryError('Unavailable', `registry ${registry} named a token service that is not a URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && (isLoopbackHost(url.host) || insecureRegistries.includes(registry))) return url;
  throw new RegistryError(
    'Unavailable',
    `registry ${registry} named the token service ${url.protocol}//${url.host}, which is not https: credentials go over plain HTTP only to loopback hosts and to registries in SESSIONCTL_INSECURE_REGISTRIES`,
  );
}

export class RegistryClient {
  private readonly tokens = new Map<string, CachedToken>();
  /** Registries that answered with a Basic challenge: send the credentials directly next time. */
  private readonly basicRegistries = new Set<string>();
  private readonly blocked = new Map<string, { until: number; strikes: number }>();
  /** Token requests in flight per registry and scope: sessions asking together share one. */
  private readonly tokenFetches = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;
  private readonly label: (registry: string) => string;

  constructor(private readonly options: RegistryClientOptions) {
    this.now = options.now ?? Date.now;
    this.label = registryLabeller([...(options.insecureRegistries ?? []), ...(options.allowedRegistries ?? [])]);
  }

  /**
   * No session uses this repository any more: its cached token goes, and when `registryInUse` is
   * false, what is remembered of the registry itself (Basic, an expired rate limit) goes too.
   */
  forgetRepository(registry: string, repository: string, registryInUse: boolean): void {
    this.tokens.delete(`${registry}|repository:${repository}:pull`);
    if (registryInUse) return;
    this.basicRegistries.delete(registry);
    const block = this.blocked.get(registry);
    if (block && block.until <= this.now()) this.blocked.delete(registry);
  }

  /** How many tokens and registries are remembered; for tests of the pruning. */
  cacheSizes(): { tokens: number; registries: number } {
    return { tokens: this.tokens.size, registries: new Set([...this.basicRegistries, ...this.blocked.keys()]).size };
  }

  /** The digest the tag points to now (`sha256:...`). Throws RegistryError, with no secret in its message. */
  async resolveDigest(reference: ImageReference, credentials?: RegistryCredentials): Promise<string> {
    if (reference.digest) return reference.digest;
    const registry = reference.registry;
    const scope = `repository:${reference.repository}:pull`;
    const url = `${this.baseUrl(registry)}/v2/${reference.repository}/manifests/${reference.tag ?? 'latest'}`;
    const secrets = [credentials?.password];
    try {
      let retried = false;
      for (;;) {
        const cacheKey = `${registry}|${scope}`;
        const cached = this.cachedToken(cacheKey);
        const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
        if (cached) headers.Authorization = `Bearer ${cached}`;
        else if (credentials && this.basicRegistries.has(registry))
          headers.Authorization = basicAuthorization(credentials);
        // Not followed: the registry's answer would choose where the bearer token or Basic credentials go next.
        const response = await this.request(registry, url, { method: 'HEAD', headers });
        await discardBody(response);
        const digest = this.manifestAnswer(response, reference);
        if (digest !== undefined) return digest;
        if (cached) this.tokens.delete(cacheKey);
        if (retried) throw this.unauthorized(registry, reference, credentials);
        retried = true;
        const challenge = parseChallenge(response.headers.get('www-authenticate'));
        if (challenge?.scheme === 'bearer' && challenge.params.realm) {
          let fetching = this.tokenFetches.get(cacheKey);
          if (!fetching) {
            fetching = this.fetchToken(registry, challenge.params, scope, credentials).finally(() =>
              this.tokenFetches.delete(cacheKey),
            );
            this.tokenFetches.set(cacheKey, fetching);
          }
          this.tokens.set(cacheKey, await fetching);
        } else if (challenge?.scheme === 'basic' && credentials && !this.basicRegistries.has(registry)) {
          this.basicRegistries.add(registry);
        } else if (!cached) {
          throw this.unauthorized(registry, reference, credentials);
        }
      }
    } catch (error) {
      if (error instanceof RegistryError)
        throw new RegistryError(error.code, redactSecrets(error.message, secrets), error.retryAfterMs);
      throw new RegistryError(
        'Unavailable',
        `registry ${registry} did not answer: ${redactSecrets((error as Error).message ?? String(error), secrets)}`,
      );
    }
  }

  /** The digest of a 200, undefined for a 401 (a challenge to answer), a RegistryError for anything else. */
  private manifestAnswer(response: Response, reference: ImageReference): string | undefined {
    const { registry, repository } = reference;
    if (response.status >= 300 && response.status < 400)
      throw new RegistryError(
        'Unavailable',
        `registry ${registry} answered the manifest of ${repository} with a redirect (HTTP ${response.status}), which is not followed: credentials go only to the registry they are stored for; check the registry's address in spec.image`,
      );
    if (response.status === 200) {
      const digest = response.headers.get('docker-content-digest');
      if (!digest)
        throw new RegistryError(
          'Unavailable',
          `registry ${registry} answered the manifest of ${repository} without a Docker-Content-Digest header`,
        );
      return digest;
    }
    if (response.status === 404)
      throw new RegistryError(
        'NotFound',
        `registry ${registry} has no manifest ${repository}:${reference.tag ?? 'latest'}`,
      );
    if (response.status !== 401)
      throw new RegistryError(
        'Unavailable',
        `registry ${registry} answered HTTP ${response.status} for the manifest of ${repository}`,
      );
    return undefined;
  }

  /**
   * The daemon's pull from `registry` was refused with 429 (Docker Hub's "toomanyrequests"): the limit
   * is the registry's, not the image's, so every request and pull there waits. Returns the wait (ms).
   */
  rateLimited(registry: string, retryAfterMs?: number): number {
    const strikes = (this.blocked.get(registry)?.strikes ?? 0) + 1;
    const wait = retryAfterMs ?? Math.min(RATE_LIMIT_BACKOFF.maxMs, RATE_LIMIT_BACKOFF.baseMs * 2 ** (strikes - 1));
    this.blocked.set(registry, { until: this.now() + wait, strikes });
    return wait;
  }

  /** How long `registry` still asked us to wait (ms), or undefined when it did not. */
  blockedFor(registry: string): number | undefined {
    const block = this.blocked.get(registry);
    return block && block.until > this.now() ? block.until - this.now() : undefined;
  }

  private unauthorized(registry: string, reference: ImageReference, credentials?: RegistryCredentials): RegistryError {
    const who = credentials
      ? `as user "${credentials.username}"`
      : 'anonymously (no credentials are configured for it)';
    return new RegistryError(
      'Unauthorized',
      `registry ${registry} refused access to ${reference.repository} ${who}: check the credentials (sessionctl registry list)`,
    );
  }

  private cachedToken(key: string): string | undefined {
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) {
      this.options.metrics.registryTokenCacheHits.inc();
      return cached.token;
    }
    if (cached) this.tokens.delete(key);
    return undefined;
  }

  private async fetchToken(
    registry: string,
    params: Record<string, string>,
    scope: string,
    credentials?: RegistryCredentials,
  ): Promise<CachedToken> {
    const url = tokenRealmUrl(params.realm, registry, this.options.insecureRegistries);
    this.options.metrics.registryTokenCacheMisses.inc();
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (credentials) headers.Authorization = basicAuthorization(credentials);
    const requestedAt = this.now();
    // A redirect would carry the credentials to a place the challenge did not name: not followed.
    const response = await this.request(registry, url.toString(), { method: 'GET', headers });
    if (response.status >= 300 && response.status < 400) {
      await discardBody(response);
      throw new RegistryError(
        'Unavailable',
        `the token service of registry ${registry} answered a redirect (HTTP ${response.status}), which is not followed: credentials go only to the realm the registry named`,
      );
    }
    if (response.status === 401 || response.status === 403) {
      await discardBody(response);
      throw new RegistryError(
        'Unauthorized',
        `the token service of registry ${registry} refused ${credentials ? `user "${credentials.username}"` : 'anonymous access'} (HTTP ${response.status}): check the credentials (sessionctl registry list)`,
      );
    }
    if (response.status !== 200) {
      await discardBody(response);
      throw new RegistryError(
        'Unavailable',
        `the token service of registry ${registry} answered HTTP ${response.status}`,
      );
    }
    const body = await this.tokenBody(registry, response);
    const token = body.token ?? body.access_token;
    if (!token)
      throw new RegistryError('Unavailable', `the token service of registry ${registry} answered without a token`);
    // The token spec's default lifetime is 60 s; a few seconds of margin so that it never expires in flight.
    const lifetimeMs = Math.max(
      1_000,
      (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60) * 1000 - 5_000,
    );
    return { token, expiresAt: requestedAt + Math.min(lifetimeMs, this.options.tokenTtlMs) };
  }

  /** The token answer's JSON, read up to TOKEN_RESPONSE_MAX_BYTES; its text never reaches a message. */
  private async tokenBody(
    registry: string,
    response: Response,
  ): Promise<{ token?: string; access_token?: string; expires_in?: number }> {
    let text: string;
    try {
      text = await readCappedText(response, TOKEN_RESPONSE_MAX_BYTES);
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
      throw new RegistryError(
        'Unavailable',
        `the token service of registry ${registry} sent an ${error.message}; it is not read further`,
      );
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') return parsed as { token?: string; expires_in?: number };
    } catch {
      // Reported below, without the text: it is the token service's to choose.
    }
    throw new RegistryError('Unavailable', `the token service of registry ${registry} answered with no JSON object`);
  }

  /** One HTTP request, refused up front while the registry asked us to wait. */
  private async request(
    registry: string,
    url: string,
    init: { method: string; headers: Record<string, string> },
  ): Promise<Response> {
    const block = this.blocked.get(registry);
    if (block && block.until > this.now()) {
      const wait = block.until - this.now();
      throw new RegistryError(
        'RateLimited',
        `registry ${registry} is rate limiting us: next request in ${Math.ceil(wait / 1000)}s`,
        wait,
      );
    }
    let response: Response;
    try {
      response = await (this.options.fetch ?? fetch)(url, {
        ...init,
        headers: { ...init.headers, 'User-Agent': USER_AGENT },
        // Never followed, for any request: the caller sees the 3xx and refuses it.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 10_000),
      });
    } catch (error) {
      this.options.metrics.registryRequests.inc({ registry: this.label(registry), code: 'error' });
      throw error;
    }
    this.options.metrics.registryRequests.inc({ registry: this.label(registry), code: String(response.status) });
    if (response.status === 429) {
      const wait = this.rateLimited(registry, retryAfterMs(response.headers.get('retry-after'), this.now()));
      await discardBody(response);
      throw new RegistryError(
        'RateLimited',
        `registry ${registry} answered 429 Too Many Requests: next request in ${Math.ceil(wait / 1000)}s`,
        wait,
      );
    }
    if (block) this.blocked.delete(registry);
    return response;
  }

  private baseUrl(registry: string): string {
    if (registry === DOCKER_HUB) return 'https://registry-1.docker.io';
    const plain = isLoopbackHost(registry) || (this.options.insecureRegistries ?? []).includes(registry);
    return `${plain ? 'http' : 'https'}://${registry}`;
  }
}
