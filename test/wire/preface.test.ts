import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFACE, checkPreface, hexSnippet } from '../../src/wire/index.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const errorOf = (bytes: Uint8Array): { code: string; message: string } => {
  const r = checkPreface(bytes);
  assert.ok(!r.ok && !r.needMore, 'expected an error');
  return { code: r.error.code, message: r.error.message };
};

void test('the preface is "ATP1\\r\\n\\r\\n" and is accepted whole; any correct prefix asks for more', () => {
  assert.equal(Buffer.from(PREFACE).toString('latin1'), 'ATP1\r\n\r\n');
  assert.deepEqual(checkPreface(PREFACE), { ok: true });
  for (let n = 0; n < PREFACE.length; n++) assert.deepEqual(checkPreface(PREFACE.subarray(0, n)), { ok: false, needMore: true });
});

void test('only the first 8 bytes are checked: frames pipelined after the preface do not matter', () => {
  assert.deepEqual(checkPreface(Buffer.concat([PREFACE, Buffer.from([0, 0, 0, 4, 0, 3])])), { ok: true });
});

void test('an HTTP request, an HTTP/2 preface and a TLS ClientHello are each diagnosed by name', () => {
  const http = errorOf(text('GET / HTTP/1.1\r\n'));
  assert.equal(http.code, 'ATP_ERR_WRONG_PROTOCOL');
  assert.match(http.message, /HTTP request/);
  assert.match(http.message, /474554202f/, 'the message carries a hex snippet');
  assert.match(errorOf(text('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')).message, /HTTP\/2/);
  assert.match(errorOf(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0xc8, 0x01)).message, /TLS ClientHello/);
  assert.match(errorOf(Uint8Array.of(0x00, 0x00, 0x00, 0x04)).message, /not an ATP preface/);
});

void test('"ATPn" with n other than 1 is ATP_ERR_UNSUPPORTED_VERSION naming the version', () => {
  const e = errorOf(text('ATP2\r\n\r\n'));
  assert.equal(e.code, 'ATP_ERR_UNSUPPORTED_VERSION');
  assert.match(e.message, /"2"/);
});

void test('hexSnippet shows at most 32 bytes', () => {
  assert.equal(hexSnippet(new Uint8Array(100).fill(0xab)).length, 64);
  assert.equal(hexSnippet(Uint8Array.of(1, 2), 1), '01');
});
