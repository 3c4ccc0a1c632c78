/**
 * The ceiling of the gateway's approach, for comparison only: a proxy of a dozen lines on undici's
 * Pool.dispatch with no routing, no token check, no header rewriting, no metrics. The gap between it
 * and the gateway is what the gateway's own work costs. Prints its port on stdout.
 */
import http from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const pool = new Pool(`http://127.0.0.1:${process.argv[2]}`, {
  connections: 100,
  keepAliveTimeout: 300_000,
  pipelining: 1,
});
const server = http.createServer((request, response) => {
  let abortUpstream: ((error: Error) => void) | undefined;
  let done = false;
  // A client gone mid-response leaves the upstream paused (no 'drain' will come): abort it, or the
  // pool runs out of connections after a few load runs that end with requests in flight.
  response.once('close', () => done || abortUpstream?.(new Error('client closed the connection')));
  const handler = {
    onConnect(abort: (error: Error) => void) {
      abortUpstream = abort;
    },
    onHeaders(status: number, raw: Buffer[], resume: () => void) {
      const headers: string[] = [];
      for (let index = 0; index < raw.length; index += 2)
        headers.push(raw[index].toString('latin1'), raw[index + 1].toString('latin1'));
      response.writeHead(status, headers);
      // Without this a client slower than the upstream stalls the upstream connection for good.
      response.on('drain', resume);
      return true;
    },
    onData: (chunk: Buffer) => response.write(chunk),
    onComplete: () => {
      done = true;
      response.end();
    },
    onError: () => {
      done = true;
      if (response.headersSent) response.destroy();
      else response.writeHead(502).end();
    },
  };
  pool.dispatch(
    { method: request.method ?? 'GET', path: request.url ?? '/', headers: request.rawHeaders, body: null },
    handler as unknown as Dispatcher.DispatchHandler,
  );
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => process.exit(0));
