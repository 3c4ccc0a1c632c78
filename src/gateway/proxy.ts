/**
 * One HTTP request through to the session: undici's dispatch with a raw handler, so that bodies
 * stream both ways with backpressure and nothing is parsed or copied that need not be. The upstream
 * response's headers are passed on minus the hop-by-hop ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher, Pool } from 'undici';
import { clientResponseHeaders } from './headers';

export interface ForwardOptions {
  pool: Pool;
  path: string;
  headers: string[];
  /** When set, a failure to reach the session before any answer calls this instead of answering 502. */
  retry?(): void;
  /** Called with each chunk of body either way: activity. */
  onData?(): void;
  /** Called once, with the status sent (502/504 when the upstream failed). */
  onDone(status: number, error?: Error): void;
}

export function hasBody(request: IncomingMessage): boolean {
  return request.headers['content-length'] !== undefined
    ? request.headers['content-length'] !== '0'
    : request.headers['transfer-encoding'] !== undefined;
}

/** Builds the handler for one request; kept apart so that the per-request closure set is small. */
function responseHandler(
  request: IncomingMessage,
  response: ServerResponse,
  options: ForwardOptions,
): Dispatcher.DispatchHandler {
  let abortUpstream: ((error?: Error) => void) | undefined;
  let status = 0;
  const onClientGone = () => abortUpstream?.(new Error('client closed the connection'));
  response.once('close', onClientGone);
  return {
    onConnect(abort: (error?: Error) => void) {
      abortUpstream = abort;
      if (response.destroyed) abort(new Error('client closed the connection'));
    },
    onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void) {
      status = statusCode;
      // Informational answers (100, 103) are not forwarded: Node's server has answered 100-continue already.
      if (statusCode < 200) return true;
      response.writeHead(statusCode, clientResponseHeaders(rawHeaders));
      response.on('drain', resume);
      return true;
    },
    onData(chunk: Buffer) {
      options.onData?.();
      return response.write(chunk);
    },
    onComplete() {
      response.off('close', onClientGone);
      response.end();
      options.onDone(status);
    },
    onError(error: Error) {
      response.off('close', onClientGone);
      if (options.retry && status === 0 && !response.headersSent && !response.destroyed) return options.retry();
      if (!response.headersSent && !response.destroyed) {
        const timeout = (error as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT';
        status = timeout ? 504 : 502;
        response
          .writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
          .end(timeout ? 'the session did not answer in time\n' : 'the session could not be reached\n');
      } else {
        response.destroy();
      }
      if (!request.complete) request.resume();
      options.onDone(status, error);
    },
  } as unknown as Dispatcher.DispatchHandler;
}

export function forward(request: IncomingMessage, response: ServerResponse, options: ForwardOptions): void {
  const body = hasBody(request) ? request : null;
  if (body && options.onData) body.on('data', options.onData);
  options.pool.dispatch(
    { method: request.method ?? 'GET', path: options.path, headers: options.headers, body },
    responseHandler(request, response, options),
  );
}
