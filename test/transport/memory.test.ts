import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectMemory, listenMemory, memoryPair } from '../../src/transport/memory.js';
import { transportContract } from './contract.js';
import { pattern, patternMismatch, record, turns } from './helpers.js';

let names = 0;
for (const framed of [false, true]) {
  transportContract({
    name: framed ? 'memory (framed)' : 'memory',
    kind: 'memory',
    framed,
    peerSeesAbort: true,
    listen: (onAccept) => listenMemory(`contract-${framed}-${++names}`, onAccept, { framed }),
    connect: (url) => connectMemory(new URL(url).host),
  });
}

void describe('memory', () => {
  void it('delivers asynchronously, never inside write()', async () => {
    const [a, b] = memoryPair();
    const recorder = record(b);
    record(a);
    a.write(Uint8Array.of(1));
    assert.equal(recorder.receivedBytes, 0);
    await recorder.received(1);
    a.destroy();
  });

  void it('never calls data() re-entrantly, even when a handler writes back', async () => {
    const [a, b] = memoryPair();
    let depth = 0;
    let maxDepth = 0;
    let rounds = 0;
    const done = new Promise<void>((resolve) => {
      const bounce = (self: typeof a) => (chunk: Uint8Array) => {
        depth++;
        maxDepth = Math.max(maxDepth, depth);
        if (++rounds < 100) self.write(chunk);
        else resolve();
        depth--;
      };
      record(a, bounce(a));
      record(b, bounce(b));
    });
    a.write(Uint8Array.of(42));
    await done;
    assert.equal(maxDepth, 1);
    a.destroy();
  });

  void it('drains only after the paused reader resumed and read everything', async () => {
    const [a, b] = memoryPair({ highWaterMarkBytes: 1024 });
    b.pause();
    const reader = record(b);
    const writer = record(a);
    assert.equal(a.write(pattern(0, 1024)), true);
    assert.equal(a.write(pattern(1024, 1)), false);
    assert.equal(a.bufferedBytes, 1025);
    await turns(20);
    assert.equal(writer.drains, 0);
    assert.equal(reader.receivedBytes, 0);
    const drained = writer.nextDrain();
    b.resume();
    await drained;
    assert.equal(a.bufferedBytes, 0);
    assert.equal(reader.receivedBytes, 1025);
    assert.equal(patternMismatch(reader.bytes()), -1);
    a.destroy();
  });

  void it('keeps one data() call per write() when framed, and may merge writes when not', async () => {
    for (const framed of [true, false]) {
      const [a, b] = memoryPair({ framed });
      b.pause();
      const reader = record(b);
      record(a);
      a.write(pattern(0, 10));
      a.write(pattern(10, 20));
      a.write(pattern(30, 30));
      await turns(5);
      b.resume();
      await reader.received(60);
      assert.deepEqual(
        reader.chunks.map((chunk) => chunk.byteLength),
        framed ? [10, 20, 30] : [60],
      );
      assert.equal(patternMismatch(reader.bytes()), -1);
      a.destroy();
    }
  });

  void it('reports a reset to the peer of destroy() and drops what it had not read', async () => {
    const [a, b] = memoryPair();
    b.pause();
    const reader = record(b);
    record(a);
    a.write(pattern(0, 100));
    a.destroy();
    assert.match((await reader.closed)?.message ?? '', /connection reset by peer/);
    assert.equal(reader.receivedBytes, 0);
  });

  void it('keeps a registry of memory:// names', async () => {
    const listener = await listenMemory('registry-test', (transport) => transport.destroy());
    assert.equal(listener.url, 'memory://registry-test');
    await assert.rejects(
      listenMemory('registry-test', () => {}),
      { message: 'cannot listen on memory://registry-test: address in use' },
    );
    const client = await connectMemory('registry-test');
    assert.equal(client.remote, 'memory://registry-test');
    const recorder = record(client);
    assert.ok((await recorder.closed) instanceof Error);
    await listener.close();
    await assert.rejects(connectMemory('registry-test'), {
      message: 'cannot connect to memory://registry-test: nothing listens there (is the coordinator running?)',
    });
    assert.throws(() => connectMemory('a/b'), TypeError);
  });
});
