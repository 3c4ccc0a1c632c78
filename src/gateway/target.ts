/**
 * Which session, which port and which path a request is for: `/s/<session>/<port-name>/...`,
 * `/s/<session>/...` (the first port), or `<session>.<domain>` by Host. Pure, so it is tested alone.
 */
import { SESSION_NAME_PATTERN } from '../../crds/session';
import type { Route, Upstream } from './routes';

export interface Target {
  session: string;
  /** The path prefix that names the session (and port): the cookie's Path; "" under host routing. */
  prefix: string;
  /** The rest of the URL after the prefix, "/" at least, query included. */
  rest: string;
}

export const PATH_PREFIX = '/s/';

/** The session a request names, before its route is known. */
export function parseTarget(url: string, host: string | undefined, domain: string | undefined): Target | undefined {
  if (domain !== undefined && host !== undefined) {
    const bare = host.toLowerCase().replace(/:\d+$/, '');
    if (bare.length > domain.length + 1 && bare.endsWith(domain) && bare[bare.length - domain.length - 1] === '.') {
      const session = bare.slice(0, bare.length - domain.length - 1);
      return SESSION_NAME_PATTERN.test(session) ? { session, prefix: '', rest: url } : undefined;
    }
  }
  if (!url.startsWith(PATH_PREFIX)) return undefined;
  let end = PATH_PREFIX.length;
  while (end < url.length && url[end] !== '/' && url[end] !== '?') end++;
  const session = url.slice(PATH_PREFIX.length, end);
  if (!SESSION_NAME_PATTERN.test(session)) return undefined;
  const rest = url.slice(end);
  return { session, prefix: url.slice(0, end), rest: rest === '' || rest[0] === '?' ? `/${rest}` : rest };
}

export interface Resolved {
  upstream: Upstream;
  /** The cookie's Path: the session's prefix, so that one cookie serves every port. */
  cookiePath: string;
  /** The path the container is sent. */
  path: string;
}

/** Picks the port (a named one when the first segment after the session names a port) and the path. */
export function resolvePort(route: Route, target: Target): Resolved | undefined {
  let prefix = target.prefix;
  let rest = target.rest;
  let upstream = route.defaultPort;
  if (route.ports.size > 1 && target.prefix !== '') {
    let end = 1;
    while (end < rest.length && rest[end] !== '/' && rest[end] !== '?') end++;
    const named = route.ports.get(rest.slice(1, end));
    if (named) {
      upstream = named;
      prefix += rest.slice(0, end);
      rest = rest.slice(end);
      if (rest === '' || rest[0] === '?') rest = `/${rest}`;
    }
  }
  if (!upstream) return undefined;
  return {
    upstream,
    cookiePath: target.prefix === '' ? '/' : target.prefix,
    path: route.stripPrefix || target.prefix === '' ? rest : prefix + rest,
  };
}
