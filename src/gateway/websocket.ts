/**
 * WebSocket (and any HTTP/1.1 Upgrade) through to the session: undici performs the upstream
 * handshake, then the two sockets are piped. Frames are not parsed: each chunk either way counts
 * as activity, and a tunnel silent in both directions for the idle limit is closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import { clientResponseHeaders } from './headers';

export interface TunnelOptions {
  pool: Pool;
  path: string;
  headers: string[];
  idleTimeoutMs: number;
  onData(): void;
  onOpen(): void;
  onClose(): void;
  /** The handshake failed upstream; the client got 502. */
  onFailed(error: Error): void;
}

/** A plain HTTP answer on a socket that asked to upgrade (there is no ServerResponse for it). */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  reason: string,
  headers: Record<string, string> = {},
  body = '',
): void {
  if (socket.destroyed) return;
  const lines = [
    `HTTP/1.1 ${status} ${reason}`,
    'connection: close',
    'content-type: text/plain; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function splice(client: Socket, upstream: Socket, options: TunnelOptions): void {
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    client.destroy();
    upstream.destroy();
    options.onClose();
  };
  for (const socket of [client, upstream]) {
    socket.on('data', options.onData);
    socket.on('error', close);
    socket.on('close', close);
    socket.setTimeout(options.idleTimeoutMs, close);
  }
  // A message either way resets both timers: a tunnel is idle only when neither side talks.
  client.on('data', () => upstream.setTimeout(options.idleTimeoutMs));
  upstream.on('data', () => client.setTimeout(options.idleTimeoutMs));
  client.pipe(upstream);
  upstream.pipe(client);
  options.onOpen();
}

export function tunnel(request: IncomingMessage, client: Duplex, head: Buffer, options: TunnelOptions): void {
  const protocol = request.headers.upgrade ?? 'websocket';
  const handler = {
    onConnect() {},
    onHeaders() {
      return true;
    },
    onData() {
      return true;
    },
    onComplete() {
      // The upstream answered without upgrading: say so rather than hang.
      options.onFailed(new Error('the session answered the upgrade request without upgrading'));
      rejectUpgrade(client, 502, 'Bad Gateway', {}, 'the session refused the upgrade\n');
    },
    onUpgrade(statusCode: number, rawHeaders: Buffer[], upstream: Duplex) {
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      const headers = clientResponseHeaders(rawHeaders);
      const lines = [`HTTP/1.1 ${statusCode} Switching Protocols`, 'connection: upgrade', `upgrade: ${protocol}`];
      for (let index = 0; index < headers.length; index += 2) lines.push(`${headers[index]}: ${headers[index + 1]}`);
      client.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      splice(client as Socket, upstream as Socket, options);
    },
    onError(error: Error) {
      options.onFailed(error);
      rejectUpgrade(client, 502, 'Bad Gateway', {}, 'the session could not be reached\n');
    },
  };
  options.pool.dispatch(
    { method: 'GET', path: options.path, headers: options.headers, upgrade: protocol },
    handler as unknown as Dispatcher.DispatchHandler,
  );
}
