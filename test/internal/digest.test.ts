import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ownedBytes } from '../../src/internal/bytes.js';
import { DIGEST_AT_ONCE_BYTES, OrderedDigests, artifactDigestAsync, artifactDigestSliced } from '../../src/internal/digest.js';
import { artifactDigest } from '../../src/internal/ids.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

void test('the sliced digest is the artifact digest, at every size around the slice boundaries (ATP-3.10-9)', async () => {
  for (const n of [0, 1, DIGEST_AT_ONCE_BYTES - 1, DIGEST_AT_ONCE_BYTES, DIGEST_AT_ONCE_BYTES + 1, 3 * DIGEST_AT_ONCE_BYTES + 17]) {
    const payload = randomBytes(n);
    const sliced = await new Promise<Uint8Array>((resolve) => artifactDigestSliced('k.ind', payload, resolve));
    assert.equal(hex(sliced), hex(artifactDigest('k.ind', payload)), `${n} bytes`);
    assert.equal(hex(await artifactDigestAsync('k.ind', payload)), hex(artifactDigest('k.ind', payload)), `${n} bytes`);
  }
});

void test('a large payload is hashed across event-loop turns: other callbacks run between its slices', async () => {
  const payload = randomBytes(8 * DIGEST_AT_ONCE_BYTES);
  let turns = 0;
  let done = false;
  const tick = (): void => {
    if (done) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  await artifactDigestAsync('k', payload);
  done = true;
  assert.ok(turns >= 4, `only ${turns} other callbacks ran while 8 slices were hashed`);
});

void test('OrderedDigests answers in order per key: a small payload waits behind a large one, other keys do not', async () => {
  const d = new OrderedDigests<string>();
  const order: string[] = [];
  const big = randomBytes(3 * DIGEST_AT_ONCE_BYTES);
  const small = randomBytes(10);
  let all!: () => void;
  const finished = new Promise<void>((r) => (all = r));
  d.run('a', 'k', big, (g) => {
    assert.equal(hex(g!), hex(artifactDigest('k', big)));
    order.push('a:big');
  });
  d.run('a', 'k', small, (g) => {
    assert.equal(hex(g!), hex(artifactDigest('k', small)));
    order.push('a:small');
  });
  d.run('a', 'k', undefined, (g) => {
    assert.equal(g, undefined);
    order.push('a:none');
    all();
  });
  d.run('b', 'k', small, () => order.push('b:small'));
  // Key b had nothing waiting and a small payload: answered at once, synchronously.
  assert.deepEqual(order, ['b:small']);
  assert.equal(d.pending, 1);
  await finished;
  assert.deepEqual(order, ['b:small', 'a:big', 'a:small', 'a:none']);
  assert.equal(d.pending, 0);
});

void test('ownedBytes keeps a view that owns most of its buffer and copies a small view of a large one', () => {
  const whole = new Uint8Array(1000);
  const view = whole.subarray(10);
  assert.equal(ownedBytes(view), view);
  const small = ownedBytes(whole.subarray(10, 20));
  assert.notEqual(small.buffer, whole.buffer);
  assert.equal(small.length, 10);
});
