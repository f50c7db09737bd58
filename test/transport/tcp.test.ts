import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { connectTcp, listenTcp } from '../../src/transport/tcp.js';
import { transportContract } from './contract.js';
import type { Transport } from '../../src/transport/transport.js';
import { deferred, record } from './helpers.js';

transportContract({
  name: 'tcp',
  kind: 'tcp',
  framed: false,
  peerSeesAbort: true,
  listen: (onAccept) => listenTcp({ host: '127.0.0.1', port: 0 }, onAccept),
  connect: (url) => {
    const { hostname, port } = new URL(url);
    return connectTcp({ host: hostname, port: Number(port) });
  },
});

/** A port on which nothing listens: bound, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

void describe('tcp', () => {
  void it('shows the bound port in Listener.url when asked for port 0', async () => {
    const listener = await listenTcp({ host: '127.0.0.1', port: 0 }, () => {});
    try {
      assert.match(listener.url, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
    } finally {
      await listener.close();
    }
  });

  void it('names the address and suggests a cause when the connection is refused', async () => {
    const port = await closedPort();
    await assert.rejects(connectTcp({ host: '127.0.0.1', port }), (error: Error) => {
      assert.equal(error.message, `cannot connect to tcp://127.0.0.1:${port}: connection refused (is the coordinator running?)`);
      assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED');
      return true;
    });
  });

  void it('names the address when the port is already in use', async () => {
    const first = await listenTcp({ host: '127.0.0.1', port: 0 }, () => {});
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(
        listenTcp({ host: '127.0.0.1', port }, () => {}),
        {
          message: `cannot listen on tcp://127.0.0.1:${port}: address in use (is another coordinator running?)`,
        },
      );
    } finally {
      await first.close();
    }
  });

  void it('destroys the socket when the peer does not close its side after end()', { timeout: 10_000 }, async (t) => {
    // A raw peer that keeps its half open forever.
    const peerSockets: net.Socket[] = [];
    const peer = net.createServer({ allowHalfOpen: true }, (socket) => {
      peerSockets.push(socket);
      socket.resume();
    });
    t.after(() => {
      for (const socket of peerSockets) socket.destroy();
      peer.close();
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const client = await connectTcp({ host: '127.0.0.1', port: (peer.address() as net.AddressInfo).port, closeTimeoutMs: 20 });
    const recorder = record(client);
    client.end();
    assert.equal(await recorder.closed, undefined);
  });

  void it('tells the peer of a destroyed connection that it was reset', async () => {
    const accepted = deferred<Transport>();
    const listener = await listenTcp({ host: '127.0.0.1', port: 0 }, (transport) => accepted.resolve(transport));
    try {
      const client = await connectTcp({ host: '127.0.0.1', port: Number(new URL(listener.url).port) });
      record(client);
      const serverRecorder = record(await accepted.promise);
      client.destroy();
      const error = await serverRecorder.closed;
      assert.equal((error as { code?: string } | undefined)?.code, 'ECONNRESET');
    } finally {
      await listener.close();
    }
  });
});
