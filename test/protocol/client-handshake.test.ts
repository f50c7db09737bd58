/**
 * The client side of the handshake (ATP_SPEC ATP-4.1-7, ATP-11.8-5): a coordinator that accepts the
 * connection and never answers does not hold its client, which tries the next address.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { AtpError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { Worker } from '../../src/worker/worker.js';

void describe('client handshake: a coordinator that accepts and never answers', () => {
  let silent: net.Server;
  let silentUrl = '';
  let coord: Coordinator;
  let coordUrl = '';
  const held: net.Socket[] = [];

  before(async () => {
    // Accepts, reads and answers nothing: a paused or wedged coordinator, as its clients see it.
    silent = net.createServer((sock) => {
      held.push(sock);
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentUrl = `tcp://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    coord = new Coordinator({ store: new MemoryStore() });
    coordUrl = (await coord.listen('tcp://127.0.0.1:0')).url;
  });

  after(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    await coord.close();
  });

  void it('gives up with ATP_ERR_HANDSHAKE_TIMEOUT when it has no other address', async () => {
    await assert.rejects(Client.connect(silentUrl, { transport: { timeoutMs: 200 } }), (err: unknown) => {
      assert.ok(err instanceof AtpError);
      assert.equal(err.code, 'ATP_ERR_HANDSHAKE_TIMEOUT');
      assert.match(err.message, /no WELCOME from tcp:\/\/127\.0\.0\.1:\d+ within 200 ms/);
      return true;
    });
  });

  void it('a producer tries its fallback address, and works there', async () => {
    const client = await Client.connect(silentUrl, { fallbackUrls: [coordUrl], transport: { timeoutMs: 200 } });
    try {
      assert.equal(client.connection.connected, true);
      const worker = new Worker({ url: silentUrl, fallbackUrls: [coordUrl], transport: { timeoutMs: 200 } });
      worker.handle('hs.echo', async (a) => Promise.resolve(a.payload));
      await worker.start();
      const [h] = await client.submitMany([{ kind: 'hs.echo', payload: 'hello' }]);
      const out = await h!.result();
      assert.equal(out.state, 'COMPLETED');
      assert.equal(new TextDecoder().decode(out.result), 'hello');
      await worker.close();
    } finally {
      await client.close();
    }
  });
});
