import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, messageFromJson, messageToJson, toHex } from '../../src/wire/index.js';
import type { Message } from '../../src/wire/index.js';

const lease: Message = {
  type: 'LEASE_LOST',
  stream: 3,
  leaseId: Uint8Array.of(...Array.from({ length: 16 }, (_, i) => i)),
  epoch: 2,
  artifactId: new Uint8Array(16).fill(0xff),
  code: 0x0204,
  message: 'stale',
};

void test('hex converts both ways and refuses odd lengths and non-hex characters', () => {
  assert.equal(toHex(Uint8Array.of(0, 15, 255)), '000fff');
  assert.deepEqual(fromHex('000FfF'), Uint8Array.of(0, 15, 255));
  assert.throws(() => fromHex('abc'), TypeError);
  assert.throws(() => fromHex('zz'), TypeError);
});

void test('a message converts to JSON with ids as hex and back to the same message', () => {
  const json = messageToJson(lease);
  assert.deepEqual(json, {
    type: 'LEASE_LOST',
    stream: 3,
    leaseId: '000102030405060708090a0b0c0d0e0f',
    epoch: 2,
    artifactId: 'ff'.repeat(16),
    code: 0x0204,
    message: 'stale',
  });
  assert.deepEqual(messageFromJson(JSON.parse(JSON.stringify(json))), lease);
});

void test('digests become { alg, value } and absent extensions stay absent', () => {
  const hello: Message = {
    type: 'HELLO',
    stream: 0,
    minVersion: 1,
    maxVersion: 1,
    roles: 1,
    nodeId: new Uint8Array(16),
    credits: 1,
    maxFrameBytes: 65536,
    idleTimeoutMs: 0,
    agent: 'a',
    kinds: ['k'],
    capabilities: [],
    tenant: 't',
  };
  const json = messageToJson(hello);
  assert.equal(json['tenant'], 't');
  assert.ok(!('authToken' in json));
  assert.deepEqual(messageFromJson(json), hello);
  const acc = messageToJson({
    type: 'ACCEPTED',
    stream: 1,
    artifactId: new Uint8Array(16),
    digest: { alg: 1, value: new Uint8Array(32) },
    state: 1,
    duplicate: 0,
  });
  assert.deepEqual(acc['digest'], { alg: 1, value: '00'.repeat(32) });
});

void test('messageFromJson refuses unknown types, missing and unknown fields, and wrong shapes with a TypeError naming the field', () => {
  const good = messageToJson(lease) as Record<string, unknown>;
  assert.throws(() => messageFromJson({ ...good, type: 'NOPE' }), /message\.type/);
  assert.throws(() => messageFromJson({ ...good, type: 'toString' }), /message\.type/);
  const { epoch: _epoch, ...missing } = good;
  assert.throws(() => messageFromJson(missing), /LEASE_LOST\.epoch/);
  assert.throws(() => messageFromJson({ ...good, extra: 1 }), /LEASE_LOST\.extra/);
  assert.throws(() => messageFromJson({ ...good, leaseId: 'abcd' }), /LEASE_LOST\.leaseId/);
  assert.throws(() => messageFromJson({ ...good, epoch: '2' }), TypeError);
  assert.throws(() => messageFromJson(null), TypeError);
});
