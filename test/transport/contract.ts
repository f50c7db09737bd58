/**
 * The transport contract suite: every transport (tcp, tls, ws, memory) must pass it over a real
 * connection. Each transport's test file runs it with a harness that says how to listen and connect.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { AcceptHandler, Listener, Transport } from '../../src/transport/transport.js';
import { deferred, pattern, patternMismatch, pump, record, turns } from './helpers.js';

/** How to run the contract against one transport. */
export interface TransportHarness {
  readonly name: string;
  readonly kind: Transport['kind'];
  readonly framed: boolean;
  listen(onAccept: AcceptHandler): Promise<Listener>;
  connect(url: string): Promise<Transport>;
  /** Whether the peer of a destroyed transport is told with an error (TLS without close_notify is not). */
  readonly peerSeesAbort: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** A connected client and the server end it was accepted as; torn down after the test. */
async function connected(h: TransportHarness, t: TestContext): Promise<{ client: Transport; server: Transport; listener: Listener }> {
  const accepted = deferred<Transport>();
  const listener = await h.listen((transport) => accepted.resolve(transport));
  const client = await h.connect(listener.url);
  const server = await accepted.promise;
  t.after(async () => {
    client.destroy();
    server.destroy();
    await listener.close();
  });
  return { client, server, listener };
}

/** Runs the contract suite for one transport. */
export function transportContract(h: TransportHarness): void {
  void describe(`${h.name} transport contract`, () => {
    void it('reports its kind, framing and remote address', async (t) => {
      const { client, server } = await connected(h, t);
      for (const transport of [client, server]) {
        assert.equal(transport.kind, h.kind);
        assert.equal(transport.framed, h.framed);
        assert.notEqual(transport.remote, '');
      }
    });

    void it('echoes many chunks intact and in order, then both ends close cleanly once', async (t) => {
      const { client, server } = await connected(h, t);
      const sizes = Array.from({ length: 600 }, (_, i) => 1 + ((i * 7919) % 9000));
      const total = sizes.reduce((sum, size) => sum + size, 0);
      const serverRecorder = record(server, (chunk) => server.write(chunk));
      const clientRecorder = record(client);
      let offset = 0;
      for (const size of sizes) {
        client.write(pattern(offset, size));
        offset += size;
      }
      await clientRecorder.received(total);
      assert.equal(clientRecorder.receivedBytes, total);
      assert.equal(patternMismatch(clientRecorder.bytes()), -1);
      if (h.framed) {
        assert.deepEqual(
          clientRecorder.chunks.map((chunk) => chunk.byteLength),
          sizes,
        );
      }
      client.end();
      assert.equal(await clientRecorder.closed, undefined);
      assert.equal(await serverRecorder.closed, undefined);
      await turns(5);
      assert.equal(clientRecorder.closeCalls, 1);
      assert.equal(serverRecorder.closeCalls, 1);
    });

    void it('holds bytes that arrive before handlers are installed', async (t) => {
      const { client, server } = await connected(h, t);
      const clientRecorder = record(client);
      client.write(pattern(0, 100 * KiB));
      client.end();
      await turns(20);
      const serverRecorder = record(server);
      assert.equal(await serverRecorder.closed, undefined);
      assert.equal(serverRecorder.receivedBytes, 100 * KiB);
      assert.equal(patternMismatch(serverRecorder.bytes()), -1);
      assert.equal(await clientRecorder.closed, undefined);
    });

    void it('delivers nothing while paused and everything after resume()', async (t) => {
      const { client, server } = await connected(h, t);
      server.pause();
      const serverRecorder = record(server);
      record(client);
      client.write(pattern(0, 10 * KiB));
      client.write(pattern(10 * KiB, 10 * KiB));
      await turns(20);
      assert.equal(serverRecorder.receivedBytes, 0);
      server.resume();
      await serverRecorder.received(20 * KiB);
      assert.equal(patternMismatch(serverRecorder.bytes()), -1);
    });

    void it('write() returns false while the peer is paused, drain() follows its resume, and no byte is lost (32 MiB)', async (t) => {
      const { client, server } = await connected(h, t);
      const total = 32 * MiB;
      const chunkBytes = 64 * KiB;
      server.pause();
      const serverRecorder = record(server);
      const clientRecorder = record(client);
      let bytesSeenWhilePaused = -1;
      const { falses } = await pump(client, clientRecorder, total, chunkBytes, () => {
        void turns(5).then(() => {
          bytesSeenWhilePaused = serverRecorder.receivedBytes;
          server.resume();
        });
      });
      assert.ok(falses >= 1, 'write() never returned false');
      assert.ok(clientRecorder.drains >= 1);
      assert.equal(bytesSeenWhilePaused, 0);
      await serverRecorder.received(total);
      assert.equal(serverRecorder.receivedBytes, total);
      assert.equal(patternMismatch(serverRecorder.bytes()), -1);
      if (h.framed) assert.ok(serverRecorder.chunks.every((chunk) => chunk.byteLength === chunkBytes));
    });

    void it('end() sends every queued byte before closing', async (t) => {
      const { client, server } = await connected(h, t);
      const total = 8 * MiB;
      const serverRecorder = record(server);
      const clientRecorder = record(client);
      for (let offset = 0; offset < total; offset += 64 * KiB) client.write(pattern(offset, 64 * KiB));
      assert.ok(client.bufferedBytes > 0, 'expected bytes still queued when end() is called');
      client.end();
      assert.equal(client.write(pattern(0, 1)), false, 'write() after end() is refused');
      assert.equal(await serverRecorder.closed, undefined);
      assert.equal(serverRecorder.receivedBytes, total);
      assert.equal(patternMismatch(serverRecorder.bytes()), -1);
      assert.equal(await clientRecorder.closed, undefined);
    });

    void it('destroy(error) closes at once with that error, exactly once; the peer is closed too', async (t) => {
      const { client, server } = await connected(h, t);
      const serverRecorder = record(server);
      const clientRecorder = record(client);
      client.write(pattern(0, 1000));
      await serverRecorder.received(1000);
      const boom = new Error('boom');
      client.destroy(boom);
      assert.equal(await clientRecorder.closed, boom);
      const peerError = await serverRecorder.closed;
      if (h.peerSeesAbort) assert.ok(peerError instanceof Error, 'the peer of an abrupt close is told with an error');
      client.destroy(new Error('again'));
      client.end();
      assert.equal(client.write(pattern(0, 10)), false);
      await turns(10);
      assert.equal(clientRecorder.closeCalls, 1);
      assert.equal(serverRecorder.closeCalls, 1);
      assert.equal(clientRecorder.closeError, boom);
    });

    void it('leaves accepted connections open when the listener closes', async (t) => {
      const { client, server, listener } = await connected(h, t);
      record(server, (chunk) => server.write(chunk));
      const clientRecorder = record(client);
      await listener.close();
      client.write(pattern(0, 1000));
      await clientRecorder.received(1000);
      assert.equal(patternMismatch(clientRecorder.bytes()), -1);
      client.end();
      assert.equal(await clientRecorder.closed, undefined);
    });

    void it('refuses a second setHandlers()', async (t) => {
      const { client } = await connected(h, t);
      record(client);
      assert.throws(() => record(client), /already installed/);
    });
  });
}
