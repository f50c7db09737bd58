/**
 * Fragmented messages at the codec level (ATP_WIRE §3.7): fragmenting and reassembling any message
 * at any fragment size, with whole frames in between and the stream cut anywhere; every refusal with
 * its code; the message limit checked before the message is allocated.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AtpError, ERROR_CATALOG } from '../../src/errors.js';
import { isAtpError } from '../../src/errors.js';
import {
  FrameDecoder,
  FrameFlags,
  HEADER_BYTES,
  MessageFragmenter,
  bodySegments,
  encodeFragments,
  encodeFrame,
  messageToJson,
} from '../../src/wire/index.js';
import type { Message } from '../../src/wire/index.js';
import { anyMessage, messageOf } from './arbitraries.js';
import { bytewise, concat, feed, splitAt } from './feed.js';

const MAX_MESSAGE = 1 << 20;
const MAX_FRAME = 1 << 20;
const { MORE, CONTINUATION } = FrameFlags;

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const header = (length: number, type: number, stream: number, flags: number): Uint8Array => {
  const h = new Uint8Array(HEADER_BYTES);
  const v = new DataView(h.buffer);
  v.setUint32(0, length);
  v.setUint16(4, type);
  v.setUint8(6, flags);
  v.setUint32(8, stream);
  return h;
};
const frameOf = (type: number, stream: number, flags: number, payload: Uint8Array): Uint8Array =>
  concat([header(payload.length, type, stream, flags), payload]);
const bodyOf = (m: Message): Uint8Array => encodeFrame(m).subarray(HEADER_BYTES);

const submit = (stream: number, n: number): Message => ({
  type: 'SUBMIT',
  stream,
  artifactId: new Uint8Array(16).fill(stream),
  kind: 'k',
  priority: 0,
  latePolicy: 0,
  quorumK: 0,
  quorumN: 0,
  leaseTtlMs: 0,
  maxDurationMs: 0,
  deadlineMs: 0,
  maxAttempts: 0,
  watch: 0,
  parentId: new Uint8Array(16),
  tags: [],
  payload: Uint8Array.from({ length: n }, (_, i) => (i * 7 + stream) & 0xff),
});
const ping: Message = { type: 'PING', stream: 0, nonce: 3 };

/** A message whose body has at least 2 bytes, with bytes fields up to a few KiB. */
const largeish = fc.tuple(anyMessage, fc.uint8Array({ minLength: 0, maxLength: 5000 })).map(([m, extra]) => {
  const rec = { ...m } as Record<string, unknown>;
  for (const k of ['payload', 'result', 'data', 'checkpoint']) if (rec[k] instanceof Uint8Array) rec[k] = extra;
  return rec as unknown as Message;
});
const control = fc.oneof(
  messageOf('PING'),
  messageOf('PONG'),
  messageOf('RENEW'),
  messageOf('CANCEL'),
  messageOf('WINDOW'),
  messageOf('CREDIT'),
);

