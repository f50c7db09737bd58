/**
 * fast-check arbitraries generated from the schema: one per field kind, within the field's limits,
 * so that any message type, field or extension added to src/wire/schema.ts is fuzzed without
 * touching the tests.
 */
import fc from 'fast-check';
import { Limits, MESSAGES, utf8Length } from '../../src/wire/index.js';
import type { Digest, FieldSpec, Message, MessageName, MessageSpec } from '../../src/wire/index.js';

/** A string of at most `max` UTF-8 bytes: mostly short, sometimes non-ASCII or astral, sometimes exactly `max` bytes. */
export function utf8String(max: number): fc.Arbitrary<string> {
  return fc
    .oneof(
      { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: Math.min(max, 40) }) },
      { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: Math.min(Math.floor(max / 4), 24) }) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: Math.min(Math.floor(max / 16), 8) }) },
      { weight: 1, arbitrary: fc.constantFrom('\uFEFF', '', 'x'.repeat(max), 'é'.repeat(Math.floor(max / 2))) },
    )
    .filter((s) => utf8Length(s) <= max);
}

const id = fc.uint8Array({ minLength: 16, maxLength: 16 });

const digest: fc.Arbitrary<Digest> = fc.oneof(
  fc.constant({ alg: 0, value: new Uint8Array(0) }),
  fc.record({ alg: fc.constant(1), value: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
  fc.record({ alg: fc.integer({ min: 2, max: 255 }), value: fc.uint8Array({ maxLength: 80 }) }),
);

/** An arbitrary value of one field, within its limits. */
export function fieldValue(fs: FieldSpec): fc.Arbitrary<unknown> {
  switch (fs.kind) {
    case 'u8':
      return fc.integer({ min: 0, max: 0xff });
    case 'u16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'u32':
      return fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0xffffffff));
    case 'u53':
      return fc.oneof(fc.maxSafeNat(), fc.constant(Limits.MAX_U53));
    case 'id':
      return id;
    case 'digest':
      return digest;
    case 'str':
      return utf8String(fs.max ?? 0xffff);
    case 'sbytes':
      return fc.uint8Array({ maxLength: Math.min(fs.max ?? 0xffff, 96) });
    case 'bytes':
      return fc.uint8Array({ maxLength: 300 });
    case 'strs':
      return fc.array(utf8String(Limits.MAX_NAME_BYTES), { maxLength: Math.min(fs.max ?? 0xffff, 12) });
    case 'ids':
      return fc.array(id, { maxLength: Math.min(fs.max ?? 0xffff, 12) });
  }
}

/** An arbitrary message of the given type: every fixed field, each extension present or absent. */
export function messageOf(name: MessageName): fc.Arbitrary<Message> {
  const spec: MessageSpec = MESSAGES[name];
  const fixed: Record<string, fc.Arbitrary<unknown>> = { stream: fc.integer({ min: 0, max: 0x7fffffff }) };
  for (const fs of spec.fields) fixed[fs.name] = fieldValue(fs);
  const ext: Record<string, fc.Arbitrary<unknown>> = {};
  for (const xs of spec.ext) ext[xs.name] = fc.option(fieldValue(xs), { nil: undefined });
  return fc.record({ fixed: fc.record(fixed), ext: fc.record(ext) }).map(({ fixed: f, ext: x }) => {
    const msg: Record<string, unknown> = { type: name, ...f };
    for (const [k, v] of Object.entries(x)) if (v !== undefined) msg[k] = v;
    return msg as unknown as Message;
  });
}

/** An arbitrary message of any type. */
export const anyMessage: fc.Arbitrary<Message> = fc.oneof(...(Object.keys(MESSAGES) as MessageName[]).map(messageOf));
