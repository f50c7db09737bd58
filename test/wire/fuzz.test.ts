import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CATALOG } from '../../src/errors.js';
import { FrameEncoder, HEADER_BYTES, MESSAGES, encodeFrame, messageFromJson, messageToJson } from '../../src/wire/index.js';
import { anyMessage } from './arbitraries.js';
import { concat, feed, splitAt } from './feed.js';
import type { FeedOutcome } from './feed.js';
import { referenceEncode } from './reference-encoder.js';

/** The only errors a frame decoder and body decoder may raise. */
const DECODE_ERRORS = new Set(['ATP_ERR_FRAME_TOO_LARGE', 'ATP_ERR_PROTOCOL', 'ATP_ERR_ENCODING']);

/** Cut points as fractions, so that they scale to any input length. */
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 });
const cutAt = (bytes: Uint8Array, fractions: number[]): Uint8Array[] =>
  splitAt(
    bytes,
    fractions.map((f) => Math.floor(f * bytes.length)),
  );

/** What every outcome on hostile input must satisfy. */
function assertSafe(out: FeedOutcome, maxFrameBytes: number): void {
  if (out.error !== undefined) {
    assert.ok(DECODE_ERRORS.has(out.error.code), `unexpected error code ${out.error.code}`);
    assert.equal(out.error.wire, ERROR_CATALOG[out.error.code].wire);
  }
  assert.ok(out.maxBuffered <= maxFrameBytes + HEADER_BYTES, `buffered ${out.maxBuffered} > ${maxFrameBytes} + 12`);
  // Whatever decodes must encode again, and decode to the same message: no value the decoder accepts is refused by the encoder.
  for (const m of out.messages) {
    const again = feed([encodeFrame(messageFromJson(m))], 0xffffffff);
    assert.deepEqual(again.messages, [m]);
  }
}

const RUNS = { numRuns: 2000 };

void test('random messages of every type round-trip through encode and decode, and the reference encoder agrees', () => {
  fc.assert(
    fc.property(anyMessage, (msg) => {
      const bytes = encodeFrame(msg);
      const json = messageToJson(msg);
      assert.equal(referenceEncode(json).toString('hex'), Buffer.from(bytes).toString('hex'));
      const out = feed([bytes], bytes.length);
      assert.equal(out.error, undefined);
      assert.deepEqual(out.messages, [json]);
    }),
    { seed: 0x41545001, ...RUNS },
  );
});

void test('random message sequences survive random chunking and batch the same through FrameEncoder', () => {
  fc.assert(
    fc.property(fc.array(anyMessage, { minLength: 1, maxLength: 6 }), cuts, (msgs, fractions) => {
      const enc = new FrameEncoder();
      for (const m of msgs) enc.push(m);
      assert.equal(enc.pendingFrames, msgs.length);
      const batch = enc.take();
      assert.ok(batch !== undefined);
      assert.deepEqual(batch, concat(msgs.map(encodeFrame)));
      const out = feed(cutAt(batch, fractions), 1 << 20);
      assert.equal(out.error, undefined);
      assert.equal(out.leftover, 0);
      assert.deepEqual(out.messages, msgs.map(messageToJson));
    }),
    { seed: 0x41545002, numRuns: 1000 },
  );
});

void test('random bytes yield frames or a catalog AtpError, never another exception, within the buffer bound', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 0, max: 4096 }), cuts, (bytes, max, fractions) => {
      assertSafe(feed(cutAt(bytes, fractions), max), max);
    }),
    { seed: 0x41545003, ...RUNS },
  );
});

/** Frames with plausible headers (registered, GREASE or random types; small lengths) and random bodies. */
const frameLike = fc
  .record({
    type: fc.oneof(
      fc.constantFrom(...Object.values(MESSAGES).map((s) => s.code)),
      fc.constantFrom(0x0000, 0x1a1a, 0xff00, 0xffff),
      fc.integer({ min: 0, max: 0xffff }),
    ),
    flags: fc.integer({ min: 0, max: 0xff }),
    stream: fc.integer({ min: 0, max: 0xffffffff }),
    body: fc.uint8Array({ maxLength: 120 }),
    lengthDelta: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -4, max: 4 }) }),
  })
  .map(({ type, flags, stream, body, lengthDelta }) => {
    const head = new Uint8Array(HEADER_BYTES);
    const view = new DataView(head.buffer);
    view.setUint32(0, Math.max(0, body.length + lengthDelta));
    view.setUint16(4, type);
    view.setUint8(6, flags);
    view.setUint32(8, stream);
    return concat([head, body]);
  });

void test('frames with random bodies under plausible headers yield messages or a catalog AtpError', () => {
  fc.assert(
    fc.property(fc.array(frameLike, { minLength: 1, maxLength: 5 }), cuts, (frames, fractions) => {
      assertSafe(feed(cutAt(concat(frames), fractions), 1024), 1024);
    }),
    { seed: 0x41545004, ...RUNS },
  );
});

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number }
  | { op: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

function mutate(bytes: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(bytes);
  for (const m of muts) {
    if (b.length === 0) break;
    const at = Math.min(b.length - 1, Math.floor(m.at * b.length));
    switch (m.op) {
      case 'flip':
        b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        b[at] = m.byte;
        break;
      case 'insert':
        b = concat([b.subarray(0, at), Uint8Array.of(m.byte), b.subarray(at)]);
        break;
      case 'delete':
        b = concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
    }
  }
  return b;
}

void test('mutated valid frames (flipped, set, inserted, deleted, truncated bytes) yield messages or a catalog AtpError', () => {
  fc.assert(
    fc.property(
      fc.array(anyMessage, { minLength: 1, maxLength: 3 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 64, max: 2048 }),
      cuts,
      (msgs, muts, max, fractions) => {
        const bytes = mutate(concat(msgs.map(encodeFrame)), muts);
        assertSafe(feed(cutAt(bytes, fractions), max), max);
      },
    ),
    { seed: 0x41545005, ...RUNS },
  );
});

void test('a mutation that leaves the bytes unchanged still decodes to the original messages', () => {
  // Guards the mutation harness itself: with no effective change the outcome must be the original.
  fc.assert(
    fc.property(fc.array(anyMessage, { minLength: 1, maxLength: 3 }), (msgs) => {
      const bytes = concat(msgs.map(encodeFrame));
      const out = feed([mutate(bytes, [])], 1 << 20);
      assert.deepEqual(out.messages, msgs.map(messageToJson));
    }),
    { seed: 0x41545006, numRuns: 200 },
  );
});
