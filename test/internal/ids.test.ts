/** Hex ids (src/internal/ids.ts): the allocation-free decoder agrees with the general one. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fromHex, hexIdInto, toHex } from '../../src/internal/ids.js';

void test('hexIdInto decodes any 16-byte id, in either case, into the given bytes, like fromHex', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.boolean(), (bytes, upper) => {
      const hex = upper ? toHex(bytes).toUpperCase() : toHex(bytes);
      const out = new Uint8Array(16);
      assert.equal(hexIdInto(hex, out), out);
      assert.deepEqual(out, bytes);
      assert.deepEqual(out, fromHex(hex));
    }),
  );
});

void test('hexIdInto refuses a wrong length and any character that is not hex, leaving no half-written id unnoticed', () => {
  const out = new Uint8Array(16);
  assert.throws(() => hexIdInto('ab'.repeat(15), out), RangeError);
  assert.throws(() => hexIdInto('ab'.repeat(17), out), RangeError);
  for (const bad of ['g', ' ', 'é', '-', '\u0000']) {
    assert.throws(() => hexIdInto(bad + 'a'.repeat(31), out), RangeError, JSON.stringify(bad));
    assert.throws(() => hexIdInto('a'.repeat(31) + bad, out), RangeError, JSON.stringify(bad));
  }
});
