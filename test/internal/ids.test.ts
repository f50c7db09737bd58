/** Hex ids (src/internal/ids.ts): the allocation-free decoder agrees with the general one. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fromHex, hexInto, toHex } from '../../src/internal/ids.js';

void test('hexInto decodes any 16-byte id or 32-byte digest, in either case, into the given bytes, like fromHex', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 32, maxLength: 32 })),
      fc.boolean(),
      (bytes, upper) => {
        const hex = upper ? toHex(bytes).toUpperCase() : toHex(bytes);
        const out = new Uint8Array(bytes.length);
        assert.equal(hexInto(hex, out), out);
        assert.deepEqual(out, bytes);
        assert.deepEqual(out, fromHex(hex));
      },
    ),
  );
});

void test('hexInto refuses a wrong length and any character that is not hex, leaving no half-written id unnoticed', () => {
  const out = new Uint8Array(16);
  assert.throws(() => hexInto('ab'.repeat(15), out), RangeError);
  assert.throws(() => hexInto('ab'.repeat(17), out), RangeError);
  assert.throws(() => hexInto('ab'.repeat(16), new Uint8Array(32)), RangeError, 'an id is not a digest');
  for (const bad of ['g', ' ', 'é', '-', '\u0000']) {
    assert.throws(() => hexInto(bad + 'a'.repeat(31), out), RangeError, JSON.stringify(bad));
    assert.throws(() => hexInto('a'.repeat(31) + bad, out), RangeError, JSON.stringify(bad));
  }
});
