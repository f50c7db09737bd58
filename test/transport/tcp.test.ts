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

  void it('leaves accepted connections open when the listener closes', async () => {
    let server: ReturnType<typeof record> | undefined;
    const listener = await listenTcp({ host: '127.0.0.1', port: 0 }, (transport) => {
      server = record(transport, (chunk) => transport.write(chunk));
    });
    const { port } = new URL(listener.url);
    const client = await connectTcp({ host: '127.0.0.1', port: Number(port) });
    const clientRecorder = record(client);
    await listener.close();
    client.write(Uint8Array.of(1, 2, 3));
    await clientRecorder.received(3);
    assert.deepEqual([...clientRecorder.bytes()], [1, 2, 3]);
    client.end();
    assert.equal(await clientRecorder.closed, undefined);
    assert.equal(await server?.closed, undefined);
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
