import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameEncoder, decodeAll, encodeFrame } from '../../src/wire/index.js';
import type { Message } from '../../src/wire/index.js';

const ping = (nonce: number): Message => ({ type: 'PING', stream: 0, nonce });
const partial = (seq: number, size: number): Message => ({
  type: 'PARTIAL',
  stream: 2 * seq + 1,
  leaseId: new Uint8Array(16).fill(seq & 0xff),
  epoch: 1,
  seq,
  data: new Uint8Array(size).fill(seq & 0xff),
});

void test('FrameEncoder batches pushed frames into one buffer equal to their encodings in order', () => {
  const enc = new FrameEncoder();
  const msgs = [ping(1), partial(1, 10), ping(2), partial(2, 0)];
  for (const m of msgs) enc.push(m);
  assert.equal(enc.pendingFrames, 4);
  const expected = Buffer.concat(msgs.map(encodeFrame));
  assert.equal(enc.pendingBytes, expected.length);
  assert.deepEqual(Buffer.from(enc.take()!), expected);
  assert.deepEqual(decodeAll(new Uint8Array(expected), 1024), msgs);
});

void test('FrameEncoder.take starts afresh and returns undefined when nothing is pending', () => {
  const enc = new FrameEncoder();
  assert.equal(enc.take(), undefined);
  enc.push(ping(1));
  const first = enc.take();
  assert.equal(enc.pendingBytes, 0);
  assert.equal(enc.pendingFrames, 0);
  assert.equal(enc.take(), undefined);
  enc.push(ping(2));
  assert.deepEqual(enc.take(), encodeFrame(ping(2)));
  assert.deepEqual(first, encodeFrame(ping(1)), 'a taken buffer is not overwritten by later pushes');
});

void test('FrameEncoder grows past its initial 16 KiB and past 4 MiB, keeping earlier frames intact', () => {
  const enc = new FrameEncoder();
  const msgs = [partial(1, 100), partial(2, 20_000), partial(3, 5 * 1024 * 1024), ping(9)];
  for (const m of msgs) enc.push(m);
  const out = enc.take()!;
  assert.deepEqual(Buffer.from(out), Buffer.concat(msgs.map(encodeFrame)));
  // After a batch over 4 MiB the encoder drops its large buffer; it must still encode correctly.
  enc.push(ping(10));
  assert.deepEqual(enc.take(), encodeFrame(ping(10)));
});

void test('a push that throws leaves the pending frames as they were', () => {
  const enc = new FrameEncoder();
  enc.push(ping(1));
  const before = enc.pendingBytes;
  assert.throws(
    () => enc.push({ type: 'ERROR', stream: 1, code: 4, offendingType: 0, subject: new Uint8Array(16), message: 'x'.repeat(2000) }),
    RangeError,
  );
  assert.equal(enc.pendingBytes, before);
  assert.equal(enc.pendingFrames, 1);
  enc.push(ping(2));
  assert.deepEqual(decodeAll(enc.take()!, 64), [ping(1), ping(2)]);
});
