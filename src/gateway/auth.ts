/**
 * Who may pass: the session's own token, presented as `Authorization: Bearer`, as the gateway's
 * cookie, or once as `?token=` (exchanged for the cookie). Checked in constant time against the
 * SHA-256 the controller stored, at every request, so a rotation or an expiry (both reach the table
 * by notification) stops old cookies at once. The token is never logged: it lives only in locals.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Route } from './routes';

export const TOKEN_COOKIE = 'sessionctl-token';
const COOKIE_PREFIX = `${TOKEN_COOKIE}=`;

export type TokenCheck = 'ok' | 'missing' | 'invalid' | 'no-token';

/** Bearer first, then every cookie of ours (a browser may send one per matching path). */
export function presentedTokens(headers: IncomingHttpHeaders): string[] {
  const found: string[] = [];
  const authorization = headers.authorization;
  if (authorization !== undefined && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ')
    found.push(authorization.slice(7).trim());
  const cookie = headers.cookie;
  if (cookie !== undefined) {
    let at = cookie.indexOf(COOKIE_PREFIX);
    while (at >= 0) {
      if (at === 0 || cookie[at - 1] === ' ' || cookie[at - 1] === ';') {
        const end = cookie.indexOf(';', at);
        found.push(cookie.slice(at + COOKIE_PREFIX.length, end < 0 ? undefined : end).trim());
      }
      at = cookie.indexOf(COOKIE_PREFIX, at + 1);
    }
  }
  return found;
}

/** Constant-time in the token's content; the expiry is checked on the gateway's clock. */
export function checkToken(
  route: Route,
  candidates: readonly string[],
  now: number,
): { result: TokenCheck; token?: string } {
  if (!route.tokenHash) return { result: 'no-token' };
  if (candidates.length === 0) return { result: 'missing' };
  if (now >= route.tokenExpiresAt) return { result: 'invalid' };
  for (const candidate of candidates) {
    // One-shot hash(): no Hash object per request (about 2 us less than createHash on this machine).
    if (timingSafeEqual(hash('sha256', candidate, 'buffer') as unknown as Buffer, route.tokenHash))
      return { result: 'ok', token: candidate };
  }
  return { result: 'invalid' };
}

/** The `?token=` of a request URL, and the same URL without it (for the redirect). */
export function queryToken(url: string): { token: string; rest: string } | undefined {
  const question = url.indexOf('?');
  if (question < 0 || url.indexOf('token=', question) < 0) return undefined;
  const params = new URLSearchParams(url.slice(question + 1));
  const token = params.get('token');
  if (token === null) return undefined;
  params.delete('token');
  const query = params.toString();
  return { token, rest: url.slice(0, question) + (query ? `?${query}` : '') };
}

/** HttpOnly so that page scripts cannot read it; Lax so that it follows top-level navigation only. */
export function tokenCookie(token: string, path: string, secure: boolean): string {
  return `${TOKEN_COOKIE}=${token}; Path=${path}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The request's Cookie header without the gateway's cookie, or undefined when nothing else is left. */
export function cookiesWithoutToken(cookie: string): string | undefined {
  if (cookie.indexOf(COOKIE_PREFIX) < 0) return cookie;
  const kept = cookie
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && !part.startsWith(COOKIE_PREFIX));
  return kept.length > 0 ? kept.join('; ') : undefined;
}
