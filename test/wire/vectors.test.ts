import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOG } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  FrameFlags,
  HEADER_BYTES,
  MESSAGES,
  PREFACE,
  checkPreface,
  encodeFrame,
  fromHex,
  messageFromJson,
  toHex,
} from '../../src/wire/index.js';
import type { MessageJson } from '../../src/wire/index.js';
import { existingVectorFiles, generateVectors } from '../../scripts/gen-vectors.js';
import { bytewise, concat, feed, splitAt } from './feed.js';
import { referenceEncode } from './reference-encoder.js';

const dir = fileURLToPath(new URL('../../../test-vectors/', import.meta.url));

interface ValidVector {
  id: string;
  description: string;
  requirements: string[];
  valid: true;
  maxFrameBytes: number;
  hex: string;
  header: { length: number; type: number; flags: number; reserved: number; stream: number };
  decoded: MessageJson | null;
  roundTrip: boolean;
  canonicalHex?: string;
}
interface InvalidVector {
  id: string;
  description: string;
  requirements: string[];
  valid: false;
  maxFrameBytes: number;
  maxMessageBytes?: number;
  hex: string;
  error: { code: ErrorCode; wire: number };
  detectAfterBytes?: number;
}
interface FragmentedVector {
  id: string;
  description: string;
  requirements: string[];
  valid: true;
  maxFrameBytes: number;
  maxMessageBytes: number;
  hex: string;
  frames: { length: number; type: number; flags: number; reserved: number; stream: number }[];
  decoded: MessageJson[];
  unfragmented: string[];
}
interface PrefaceVector {
  id: string;
  requirements: string[];
  hex: string;
  valid: boolean;
  outcome: 'ok' | 'need-more' | 'error';
  error?: { code: ErrorCode; wire: number };
  detectAfterBytes?: number;
}

const load = <T>(file: string): { vectors: T[]; [k: string]: unknown } =>
  JSON.parse(readFileSync(join(dir, file), 'utf8')) as { vectors: T[] };

const files = existingVectorFiles(dir);
const FRAGMENTED_FILE = 'valid/fragmented.json';
const validFiles = files.filter((f) => f.startsWith('valid/') && f !== FRAGMENTED_FILE);
const invalidFiles = files.filter((f) => f.startsWith('invalid/'));
const allValid = validFiles.flatMap((f) => load<ValidVector>(f).vectors);

void test('the committed test vectors are exactly what scripts/gen-vectors.ts generates (run "npm run vectors")', () => {
  const generated = generateVectors();
  assert.deepEqual(files, [...generated.keys()].sort(), 'the set of vector files differs');
  for (const [file, text] of generated) assert.equal(readFileSync(join(dir, file), 'utf8'), text, `test-vectors/${file} is stale`);
});

void test('every vector cites requirement ids that exist in docs/ATP_SPEC.md', () => {
  const spec = readFileSync(join(dir, '../docs/ATP_SPEC.md'), 'utf8');
  const all = files.flatMap((f) => load<{ id: string; requirements: string[] }>(f).vectors);
  for (const v of all) {
    assert.ok(v.requirements.length > 0, `${v.id} cites no requirement`);
    for (const r of v.requirements) assert.ok(spec.includes(`**[${r}]**`), `${v.id} cites ${r}, which docs/ATP_SPEC.md does not define`);
  }
});

void test('every message type has a vector file with a plain vector and a GREASE-extension vector', () => {
  for (const [name, spec] of Object.entries(MESSAGES)) {
    const f = load<ValidVector>(`valid/${name}.json`);
    assert.equal(f['type'], name);
    assert.equal(f['code'], spec.code);
    assert.ok(
      f.vectors.some((v) => v.roundTrip && v.decoded?.type === name),
      `${name}: no round-trip vector`,
    );
    assert.ok(
      f.vectors.some((v) => v.id.endsWith('+grease-extension') && !v.roundTrip),
      `${name}: no vector with a GREASE extension`,
    );
  }
  assert.ok(new Set(allValid.map((v) => v.id)).size === allValid.length, 'vector ids are unique');
});

