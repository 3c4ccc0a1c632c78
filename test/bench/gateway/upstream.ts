/**
 * The benchmark's upstream: a minimal Node HTTP server (a 2-byte body, keep-alive) with a WebSocket
 * echo on the same port, in its own process. It answers about 19,000 req/s on this machine, far more
 * than any proxy in front of it, so it is not the bottleneck. Prints its port on stdout.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';

const server = http.createServer({ keepAliveTimeout: 300_000 }, (_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
  response.end('ok');
});
const sockets = new WebSocketServer({ server });
sockets.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
