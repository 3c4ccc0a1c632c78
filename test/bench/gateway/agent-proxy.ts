/**
 * The other candidate for the gateway's upstream client, for the side-by-side measurement that chose
 * undici (docs/gateway.md): the same dozen-line proxy as bare-proxy.ts on node:http's request with a
 * keep-alive Agent (the client http-proxy and configurable-http-proxy build on). Prints its port.
 */
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 100, keepAliveMsecs: 300_000 });
const upstreamPort = Number(process.argv[2]);
const server = http.createServer((request, response) => {
  const upstream = http.request(
    {
      host: '127.0.0.1',
      port: upstreamPort,
      method: request.method,
      path: request.url,
      headers: request.headers,
      agent,
    },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(response);
    },
  );
  upstream.on('error', () => (response.headersSent ? response.destroy() : response.writeHead(502).end()));
  request.pipe(upstream);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => process.exit(0));
