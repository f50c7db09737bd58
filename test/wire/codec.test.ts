import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AtpError, isAtpError } from '../../src/errors.js';
import { decodeBodyWith } from '../../src/wire/codec.js';
import {
  FrameDecoder,
  HEADER_BYTES,
  Limits,
  MESSAGES,
  bodyBytes,
  decodeAll,
  decodeBody,
  encodeFrame,
  isGrease,
  messageNameOf,
  minBodyBytes,
  utf8Length,
} from '../../src/wire/index.js';
import type { Message, MessageSpec } from '../../src/wire/index.js';

const ZERO_ID = new Uint8Array(16);
const errorMsg = (message: string): Message => ({ type: 'ERROR', stream: 1, code: 4, offendingType: 0, subject: ZERO_ID, message });

void describe('the schema', () => {
  void test('gives every message type a distinct code outside the reserved and GREASE ranges', () => {
    const codes = Object.values(MESSAGES).map((s) => s.code);
    assert.equal(new Set(codes).size, codes.length);
    for (const c of codes) {
      assert.ok(c > 0 && c < 0xff00, `0x${c.toString(16)}`);
      assert.ok(!isGrease(c), `0x${c.toString(16)} is a GREASE value`);
    }
    for (const [name, spec] of Object.entries(MESSAGES)) assert.equal(messageNameOf(spec.code), name);
  });

  void test('lists extension ids in strictly ascending order, none GREASE, so that encoding is canonical', () => {
    for (const spec of Object.values(MESSAGES) as MessageSpec[]) {
      const ids = spec.ext.map((x) => x.id);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
      );
      assert.equal(new Set(ids).size, ids.length);
      for (const id of ids) assert.ok(id > 0 && !isGrease(id));
    }
  });

  void test('has distinct field names per message and a bound on every string and list field', () => {
    for (const [name, spec] of Object.entries(MESSAGES) as [string, MessageSpec][]) {
      const names = [...spec.fields, ...spec.ext].map((f) => f.name);
      assert.equal(new Set(names).size, names.length, name);
      assert.ok(!names.includes('type') && !names.includes('stream'), name);
      for (const f of [...spec.fields, ...spec.ext]) {
        if (['str', 'strs', 'ids', 'sbytes'].includes(f.kind)) assert.ok(f.max !== undefined, `${name}.${f.name} has no max`);
      }
    }
  });

  void test('minBodyBytes is the size of the smallest message of each type', () => {
    assert.equal(minBodyBytes(MESSAGES.PING.code), 4);
    assert.equal(minBodyBytes(MESSAGES.ACK.code), 18);
    assert.equal(minBodyBytes(0x1a1a), undefined);
  });
});

void describe('strings', () => {
  void test('utf8Length equals Buffer.byteLength for random strings, lone surrogates included', () => {
    const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const surrogateHeavy = fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uD83D\uDE00', 'a', 'é', '€');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: anyCodeUnit, maxLength: 64 }),
          fc.string({ unit: surrogateHeavy, maxLength: 16 }),
          fc.string({ unit: 'binary', maxLength: 64 }),
        ),
        (s) => {
          assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'));
        },
      ),
      { seed: 0x41545010, numRuns: 3000 },
    );
    for (const s of ['', '\uD800', '\uD800\uD800\uDC00', '\uDC00\uD800', 'x\uD83D', '\uD83D\uDE00\uD83D']) {
      assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
    }
  });

  void test('a leading U+FEFF survives a round trip: decoders do not strip a BOM', () => {
    const msg = errorMsg('\uFEFFhello');
    assert.deepEqual(decodeAll(encodeFrame(msg), 1024), [msg]);
  });

  void test('a string of exactly its maximum length round-trips, one byte more is refused by the encoder', () => {
    const max = Limits.MAX_REASON_BYTES;
    const ok = errorMsg('é'.repeat(max / 2));
    assert.deepEqual(decodeAll(encodeFrame(ok), 4096), [ok]);
    assert.throws(() => encodeFrame(errorMsg('é'.repeat(max / 2) + 'x')), RangeError);
  });
});

void describe('the encoder', () => {
  const ping = (nonce: unknown, stream: unknown = 0): Message => ({ type: 'PING', stream, nonce }) as unknown as Message;

  void test('throws RangeError for integers out of range, non-integers and bad stream ids', () => {
    for (const bad of [-1, 2 ** 32, 1.5, NaN, '1', undefined]) assert.throws(() => encodeFrame(ping(bad)), RangeError, String(bad));
    assert.throws(() => encodeFrame(ping(1, 2 ** 31)), RangeError);
    assert.throws(() => encodeFrame(ping(1, -1)), RangeError);
  });

  void test('throws RangeError for an id that is not 16 bytes and for a list over its limit', () => {
    assert.throws(() => encodeFrame({ ...(errorMsg('x') as Message & { type: 'ERROR' }), subject: new Uint8Array(15) }), RangeError);
    const tags = Array.from({ length: Limits.MAX_TAGS + 1 }, (_, i) => `t${i}`);
    const submit = {
      type: 'SUBMIT',
      stream: 1,
      artifactId: new Uint8Array(16).fill(1),
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
      parentId: ZERO_ID,
      tags,
      payload: new Uint8Array(0),
    } as Message;
    assert.throws(() => encodeFrame(submit), RangeError);
  });

  void test('refuses a SHA-256 digest that is not 32 bytes, and accepts an unknown algorithm of any length', () => {
    const accepted = (digest: { alg: number; value: Uint8Array }): Message => ({
      type: 'ACCEPTED',
      stream: 1,
      artifactId: ZERO_ID,
      digest,
      state: 1,
      duplicate: 0,
    });
    assert.throws(() => encodeFrame(accepted({ alg: 1, value: new Uint8Array(31) })), RangeError);
    assert.throws(() => encodeFrame(accepted({ alg: 0, value: new Uint8Array(1) })), RangeError);
    const opaque = accepted({ alg: 9, value: new Uint8Array(7).fill(9) });
    assert.deepEqual(decodeAll(encodeFrame(opaque), 1024), [opaque]);
  });

  void test('bodyBytes is the encoded body length', () => {
    const msg = errorMsg('naïve ☃ 📎');
    assert.equal(bodyBytes(msg) + HEADER_BYTES, encodeFrame(msg).length);
  });
});

