/**
 * What the gateway itself answers when it does not forward: 404, 401, 403, 503 with Retry-After and
 * the reason, and for browsers (Accept: text/html) a small page that shows a wake in progress and
 * reloads. Plain text for everything else, so that scripts can read the reason.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface Answer {
  status: number;
  title: string;
  detail: string;
  headers?: Record<string, string>;
  /** A browser gets a page that reloads itself after this many seconds. */
  reloadSeconds?: number;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

export function wantsHtml(request: IncomingMessage): boolean {
  const accept = request.headers.accept;
  return accept !== undefined && accept.includes('text/html');
}

function page(answer: Answer): string {
  const refresh =
    answer.reloadSeconds === undefined ? '' : `<meta http-equiv="refresh" content="${answer.reloadSeconds}">`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">${refresh}
<title>${escapeHtml(answer.title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}
progress{width:100%}</style></head>
<body><h1>${escapeHtml(answer.title)}</h1><p>${escapeHtml(answer.detail)}</p>
${answer.reloadSeconds === undefined ? '' : '<progress></progress><p><small>This page reloads by itself.</small></p>'}
</body></html>
`;
}

export function sendAnswer(request: IncomingMessage, response: ServerResponse, answer: Answer): void {
  const html = wantsHtml(request);
  const body = html ? page(answer) : `${answer.title}: ${answer.detail}\n`;
  response.writeHead(answer.status, {
    'content-type': html ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...answer.headers,
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

export const answers = {
  notFound: (session: string | undefined): Answer => ({
    status: 404,
    title: 'Not found',
    detail: session ? `there is no session named "${session}"` : 'sessions are reached at /s/<session>/',
  }),
  unauthorized: (session: string): Answer => ({
    status: 401,
    title: 'Unauthorized',
    detail: `session "${session}" needs its token: send "Authorization: Bearer <token>", or open the URL once with ?token=<token>`,
    headers: { 'www-authenticate': 'Bearer realm="sessionctl"' },
  }),
  noToken: (session: string): Answer => ({
    status: 403,
    title: 'Forbidden',
    detail: `session "${session}" has no access token yet (spec.auth is unset, or the controller has not minted it): the gateway lets nobody in without one`,
  }),
  notReady: (session: string, reason: string, message: string): Answer => ({
    status: 503,
    title: 'Session not ready',
    detail: `session "${session}" is not ready (${reason}): ${message}`,
    headers: { 'retry-after': '5', 'x-sessionctl-reason': reason },
  }),
  waking: (session: string): Answer => ({
    status: 503,
    title: 'Starting your session',
    detail: `session "${session}" was stopped after a period of inactivity and is starting again.`,
    headers: { 'retry-after': '2', 'x-sessionctl-reason': 'Waking' },
    reloadSeconds: 2,
  }),
  wakeTimeout: (session: string): Answer => ({
    status: 503,
    title: 'Session still starting',
    detail: `session "${session}" did not become ready in time; try again shortly`,
    headers: { 'retry-after': '5', 'x-sessionctl-reason': 'WakeTimeout' },
  }),
};
