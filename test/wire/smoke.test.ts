import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAll, encodeFrame } from '../../src/wire/index.js';

test('a PING frame round-trips through encode and decode', () => {
  const bytes = encodeFrame({ type: 'PING', stream: 0, nonce: 42 });
  assert.equal(Buffer.from(bytes).toString('hex'), '000000040003000000000000' + '0000002a');
  assert.deepEqual(decodeAll(bytes, 1024), [{ type: 'PING', stream: 0, nonce: 42 }]);
});
