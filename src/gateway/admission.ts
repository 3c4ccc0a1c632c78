/**
 * The checks every request passes before it is forwarded, shared by HTTP and WebSocket handshakes:
 * a known session (404), a valid token (401; 403 when the session has none), a Ready session (503,
 * or a wake when it idled out). Returns what to do, and does nothing itself.
 */
import type { IncomingMessage } from 'node:http';
import { answers, type Answer } from './answers';
import { checkToken, presentedTokens, queryToken } from './auth';
import type { GatewayMetrics } from './metrics';
import type { Route, RouteTable } from './routes';
import { resolvePort, type Resolved, type Target } from './target';

export type Admission =
  | { kind: 'forward'; route: Route; token: string; resolved: Resolved }
  | { kind: 'exchange'; token: string; cookiePath: string; location: string }
  | { kind: 'wake'; route: Route }
  | { kind: 'answer'; answer: Answer };

/** `exchange`: answer a valid ?token= with the cookie and a redirect (HTTP); else accept it as it is (WebSocket). */
export function admit(
  request: IncomingMessage,
  target: Target,
  table: RouteTable,
  metrics: GatewayMetrics,
  exchange = true,
): Admission {
  const route = table.get(target.session);
  if (!route) return { kind: 'answer', answer: answers.notFound(target.session) };
  const fromQuery = queryToken(target.rest);
  const check = checkToken(route, fromQuery ? [fromQuery.token] : presentedTokens(request.headers), Date.now());
  if (check.result !== 'ok') {
    metrics.authFailures.inc({ reason: check.result });
    return {
      kind: 'answer',
      answer: check.result === 'no-token' ? answers.noToken(route.name) : answers.unauthorized(route.name),
    };
  }
  if (fromQuery && exchange) {
    // The token leaves the address bar and the history; the redirect repeats the request with the cookie.
    return {
      kind: 'exchange',
      token: check.token!,
      cookiePath: target.prefix === '' ? '/' : target.prefix,
      location: target.prefix + fromQuery.rest,
    };
  }
  // Never forwarded: the container sees its own header, not the user's query token.
  if (fromQuery) target = { ...target, rest: fromQuery.rest };
  if (!route.ready) {
    if (route.idleStopped) return { kind: 'wake', route };
    return { kind: 'answer', answer: answers.notReady(route.name, route.reason, route.message) };
  }
  const resolved = resolvePort(route, target);
  if (!resolved)
    return { kind: 'answer', answer: answers.notReady(route.name, 'NoEndpoints', 'the session publishes no TCP port') };
  return { kind: 'forward', route, token: check.token!, resolved };
}
