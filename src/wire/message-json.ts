/**
 * The JSON form of a message (test-vectors/README.md): what the test vectors, `atp dump --json`
 * and other-language implementations exchange. Ids and bytes are lower-case hex strings, digests
 * `{ alg, value }` with value in hex; numbers and strings stay as they are. Pure and schema-driven.
 */
import { MESSAGES } from './schema.js';
import type { Digest, FieldSpec, Message, MessageName, MessageSpec } from './schema.js';

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A message in JSON form: `type`, `stream`, then its fields in schema order. */
export type MessageJson = { type: MessageName; stream: number } & { [field: string]: JsonValue };

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Bytes of a hex string (even length, hex digits only); throws TypeError otherwise. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError(`not a hex string: ${JSON.stringify(hex.slice(0, 40))}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function fieldToJson(fs: FieldSpec, v: unknown): JsonValue {
  switch (fs.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u53':
    case 'str':
      return v as number | string;
    case 'id':
    case 'sbytes':
    case 'bytes':
      return toHex(v as Uint8Array);
    case 'digest': {
      const d = v as Digest;
      return { alg: d.alg, value: toHex(d.value) };
    }
    case 'strs':
      return [...(v as string[])];
    case 'ids':
      return (v as Uint8Array[]).map(toHex);
  }
}

/** The JSON form of a message. Absent extension fields stay absent. */
export function messageToJson(msg: Message): MessageJson {
  const spec = MESSAGES[msg.type] as MessageSpec;
  const rec = msg as unknown as Record<string, unknown>;
  const out: Record<string, JsonValue> = { type: msg.type, stream: msg.stream };
  for (const fs of spec.fields) out[fs.name] = fieldToJson(fs, rec[fs.name]);
  for (const xs of spec.ext) if (rec[xs.name] !== undefined) out[xs.name] = fieldToJson(xs, rec[xs.name]);
  return out as MessageJson;
}

function fail(where: string, want: string, got: unknown): never {
  throw new TypeError(`${where}: expected ${want}, got ${JSON.stringify(got)}`);
}

function hexField(where: string, v: unknown, len?: number): Uint8Array {
  if (typeof v !== 'string') fail(where, 'a hex string', v);
  const b = fromHex(v);
  if (len !== undefined && b.length !== len) fail(where, `${len} bytes of hex`, v);
  return b;
}

function fieldFromJson(where: string, fs: FieldSpec, v: unknown): unknown {
  switch (fs.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u53':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(where, 'an integer', v);
      return v;
    case 'str':
      if (typeof v !== 'string') fail(where, 'a string', v);
      return v;
    case 'id':
      return hexField(where, v, 16);
    case 'sbytes':
    case 'bytes':
      return hexField(where, v);
    case 'digest': {
      if (typeof v !== 'object' || v === null) fail(where, '{ alg, value }', v);
      const d = v as { alg?: unknown; value?: unknown };
      if (typeof d.alg !== 'number') fail(`${where}.alg`, 'a number', d.alg);
      return { alg: d.alg, value: hexField(`${where}.value`, d.value) };
    }
    case 'strs':
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) fail(where, 'an array of strings', v);
      return [...v];
    case 'ids':
      if (!Array.isArray(v)) fail(where, 'an array of hex ids', v);
      return (v as unknown[]).map((id, k) => hexField(`${where}[${k}]`, id, 16));
  }
}

/** The message of a JSON form; throws TypeError on an unknown type, a missing or unknown field, or a wrong value shape. */
export function messageFromJson(json: unknown): Message {
  if (typeof json !== 'object' || json === null) fail('message', 'an object', json);
  const rec = json as Record<string, unknown>;
  const type = rec['type'];
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGES, type)) fail('message.type', 'a message type name', type);
  const spec = MESSAGES[type as MessageName] as MessageSpec;
  const stream = rec['stream'];
  if (typeof stream !== 'number' || !Number.isSafeInteger(stream)) fail(`${type}.stream`, 'an integer', stream);
  const out: Record<string, unknown> = { type, stream };
  const known = new Set(['type', 'stream']);
  for (const fs of spec.fields) {
    known.add(fs.name);
    if (!(fs.name in rec)) fail(`${type}.${fs.name}`, 'a value', undefined);
    out[fs.name] = fieldFromJson(`${type}.${fs.name}`, fs, rec[fs.name]);
  }
  for (const xs of spec.ext) {
    known.add(xs.name);
    if (rec[xs.name] !== undefined) out[xs.name] = fieldFromJson(`${type}.${xs.name}`, xs, rec[xs.name]);
  }
  for (const k of Object.keys(rec)) if (!known.has(k)) fail(`${type}.${k}`, 'no such field', rec[k]);
  return out as unknown as Message;
}
