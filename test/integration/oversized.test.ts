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
    'a LEASE larger than the worker accepts is a failed attempt, so a worker that accepts it takes it',
    { timeout: 60_000 },
    async () => {
      const { coord, url } = await startCoordinator({ maxAttempts: 5 });
      cleanup.push(() => coord.close());
      const small = new Worker({ url, concurrency: 1, maxMessageBytes: 1 * MiB });
      const seenBySmall: number[] = [];
      small.handle('blob', (a) => {
        seenBySmall.push(a.payload.length);
        return Promise.resolve('small');
      });
      await small.start();
      cleanup.push(() => small.close());
      const client = await Client.connect(url);
      cleanup.push(() => client.close());

      // 2 MiB: more than the small worker accepts.
      const h = await client.submit({ kind: 'blob', payload: new Uint8Array(2 * MiB).fill(7) });
      // Only the small worker is connected: attempts fail one after the other, then the artifact fails.
      const out = await h.result();
      assert.equal(out.state, 'FAILED');
      assert.equal(out.code, 'ATP_ERR_ATTEMPTS_EXHAUSTED', out.message);
      assert.match(out.message, /larger than worker/);
      assert.deepEqual(seenBySmall, [], 'the small worker was never sent the LEASE');
      assert.equal((await client.query(h.id)).attempts, 5, 'one failed attempt per try, maxAttempts of them');

      // With a worker that accepts it, a second artifact of the same size completes.
      const big = new Worker({ url, concurrency: 1 });
      big.handle('blob', (a) => Promise.resolve(`big ${a.payload.length}`));
      await big.start();
      cleanup.push(() => big.close());
      await small.close();
      const h2 = await client.submit({ kind: 'blob', payload: new Uint8Array(2 * MiB).fill(8) });
      const out2 = await h2.result();
      assert.equal(out2.state, 'COMPLETED');
      assert.equal(new TextDecoder().decode(out2.result), `big ${2 * MiB}`);
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