for (const file of validFiles) {
  void describe(`test-vectors/${file}`, () => {
    for (const v of load<ValidVector>(file).vectors) {
      const bytes = fromHex(v.hex);
      const expected = v.decoded === null ? [] : [v.decoded];
      void describe(`${v.id} [${v.requirements.join(', ')}]`, () => {
        void test('its header fields are the ones listed', () => {
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          assert.equal(bytes.length, HEADER_BYTES + v.header.length);
          assert.deepEqual(v.header, {
            length: view.getUint32(0),
            type: view.getUint16(4),
            flags: view.getUint8(6),
            reserved: view.getUint8(7),
            stream: view.getUint32(8) & 0x7fffffff,
          });
        });
        void test('decodes to the listed message', () => {
          const out = feed([bytes], v.maxFrameBytes);
          assert.equal(out.error, undefined);
          assert.deepEqual(out.messages, expected);
          assert.equal(out.frames, 1);
          assert.equal(out.leftover, 0);
        });
        if (v.decoded !== null) {
          const decoded = v.decoded;
          void test(v.roundTrip ? 'encodes back to the same bytes' : 'encodes to the listed canonical bytes', () => {
            const canonical = v.roundTrip ? v.hex : v.canonicalHex;
            assert.equal(typeof canonical, 'string');
            assert.equal(toHex(encodeFrame(messageFromJson(decoded))), canonical);
            assert.equal(referenceEncode(decoded).toString('hex'), canonical, 'the reference encoder disagrees');
          });
        }
        void test('decodes the same when fed one byte at a time', () => {
          const out = feed(bytewise(bytes), v.maxFrameBytes);
          assert.equal(out.error, undefined);
          assert.deepEqual(out.messages, expected);
          assert.ok(out.maxBuffered <= HEADER_BYTES + v.header.length);
        });
        void test('decodes the same when split into two chunks at every point', () => {
          for (let cut = 0; cut <= bytes.length; cut++) {
            const out = feed(splitAt(bytes, [cut]), v.maxFrameBytes);
            assert.equal(out.error, undefined, `cut at ${cut}`);
            assert.deepEqual(out.messages, expected, `cut at ${cut}`);
          }
        });
      });
    }
  });
}

void describe('all valid vectors in one stream', () => {
  const stream = concat(allValid.map((v) => fromHex(v.hex)));
  const expected = allValid.flatMap((v) => (v.decoded === null ? [] : [v.decoded]));
  const max = Math.max(...allValid.map((v) => v.maxFrameBytes));

  void test('decode to every listed message, in order, from one chunk', () => {
    const out = feed([stream], max);
    assert.equal(out.error, undefined);
    assert.equal(out.frames, allValid.length);
    assert.deepEqual(out.messages, expected);
    assert.equal(out.leftover, 0);
  });

  void test('decode to the same messages when fed in chunks of 1 to 97 bytes', () => {
    for (const size of [1, 2, 3, 5, 7, 11, 12, 13, 64, 97]) {
      const chunks: Uint8Array[] = [];
      for (let off = 0; off < stream.length; off += size) chunks.push(stream.subarray(off, off + size));
      const out = feed(chunks, max);
      assert.equal(out.error, undefined, `chunk size ${size}`);
      assert.deepEqual(out.messages, expected, `chunk size ${size}`);
    }
  });
});

for (const file of invalidFiles) {
  void describe(`test-vectors/${file}`, () => {
    for (const v of load<InvalidVector>(file).vectors) {
      const bytes = fromHex(v.hex);
      void describe(`${v.id} [${v.requirements.join(', ')}]`, () => {
        void test(`names a catalog error with its wire code (${v.error.code})`, () => {
          assert.equal(ERROR_CATALOG[v.error.code].wire, v.error.wire);
        });
        const maxMessage = v.maxMessageBytes ?? 0;
        void test(`is refused with ${v.error.code} when fed whole`, () => {
          const out = feed([bytes], v.maxFrameBytes, maxMessage);
          assert.equal(out.error?.code, v.error.code, out.error?.message ?? 'no error');
          assert.equal(out.messages.length, 0);
        });
        void test(`is refused with ${v.error.code} at the same byte when fed one byte at a time`, () => {
          const out = feed(bytewise(bytes), v.maxFrameBytes, maxMessage);
          assert.equal(out.error?.code, v.error.code);
          // Without detectAfterBytes the error comes when the frame is complete: the hex ends with that frame.
          assert.equal(out.bytesFed, v.detectAfterBytes ?? bytes.length);
        });
        const n = v.detectAfterBytes;
        if (n !== undefined && file === 'invalid/fragments.json') {
          // The frames before the offending one may be fragments of a message in progress, already allocated.
          void test(`is refused from its first ${n} bytes alone, allocating nothing for what they announce`, () => {
            const before = feed(bytewise(bytes.subarray(0, n - 1)), v.maxFrameBytes, maxMessage);
            assert.equal(before.error, undefined);
            const at = feed([bytes.subarray(0, n)], v.maxFrameBytes, maxMessage);
            assert.equal(at.error?.code, v.error.code);
            assert.equal(at.maxReserved, before.maxReserved, `reserved ${at.maxReserved} bytes, ${before.maxReserved} before`);
          });
        } else if (n !== undefined) {
          void test(`is refused from its first ${n} bytes alone, holding at most ${HEADER_BYTES} bytes`, () => {
            const before = feed(bytewise(bytes.subarray(0, n - 1)), v.maxFrameBytes, maxMessage);
            assert.equal(before.error, undefined);
            assert.ok(before.maxBuffered <= HEADER_BYTES);
            const at = feed([bytes.subarray(0, n)], v.maxFrameBytes, maxMessage);
            assert.equal(at.error?.code, v.error.code);
            assert.ok(at.maxBuffered <= HEADER_BYTES, `buffered ${at.maxBuffered} bytes`);
          });
        }
      });
    }
  });
}

