/**
 * The benchmark's WebSocket upstream: a Node ws echo server (it also answers HTTP with 2 bytes, which
 * the start-up check uses), in its own process. HTTP load goes to the nginx upstream instead, which
 * answers far faster than any proxy in front of it. Prints its port on stdout.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';

const server = http.createServer({ keepAliveTimeout: 300_000 }, (_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
  response.end('ok');
});
const sockets = new WebSocketServer({ server, perMessageDeflate: false });
sockets.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
