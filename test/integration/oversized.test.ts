/**
 * Messages larger than the receiving side accepts (ATP_WIRE §3.7: maxMessageBytes in HELLO and
 * WELCOME), end to end over TCP: nothing oversized is sent, nothing crashes, and each side is told
 * with ATP_ERR_PAYLOAD_TOO_LARGE.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { AtpError } from '../../src/errors.js';
import { Worker } from '../../src/worker/worker.js';
import { cleanupAfterEach, startCoordinator } from './helpers.js';

const cleanup = cleanupAfterEach();
const KiB = 1024;
const MiB = 1024 * KiB;

void describe('messages larger than the receiver accepts (ATP_WIRE §3.7)', () => {
  void it(
    'an artifact whose LEASE is larger than a worker accepts is not leased to it, and waits for one that accepts it (ATP-3.10-6)',
    { timeout: 60_000 },
    async () => {
      const { coord, url } = await startCoordinator();
      cleanup.push(() => coord.close());
      const small = new Worker({ url, concurrency: 2, maxMessageBytes: 1 * MiB });
      const seenBySmall: number[] = [];
      small.handle('blob', (a) => {
        seenBySmall.push(a.payload.length);
        return Promise.resolve(`small ${a.payload.length}`);
      });
      await small.start();
      cleanup.push(() => small.close());
      const client = await Client.connect(url);
      cleanup.push(() => client.close());

      // 2 MiB: more than the small worker accepts; 100 KiB: less.
      const big = await client.submit({ kind: 'blob', payload: new Uint8Array(2 * MiB).fill(7) });
      const fits = await client.submit({ kind: 'blob', payload: new Uint8Array(100 * KiB).fill(8) });
      assert.equal(new TextDecoder().decode((await fits.result()).result), `small ${100 * KiB}`);
      const waiting = await client.query(big.id);
      assert.equal(waiting.state, 'PENDING', 'the large one waits');
      assert.equal(waiting.attempts, 0, 'no attempt was used up');

      const large = new Worker({ url, concurrency: 1 });
      large.handle('blob', (a) => Promise.resolve(`large ${a.payload.length}`));
      await large.start();
      cleanup.push(() => large.close());
      const out = await big.result();
      assert.equal(out.state, 'COMPLETED');
      assert.equal(new TextDecoder().decode(out.result), `large ${2 * MiB}`);
      assert.deepEqual(seenBySmall, [100 * KiB], 'the small worker was never sent the large LEASE');
    },
  );

  void it('a result larger than the coordinator accepts becomes a non-retryable FAIL that says so', { timeout: 60_000 }, async () => {
    const { coord, url } = await startCoordinator({ maxMessageBytes: 1 * MiB });
    cleanup.push(() => coord.close());
    const worker = new Worker({ url, concurrency: 1 });
    let runs = 0;
    worker.handle('huge.result', () => {
      runs++;
      return Promise.resolve(new Uint8Array(3 * MiB));
    });
    await worker.start();
    cleanup.push(() => worker.close());
    const client = await Client.connect(url);
    cleanup.push(() => client.close());
    const h = await client.submit({ kind: 'huge.result', payload: 'x' });
    const out = await h.result();
    assert.equal(out.state, 'FAILED');
    assert.equal(out.code, 'ATP_ERR_PAYLOAD_TOO_LARGE');
    assert.match(out.message, /the result is 3145728 bytes/);
    assert.equal(runs, 1, 'not retried: another attempt would make the same bytes');
  });

  void it(
    'a RESULT larger than the producer accepts is an ERROR on its stream; the result stays in the store',
    { timeout: 60_000 },
    async () => {
      const { coord, url } = await startCoordinator();
      cleanup.push(() => coord.close());
      const worker = new Worker({ url, concurrency: 1 });
      worker.handle('big.answer', () => Promise.resolve(new Uint8Array(2 * MiB).fill(1)));
      await worker.start();
      cleanup.push(() => worker.close());
      const client = await Client.connect(url, { maxMessageBytes: 1 * MiB });
      cleanup.push(() => client.close());
      const h = await client.submit({ kind: 'big.answer', payload: 'y' });
      await assert.rejects(h.result(), (err: unknown) => err instanceof AtpError && err.code === 'ATP_ERR_PAYLOAD_TOO_LARGE');
      // Another client, which accepts it, reads the same result.
      const other = await Client.connect(url);
      cleanup.push(() => other.close());
      const again = await other.submit({ kind: 'big.answer', payload: 'y' });
      const out = await again.result();
      assert.equal(out.state, 'COMPLETED');
      assert.equal(out.result.length, 2 * MiB);
    },
  );

  void it(
    'a SUBMIT larger than the coordinator accepts is refused before anything is sent, and the client goes on',
    { timeout: 60_000 },
    async () => {
      const { coord, url } = await startCoordinator({ maxMessageBytes: 1 * MiB });
      cleanup.push(() => coord.close());
      const client = await Client.connect(url);
      cleanup.push(() => client.close());
      await assert.rejects(
        client.submit({ kind: 'k', payload: new Uint8Array(2 * MiB) }),
        (err: unknown) => err instanceof AtpError && err.code === 'ATP_ERR_PAYLOAD_TOO_LARGE',
      );
      const h = await client.submit({ kind: 'k', payload: new Uint8Array(512 * KiB), follow: 'none' });
      assert.equal(h.acceptedState, 'PENDING');
    },
  );
});
