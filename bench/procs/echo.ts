/** Benchmark child: a raw TCP echo server on loopback (Nagle off), the other end of the ping-pong floor. */
import net from 'node:net';
import { emit, serve } from '../lib/ipc.js';

const server = net.createServer({ noDelay: true }, (sock) => {
  sock.setNoDelay(true);
  sock.on('data', (c) => sock.write(c));
  sock.on('error', () => undefined);
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const addr = server.address();
serve({});
emit('ready', { port: typeof addr === 'object' && addr !== null ? addr.port : 0, pid: process.pid });
