import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AtpError, ERROR_CATALOG, ErrorClass, classOfWire, codeOfWire, isAtpError, isRetryableWire, wireCodeOf } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';

const entries = Object.entries(ERROR_CATALOG) as [ErrorCode, { wire: number; summary: string }][];
const GENERIC: Record<number, ErrorCode> = {
  [ErrorClass.CONNECTION]: 'ATP_ERR_INTERNAL',
  [ErrorClass.RETRYABLE]: 'ATP_ERR_TRANSIENT',
  [ErrorClass.PERMANENT]: 'ATP_ERR_PERMANENT',
  [ErrorClass.AUTH]: 'ATP_ERR_UNAUTHORIZED',
};

void test('every catalog entry has a unique u16 wire code in the core namespace and a known class', () => {
  const seen = new Map<number, string>();
  for (const [code, { wire, summary }] of entries) {
    assert.ok(Number.isInteger(wire) && wire >= 0 && wire <= 0xffff, code);
    assert.ok(!seen.has(wire), `${code} reuses 0x${wire.toString(16)} of ${seen.get(wire)}`);
    seen.set(wire, code);
    assert.equal(wire >> 12, 0, `${code} is not in namespace 0`);
    assert.ok(wire >> 8 <= 3, `${code} has a reserved class nibble`);
    assert.match(code, /^ATP_ERR_[A-Z0-9_]+$/);
    assert.ok(summary.length > 0 && summary.endsWith('.'), `${code} summary`);
  }
});

void test('wireCodeOf and codeOfWire are inverse on the catalog', () => {
  for (const [code, { wire }] of entries) {
    assert.equal(wireCodeOf(code), wire);
    assert.equal(codeOfWire(wire), code);
  }
});

void test('each class generic code is the first of its class and in that class', () => {
  for (const [cls, code] of Object.entries(GENERIC)) {
    assert.equal(classOfWire(ERROR_CATALOG[code].wire), Number(cls));
  }
  assert.equal(ERROR_CATALOG.ATP_ERR_TRANSIENT.wire, 0x0100);
  assert.equal(ERROR_CATALOG.ATP_ERR_PERMANENT.wire, 0x0200);
  assert.equal(ERROR_CATALOG.ATP_ERR_UNAUTHORIZED.wire, 0x0300);
});

void test('codeOfWire maps every unknown code to the generic code of its class nibble, whatever the namespace', () => {
  const known = new Set(entries.map(([, e]) => e.wire));
  for (let wire = 0; wire <= 0xffff; wire++) {
    if (known.has(wire)) continue;
    const cls = (wire >> 8) & 0x0f;
    const expected = GENERIC[cls] ?? 'ATP_ERR_PERMANENT';
    if (codeOfWire(wire) !== expected) assert.fail(`0x${wire.toString(16)} maps to ${codeOfWire(wire)}, expected ${expected}`);
  }
  assert.equal(codeOfWire(0x01ff), 'ATP_ERR_TRANSIENT');
  assert.equal(codeOfWire(0x1104), 'ATP_ERR_TRANSIENT', 'an extension namespace code of class 1');
  assert.equal(codeOfWire(0x0aff), 'ATP_ERR_PERMANENT', 'a reserved class is treated as permanent');
  assert.equal(codeOfWire(0x00ff), 'ATP_ERR_INTERNAL', 'class 0 falls back to INTERNAL, not NONE');
});

void test('only class 1 codes are retryable', () => {
  for (const [code, { wire }] of entries) assert.equal(isRetryableWire(wire), classOfWire(wire) === ErrorClass.RETRYABLE, code);
  assert.ok(isRetryableWire(0xf1aa));
  assert.ok(!isRetryableWire(0x0204));
});

void test('AtpError carries its code, wire code and class; fromWire keeps the received number', () => {
  const e = new AtpError('ATP_ERR_LEASE_EXPIRED', 'gone', { leaseId: 'ab' });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'AtpError');
  assert.equal(e.wire, 0x0104);
  assert.equal(e.errorClass, ErrorClass.RETRYABLE);
  assert.deepEqual(e.detail, { leaseId: 'ab' });
  const r = AtpError.fromWire(0x01ee, 'new retryable code', { type: 1 });
  assert.equal(r.code, 'ATP_ERR_TRANSIENT');
  assert.deepEqual(r.detail, { type: 1, wireCode: 0x01ee });
  assert.ok(isAtpError(r));
  assert.ok(isAtpError(r, 'ATP_ERR_TRANSIENT'));
  assert.ok(!isAtpError(r, 'ATP_ERR_PERMANENT'));
  assert.ok(!isAtpError(new Error('x')));
});