void describe(`test-vectors/${FRAGMENTED_FILE}`, () => {
  for (const v of load<FragmentedVector>(FRAGMENTED_FILE).vectors) {
    const bytes = fromHex(v.hex);
    const feedIt = (chunks: Iterable<Uint8Array>) => feed(chunks, v.maxFrameBytes, v.maxMessageBytes);
    void describe(`${v.id} [${v.requirements.join(', ')}]`, () => {
      void test('is the listed frames, each flagged as a whole frame or as a first, middle or last fragment', () => {
        let off = 0;
        let inMessage = false;
        for (const h of v.frames) {
          const view = new DataView(bytes.buffer, bytes.byteOffset + off, HEADER_BYTES);
          assert.deepEqual(h, {
            length: view.getUint32(0),
            type: view.getUint16(4),
            flags: view.getUint8(6),
            reserved: view.getUint8(7),
            stream: view.getUint32(8) & 0x7fffffff,
          });
          const more = (h.flags & FrameFlags.MORE) !== 0;
          const cont = (h.flags & FrameFlags.CONTINUATION) !== 0;
          if (cont) assert.ok(inMessage, 'a continuation needs a message in progress');
          else if (more) assert.ok(!inMessage, 'one fragmented message at a time');
          if (more || cont) inMessage = more;
          off += HEADER_BYTES + h.length;
        }
        assert.equal(off, bytes.length);
        assert.ok(!inMessage, 'every fragmented message ends');
      });
      void test('decodes to the listed messages, in order, fed whole or one byte at a time', () => {
        for (const out of [feedIt([bytes]), feedIt(bytewise(bytes))]) {
          assert.equal(out.error, undefined, out.error?.message);
          assert.deepEqual(out.messages, v.decoded);
          assert.equal(out.incomplete, false);
          assert.ok(out.maxReserved <= v.maxMessageBytes + HEADER_BYTES + v.maxFrameBytes);
        }
      });
      void test('decodes the same when split into two chunks at every point', () => {
        for (let cut = 0; cut <= bytes.length; cut++) {
          const out = feedIt(splitAt(bytes, [cut]));
          assert.equal(out.error, undefined, `cut at ${cut}`);
          assert.deepEqual(out.messages, v.decoded, `cut at ${cut}`);
        }
      });
      void test('each fragmented message is the message of its unfragmented frame', () => {
        for (const hex of v.unfragmented) {
          const whole = feed([fromHex(hex)], v.maxFrameBytes);
          assert.equal(whole.messages.length, 1);
          assert.ok(
            v.decoded.some((m) => JSON.stringify(m) === JSON.stringify(whole.messages[0])),
            'the unfragmented message is among the decoded',
          );
          assert.equal(toHex(encodeFrame(messageFromJson(whole.messages[0]!))), hex);
        }
      });
      void test('is refused with ATP_ERR_PROTOCOL before WELCOME (no message limit yet)', () => {
        assert.equal(feed([bytes], v.maxFrameBytes, 0).error?.code, 'ATP_ERR_PROTOCOL');
      });
    });
  }
});

void describe('test-vectors/preface.json', () => {
  const f = load<PrefaceVector>('preface.json');
  void test('lists the ATP v1 preface', () => {
    assert.equal(f['preface'], toHex(PREFACE));
  });
  for (const v of f.vectors) {
    const bytes = fromHex(v.hex);
    void test(`${v.id} [${v.requirements.join(', ')}]: checkPreface says ${v.outcome}${v.error ? ` ${v.error.code}` : ''}`, () => {
      const r = checkPreface(bytes);
      if (v.outcome === 'ok') assert.deepEqual(r, { ok: true });
      else if (v.outcome === 'need-more') assert.deepEqual(r, { ok: false, needMore: true });
      else {
        assert.ok(!r.ok && !r.needMore, 'expected an error');
        assert.equal(r.error.code, v.error?.code);
        assert.equal(r.error.wire, v.error?.wire);
      }
      assert.equal(v.valid, v.outcome === 'ok');
    });
    const n = v.detectAfterBytes ?? (v.outcome === 'ok' ? PREFACE.length : undefined);
    if (n !== undefined) {
      void test(`${v.id}: is decided after ${n} bytes and not before`, () => {
        for (let k = 0; k < n; k++) assert.deepEqual(checkPreface(bytes.subarray(0, k)), { ok: false, needMore: true }, `${k} bytes`);
        const r = checkPreface(bytes.subarray(0, n));
        assert.equal(r.ok ? 'ok' : r.needMore ? 'need-more' : r.error.code, v.error?.code ?? 'ok');
      });
    }
  }
});
