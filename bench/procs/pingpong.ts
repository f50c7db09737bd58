/** Benchmark child: the client of the raw loopback ping-pong (32 bytes, Nagle off) that gives the latency floor. */
import net from 'node:net';
import { emit, nowNs, serve } from '../lib/ipc.js';
import { summarize } from '../lib/stats.js';

/** Raw loopback ping-pong (32 bytes, Nagle off) against the echo child. */
async function pingpong(a: { port: number; warm: number; n: number }) {
  const s = await new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect({ port: a.port, host: '127.0.0.1', noDelay: true }, () => resolve(sock));
    sock.once('error', reject);
  });
  const SIZE = 32;
  const msg = Buffer.alloc(SIZE, 7);
  const us: number[] = [];
  await new Promise<void>((resolve) => {
    let i = 0;
    let got = 0;
    let t0 = nowNs();
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got < SIZE) return;
      got -= SIZE;
      const t1 = nowNs();
      if (i >= a.warm) us.push((t1 - t0) / 1e3);
      if (++i === a.warm + a.n) return resolve();
      t0 = nowNs();
      s.write(msg);
    });
    s.write(msg);
  });
  s.destroy();
  return summarize(us);
}

serve({ pingpong });
emit('ready', { pid: process.pid });