void describe('u53 fields (no v1 message has one yet)', () => {
  const spec: MessageSpec = {
    code: 0x7f00,
    sender: 'both',
    role: null,
    doc: 'test',
    fields: [{ name: 'n', kind: 'u53', doc: '' }],
    ext: [],
  };
  const u64 = (hi: number, lo: number): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, hi);
    new DataView(b.buffer).setUint32(4, lo);
    return b;
  };

  void test('decode up to 2^53-1', () => {
    assert.equal(decodeBodyWith(spec, 'T', 0, u64(0x1fffff, 0xffffffff))['n'], Number.MAX_SAFE_INTEGER);
    assert.equal(decodeBodyWith(spec, 'T', 0, u64(0, 7))['n'], 7);
  });

  void test('refuse 2^53 and above with ATP_ERR_ENCODING', () => {
    for (const hi of [0x200000, 0xffffffff]) {
      assert.throws(
        () => decodeBodyWith(spec, 'T', 0, u64(hi, 0)),
        (e: unknown) => isAtpError(e, 'ATP_ERR_ENCODING'),
      );
    }
  });
});

void describe('decodeBody', () => {
  void test('returns undefined for unregistered and GREASE types and throws ATP_ERR_PROTOCOL for reserved ones', () => {
    assert.equal(decodeBody(0x1a1a, 0, new Uint8Array(3)), undefined);
    assert.equal(decodeBody(0x7ff0, 0, new Uint8Array(0)), undefined);
    for (const code of [0x0000, 0xff00, 0xffff])
      assert.throws(
        () => decodeBody(code, 0, new Uint8Array(0)),
        (e: unknown) => isAtpError(e, 'ATP_ERR_PROTOCOL'),
      );
  });

  void test('returns a fresh digest object for "none": changing one decoded message leaves the next alone', () => {
    const frame = encodeFrame({
      type: 'ACCEPTED',
      stream: 1,
      artifactId: ZERO_ID,
      digest: { alg: 0, value: new Uint8Array(0) },
      state: 1,
      duplicate: 0,
    });
    const [a] = decodeAll(frame, 1024) as [Message & { type: 'ACCEPTED' }];
    a.digest.alg = 1;
    const [b] = decodeAll(frame, 1024) as [Message & { type: 'ACCEPTED' }];
    assert.equal(b.digest.alg, 0);
  });

  void test('reads a body that is a view into a larger buffer at an odd offset', () => {
    const frame = encodeFrame({ type: 'RENEWED', stream: 3, ttlMs: 1234, renewed: 2 });
    const big = new Uint8Array(frame.length + 7);
    big.set(frame, 5);
    const payload = big.subarray(5 + HEADER_BYTES, 5 + frame.length);
    assert.deepEqual(decodeBody(MESSAGES.RENEWED.code, 3, payload), { type: 'RENEWED', stream: 3, ttlMs: 1234, renewed: 2 });
  });
});

void describe('FrameDecoder', () => {
  void test('stays poisoned after an error: every later push throws the same error', () => {
    const d = new FrameDecoder(16);
    const bad = encodeFrame(errorMsg('this message is longer than sixteen bytes'));
    let first: unknown;
    assert.throws(
      () => d.push(bad, () => undefined),
      (e: unknown) => {
        first = e;
        return isAtpError(e, 'ATP_ERR_FRAME_TOO_LARGE');
      },
    );
    const ping = encodeFrame({ type: 'PING', stream: 0, nonce: 1 });
    assert.throws(
      () => d.push(ping, () => undefined),
      (e: unknown) => e === first,
    );
  });

  void test('applies a raised maxFrameBytes to the next header', () => {
    const d = new FrameDecoder(Limits.PRE_WELCOME_MAX_FRAME_BYTES);
    const big = encodeFrame(errorMsg('x'.repeat(1000)));
    d.maxFrameBytes = 512;
    assert.equal(d.maxFrameBytes, 512);
    assert.throws(() => d.push(big, () => undefined), AtpError);
    const d2 = new FrameDecoder(512);
    d2.maxFrameBytes = Limits.DEFAULT_MAX_FRAME_BYTES;
    let n = 0;
    d2.push(big, () => n++);
    assert.equal(n, 1);
  });

  void test('reports the bytes held for an incomplete frame (header bytes, then payload bytes) and none once it completes', () => {
    const frame = encodeFrame(errorMsg('abc'));
    const d = new FrameDecoder(1024);
    const seen: number[] = [];
    d.push(frame.subarray(0, 5), () => undefined);
    seen.push(d.bufferedBytes);
    d.push(frame.subarray(5, 20), () => undefined);
    seen.push(d.bufferedBytes);
    d.push(frame.subarray(20), () => undefined);
    seen.push(d.bufferedBytes);
    assert.deepEqual(seen, [5, 20 - HEADER_BYTES, 0]);
  });

  void test('decodeAll refuses input that ends inside a frame with ATP_ERR_ENCODING', () => {
    const frame = encodeFrame(errorMsg('abc'));
    assert.throws(
      () => decodeAll(frame.subarray(0, frame.length - 1), 1024),
      (e: unknown) => isAtpError(e, 'ATP_ERR_ENCODING'),
    );
  });
});