void describe('fragmenting and reassembling', () => {
  void test('any message, at any fragment size, with whole frames between the fragments and the stream cut anywhere, decodes to the same messages in order (ATP-4.5-7, ATP-4.5-9)', () => {
    fc.assert(
      fc.property(
        largeish,
        fc.integer({ min: 5, max: 6000 }),
        fc.array(fc.tuple(fc.nat(), control), { maxLength: 6 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
        (msg, size, inserts, cuts) => {
          const frags = encodeFragments(msg, size);
          assert.ok(frags.length >= 2);
          // Whole frames go after fragment k (not after the last: they would simply follow the message).
          const frames: Uint8Array[] = [];
          const expected: Message[] = [];
          frags.forEach((f, k) => {
            frames.push(f);
            if (k === frags.length - 1) return;
            for (const [at, c] of inserts) {
              if (at % (frags.length - 1) !== k) continue;
              frames.push(encodeFrame(c));
              expected.push(c);
            }
          });
          expected.push(msg);
          const bytes = concat(frames);
          const out = feed(
            splitAt(
              bytes,
              cuts.map((c) => Math.floor(c * bytes.length)),
            ),
            MAX_FRAME,
            MAX_MESSAGE,
          );
          assert.equal(out.error, undefined, out.error?.message);
          assert.deepEqual(out.messages, expected.map(messageToJson));
          assert.equal(out.fragments, frags.length);
          assert.equal(out.incomplete, false);
        },
      ),
      { seed: 0x41545101, numRuns: 600 },
    );
  });

  void test('the fragments carry exactly the body of the unfragmented frame, with the flags of first, middle and last', () => {
    fc.assert(
      fc.property(largeish, fc.integer({ min: 5, max: 3000 }), (msg, size) => {
        const frags = encodeFragments(msg, size);
        const body = bodyOf(msg);
        const parts: Uint8Array[] = [];
        frags.forEach((f, k) => {
          const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
          const flags = v.getUint8(6);
          assert.equal(v.getUint32(0), f.length - HEADER_BYTES);
          assert.ok(v.getUint32(0) <= size);
          assert.equal(flags, (k === 0 ? 0 : CONTINUATION) | (k === frags.length - 1 ? 0 : MORE));
          if (k === 0) assert.equal(v.getUint32(HEADER_BYTES), body.length);
          parts.push(f.subarray(HEADER_BYTES + (k === 0 ? 4 : 0)));
        });
        assert.deepEqual(concat(parts), body);
      }),
      { seed: 0x41545102, numRuns: 400 },
    );
  });

  void test('bodySegments references large bytes fields instead of copying them, and concatenates to the body', () => {
    fc.assert(
      fc.property(largeish, fc.integer({ min: 1, max: 6000 }), (msg, inlineMax) => {
        const segs = bodySegments(msg, inlineMax);
        assert.deepEqual(concat(segs), bodyOf(msg));
        const rec = msg as unknown as Record<string, unknown>;
        const big = rec['payload'] ?? rec['result'] ?? rec['data'];
        if (big instanceof Uint8Array && big.length >= inlineMax) assert.ok(segs.includes(big), 'the payload itself is a segment');
      }),
      { seed: 0x41545103, numRuns: 300 },
    );
  });

  void test('a SUBMIT in fragments with a PING between them decodes the same fed one byte at a time and cut at every point', () => {
    const [a, b, c] = encodeFragments(submit(5, 700), 300) as [Uint8Array, Uint8Array, Uint8Array];
    const bytes = concat([a, encodeFrame(ping), b, c]);
    const expected = [ping, submit(5, 700)].map(messageToJson);
    assert.deepEqual(feed(bytewise(bytes), MAX_FRAME, MAX_MESSAGE).messages, expected);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const out = feed(splitAt(bytes, [cut]), MAX_FRAME, MAX_MESSAGE);
      assert.equal(out.error, undefined, `cut at ${cut}`);
      assert.deepEqual(out.messages, expected, `cut at ${cut}`);
    }
  });

  void test('next() writes into a given buffer when it is large enough', () => {
    const f = new MessageFragmenter(submit(1, 1000));
    const buf = new Uint8Array(HEADER_BYTES + 256);
    const first = f.next(256, buf);
    assert.equal(first.buffer, buf.buffer);
    assert.equal(f.next(256, new Uint8Array(10)).length, HEADER_BYTES + 256, 'a buffer too small is not used');
    assert.throws(() => new MessageFragmenter({ ...ping, stream: -1 }), RangeError);
    const g = new MessageFragmenter(ping);
    assert.throws(() => g.next(4), RangeError, 'a first fragment needs room for one byte of the body');
  });
});

/** Feeds `bytes` whole and one byte at a time; both must fail with `code` (at the same byte for the second). */
function refused(bytes: Uint8Array, code: keyof typeof ERROR_CATALOG, maxMessage = MAX_MESSAGE): AtpError {
  const whole = feed([bytes], MAX_FRAME, maxMessage);
  assert.equal(whole.error?.code, code, whole.error?.message ?? 'no error');
  const drip = feed(bytewise(bytes), MAX_FRAME, maxMessage);
  assert.equal(drip.error?.code, code);
  return whole.error;
}

void describe('refusals (ATP_WIRE §3.7, ATP-4.5-5 to ATP-4.5-7)', () => {
  const body = bodyOf(submit(5, 400));
  const T = 0x0010;
  const first = frameOf(T, 5, MORE, concat([u32(body.length), body.subarray(0, 100)]));
  const cases: Array<[string, Uint8Array, keyof typeof ERROR_CATALOG, number?]> = [
    ['a continuation with no message in progress', frameOf(T, 5, CONTINUATION, body.subarray(0, 10)), 'ATP_ERR_PROTOCOL'],
    [
      'a continuation of another type',
      concat([first, frameOf(0x0003, 5, CONTINUATION | MORE, body.subarray(100, 110))]),
      'ATP_ERR_PROTOCOL',
    ],
    ['a continuation on another stream', concat([first, frameOf(T, 7, CONTINUATION | MORE, body.subarray(100, 110))]), 'ATP_ERR_PROTOCOL'],
    ['a second first fragment while one is in progress', concat([first, first]), 'ATP_ERR_PROTOCOL'],
    ['a fragment before WELCOME', first, 'ATP_ERR_PROTOCOL', 0],
    ['a first fragment without a byte of the body', frameOf(T, 5, MORE, u32(body.length)), 'ATP_ERR_ENCODING'],
    ['an empty continuation', concat([first, frameOf(T, 5, CONTINUATION | MORE, new Uint8Array(0))]), 'ATP_ERR_ENCODING'],
    [
      'a message length over the limit',
      frameOf(T, 5, MORE, concat([u32(MAX_MESSAGE + 1), body.subarray(0, 100)])),
      'ATP_ERR_FRAME_TOO_LARGE',
    ],
    ['a message length below the fixed part', frameOf(T, 5, MORE, concat([u32(10), body.subarray(0, 5)])), 'ATP_ERR_ENCODING'],
    ['a first fragment holding the whole body', frameOf(T, 5, MORE, concat([u32(body.length), body])), 'ATP_ERR_ENCODING'],
    [
      'a fragment past the length',
      concat([first, frameOf(T, 5, CONTINUATION, concat([body.subarray(100), Uint8Array.of(0)]))]),
      'ATP_ERR_ENCODING',
    ],
    [
      'a last fragment that ends short',
      concat([first, frameOf(T, 5, CONTINUATION, body.subarray(100, body.length - 1))]),
      'ATP_ERR_ENCODING',
    ],
    [
      'MORE on the fragment that completes the body',
      concat([first, frameOf(T, 5, CONTINUATION | MORE, body.subarray(100))]),
      'ATP_ERR_ENCODING',
    ],
    ['a fragment over the frame limit', concat([first, header(MAX_FRAME + 1, T, 5, CONTINUATION | MORE)]), 'ATP_ERR_FRAME_TOO_LARGE'],
  ];
  for (const [what, bytes, code, maxMessage] of cases) {
    void test(`${what} → ${code}`, () => {
      refused(bytes, code, maxMessage);
    });
  }

  void test('a reassembled body that does not decode → ATP_ERR_ENCODING once its last fragment arrives', () => {
    const bad = Uint8Array.from(body);
    bad.set([0xc0, 0xae], 18); // the kind, as an overlong UTF-8 sequence
    const bytes = concat(
      encodeFragments(submit(5, 400), 200).map((f, k) => (k === 0 ? concat([f.subarray(0, 16), bad.subarray(0, 196)]) : f)),
    );
    refused(bytes, 'ATP_ERR_ENCODING');
  });

  void test('the decoder stays poisoned after a fragment error', () => {
    const d = new FrameDecoder(MAX_FRAME, MAX_MESSAGE);
    const bad = frameOf(T, 5, CONTINUATION, body.subarray(0, 10));
    let first: unknown;
    assert.throws(
      () => d.push(bad, () => undefined),
      (e: unknown) => ((first = e), isAtpError(e, 'ATP_ERR_PROTOCOL')),
    );
    assert.throws(
      () => d.push(encodeFrame(ping), () => undefined),
      (e: unknown) => e === first,
    );
  });
});

void describe('the message limit is checked before the message is allocated (ATP-4.5-6)', () => {
  void test('a length one over the limit fails from the first 16 bytes with nothing allocated; at the limit, the buffer is allocated once', () => {
    const over = frameOf(0x0010, 5, MORE, concat([u32(MAX_MESSAGE + 1), new Uint8Array(64)]));
    const d = new FrameDecoder(MAX_FRAME, MAX_MESSAGE);
    d.push(over.subarray(0, 15), () => undefined);
    assert.equal(d.reservedBytes, 0);
    assert.throws(
      () => d.push(over.subarray(15, 16), () => undefined),
      (e: unknown) => isAtpError(e, 'ATP_ERR_FRAME_TOO_LARGE'),
    );
    assert.equal(d.reservedBytes, 0);

    const at = frameOf(0x0010, 5, MORE, concat([u32(MAX_MESSAGE), new Uint8Array(64)]));
    const ok = new FrameDecoder(MAX_FRAME, MAX_MESSAGE);
    ok.push(at.subarray(0, 15), () => undefined);
    assert.equal(ok.reservedBytes, 0, 'nothing allocated before the length has arrived');
    ok.push(at.subarray(15), () => undefined);
    assert.equal(ok.reservedBytes, MAX_MESSAGE, 'one buffer of the announced length');
    assert.equal(ok.bufferedBytes, 64);
    assert.ok(ok.inMessage && !ok.inFrame);
  });

  void test('a fragmented message of an unregistered type is read past without being kept', () => {
    const grease = concat([
      frameOf(0x2a3a, 1, MORE, concat([u32(5000), new Uint8Array(1000)])),
      frameOf(0x2a3a, 1, CONTINUATION, new Uint8Array(4000)),
    ]);
    const d = new FrameDecoder(MAX_FRAME, MAX_MESSAGE);
    let reserved = 0;
    let delivered = 0;
    for (const chunk of splitAt(grease, [100, 1500, 3000])) {
      d.push(chunk, (f) => {
        delivered++;
        assert.equal(f.payload.length, 0);
        assert.equal(f.frames, 2);
      });
      reserved = Math.max(reserved, d.reservedBytes);
    }
    assert.equal(reserved, 0);
    assert.equal(delivered, 1);
  });

  void test('mutated fragmented streams yield messages or a catalog error, and never allocate more than the limit and a frame', () => {
    const DECODE = new Set(['ATP_ERR_FRAME_TOO_LARGE', 'ATP_ERR_PROTOCOL', 'ATP_ERR_ENCODING']);
    fc.assert(
      fc.property(
        largeish,
        fc.integer({ min: 5, max: 800 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (msg, size, muts) => {
          const bytes = Uint8Array.from(concat([...encodeFragments(msg, size), encodeFrame(ping)]));
          for (const [at, byte] of muts) bytes[Math.min(bytes.length - 1, Math.floor(at * bytes.length))] = byte;
          const limit = 64 * 1024;
          const out = feed([bytes], 4096, limit);
          if (out.error !== undefined) assert.ok(DECODE.has(out.error.code), out.error.code);
          assert.ok(out.maxReserved <= limit + 4096, `reserved ${out.maxReserved}`);
        },
      ),
      { seed: 0x41545104, numRuns: 1000 },
    );
  });
});
