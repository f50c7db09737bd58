/**
 * Message bodies to bytes and back (ATP_WIRE §4–§6). Pure: no I/O, no clock. Every malformed body
 * becomes an AtpError with ATP_ERR_ENCODING; nothing else is ever thrown.
 */
import { AtpError } from '../errors.js';
import { DIGEST_BYTES, HEADER_BYTES, Limits, isGrease } from './constants.js';
import { MESSAGES, messageNameOf } from './schema.js';
import type { Digest, FieldKind, FieldSpec, Message, MessageName, MessageSpec } from './schema.js';

// ignoreBOM keeps a leading U+FEFF in the string: stripping it would break the byte-identical round trip.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Byte length of a string in UTF-8, without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function bad(message: string, detail?: Record<string, unknown>): AtpError {
  return new AtpError('ATP_ERR_ENCODING', message, detail);
}

/** Fixed minimum size in bytes of a field (its length prefix, or its whole size). */
function minFieldBytes(kind: FieldKind): number {
  switch (kind) {
    case 'u8':
      return 1;
    case 'u16':
    case 'str':
    case 'sbytes':
    case 'strs':
    case 'digest':
      return 2;
    case 'u32':
    case 'bytes':
    case 'ids':
      return 4;
    case 'u53':
      return 8;
    case 'id':
      return 16;
  }
}

/** Smallest valid body of each message type (all variable parts empty). */
const MIN_BODY = new Map<number, number>();
for (const spec of Object.values(MESSAGES) as MessageSpec[]) {
  MIN_BODY.set(
    spec.code,
    spec.fields.reduce((n, fs) => n + minFieldBytes(fs.kind), 0),
  );
}

/** Smallest valid body of a message type, or undefined for an unregistered code. */
export function minBodyBytes(code: number): number | undefined {
  return MIN_BODY.get(code);
}

function fieldBytes(fs: FieldSpec, v: unknown): number {
  switch (fs.kind) {
    case 'u8':
      return 1;
    case 'u16':
      return 2;
    case 'u32':
      return 4;
    case 'u53':
      return 8;
    case 'id':
      return 16;
    case 'digest':
      return 2 + (v as Digest).value.length;
    case 'str':
      return 2 + utf8Length(v as string);
    case 'sbytes':
      return 2 + (v as Uint8Array).length;
    case 'bytes':
      return 4 + (v as Uint8Array).length;
    case 'strs': {
      let n = 2;
      for (const s of v as string[]) n += 2 + utf8Length(s);
      return n;
    }
    case 'ids':
      return 4 + 16 * (v as Uint8Array[]).length;
  }
}

/** Thrown by the encoder for values that cannot be encoded (a programming error of the caller). */
function checkInt(name: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`ATP encode: field ${name} must be an integer in [0, ${max}], got ${String(v)}`);
  }
  return v;
}

/** Size of the body (fixed part plus extension tail) of a message. */
export function bodyBytes(msg: Message): number {
  const spec = MESSAGES[msg.type] as MessageSpec;
  const rec = msg as unknown as Record<string, unknown>;
  let n = 0;
  for (const fs of spec.fields) n += fieldBytes(fs, rec[fs.name]);
  for (const xs of spec.ext) {
    const v = rec[xs.name];
    if (v !== undefined) n += 4 + fieldBytes(xs, v);
  }
  return n;
}

class Out {
  constructor(
    readonly bytes: Uint8Array,
    readonly view: DataView,
    public off: number,
  ) {}
}

function writeField(o: Out, fs: FieldSpec, v: unknown): void {
  const { view, bytes } = o;
  switch (fs.kind) {
    case 'u8':
      view.setUint8(o.off, checkInt(fs.name, v, 0xff));
      o.off += 1;
      return;
    case 'u16':
      view.setUint16(o.off, checkInt(fs.name, v, 0xffff));
      o.off += 2;
      return;
    case 'u32':
      view.setUint32(o.off, checkInt(fs.name, v, 0xffffffff));
      o.off += 4;
      return;
    case 'u53': {
      const n = checkInt(fs.name, v, Limits.MAX_U53);
      view.setUint32(o.off, Math.floor(n / 0x100000000));
      view.setUint32(o.off + 4, n >>> 0);
      o.off += 8;
      return;
    }
    case 'id': {
      const id = v as Uint8Array;
      if (!(id instanceof Uint8Array) || id.length !== 16) throw new RangeError(`ATP encode: field ${fs.name} must be 16 bytes`);
      bytes.set(id, o.off);
      o.off += 16;
      return;
    }
    case 'digest': {
      const d = v as Digest;
      // ATP_WIRE §4.6: a known algorithm has one length; anything else would be refused by the peer.
      const want = DIGEST_BYTES[d.alg];
      if (want !== undefined && want !== d.value.length)
        throw new RangeError(`ATP encode: field ${fs.name} algorithm ${d.alg} needs ${want} bytes, got ${d.value.length}`);
      view.setUint8(o.off, checkInt(`${fs.name}.alg`, d.alg, 0xff));
      view.setUint8(o.off + 1, checkInt(`${fs.name}.length`, d.value.length, 0xff));
      bytes.set(d.value, o.off + 2);
      o.off += 2 + d.value.length;
      return;
    }
    case 'str':
      writeStr(o, fs, v as string);
      return;
    case 'sbytes': {
      const b = v as Uint8Array;
      view.setUint16(o.off, checkInt(`${fs.name}.length`, b.length, fs.max ?? 0xffff));
      bytes.set(b, o.off + 2);
      o.off += 2 + b.length;
      return;
    }
    case 'bytes': {
      const b = v as Uint8Array;
      view.setUint32(o.off, b.length);
      bytes.set(b, o.off + 4);
      o.off += 4 + b.length;
      return;
    }
    case 'strs': {
      const list = v as string[];
      view.setUint16(o.off, checkInt(`${fs.name}.count`, list.length, fs.max ?? 0xffff));
      o.off += 2;
      for (const s of list) writeStr(o, { name: fs.name, kind: 'str', max: Limits.MAX_NAME_BYTES, doc: '' }, s);
      return;
    }
    case 'ids': {
      const list = v as Uint8Array[];
      view.setUint32(o.off, checkInt(`${fs.name}.count`, list.length, fs.max ?? 0xffffffff));
      o.off += 4;
      for (const id of list) {
        if (id.length !== 16) throw new RangeError(`ATP encode: ${fs.name} entries must be 16 bytes`);
        bytes.set(id, o.off);
        o.off += 16;
      }
      return;
    }
  }
}

function writeStr(o: Out, fs: FieldSpec, s: string): void {
  if (typeof s !== 'string') throw new RangeError(`ATP encode: field ${fs.name} must be a string`);
  const r = utf8Encoder.encodeInto(s, o.bytes.subarray(o.off + 2));
  checkInt(`${fs.name}.length`, r.written, fs.max ?? 0xffff);
  o.view.setUint16(o.off, r.written);
  o.off += 2 + r.written;
}

/**
 * Encode one frame (header and body) into `bytes` at `off`; returns the offset after it.
 * The caller sized `bytes` with frameBytes(msg).
 */
export function encodeFrameInto(msg: Message, bytes: Uint8Array, view: DataView, off: number, body: number): number {
  const spec = MESSAGES[msg.type] as MessageSpec;
  const rec = msg as unknown as Record<string, unknown>;
  view.setUint32(off, body);
  view.setUint16(off + 4, spec.code);
  view.setUint8(off + 6, 0);
  view.setUint8(off + 7, 0);
  view.setUint32(off + 8, checkInt('stream', msg.stream, 0x7fffffff));
  const o = new Out(bytes, view, off + HEADER_BYTES);
  for (const fs of spec.fields) writeField(o, fs, rec[fs.name]);
  writeExtensions(o, spec, rec);
  return o.off;
}

function writeExtensions(o: Out, spec: MessageSpec, rec: Record<string, unknown>): void {
  for (const xs of spec.ext) {
    const v = rec[xs.name];
    if (v === undefined) continue;
    const start = o.off;
    o.off += 4;
    writeField(o, xs, v);
    o.view.setUint16(start, xs.id);
    o.view.setUint16(start + 2, checkInt(`${xs.name} extension length`, o.off - start - 4, 0xffff));
  }
}

/**
 * The body of a message (without header) as byte ranges whose concatenation is its encoding: the
 * fields are encoded into one small buffer, except `bytes` values of at least `inlineMax` bytes,
 * which are referenced, not copied. A large message is cut into fragments from these ranges
 * (ATP_WIRE §3.7) without a copy of its payload in one go; the referenced values must not change
 * until the last fragment is made.
 */
export function bodySegments(msg: Message, inlineMax = 4096): Uint8Array[] {
  const spec = MESSAGES[msg.type] as MessageSpec;
  const rec = msg as unknown as Record<string, unknown>;
  const isBig = (fs: FieldSpec, v: unknown): v is Uint8Array => fs.kind === 'bytes' && (v as Uint8Array).length >= inlineMax;
  let big = 0;
  for (const fs of spec.fields) {
    const v = rec[fs.name];
    if (isBig(fs, v)) big += v.length;
  }
  const small = new Uint8Array(bodyBytes(msg) - big);
  const o = new Out(small, new DataView(small.buffer), 0);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const fs of spec.fields) {
    const v = rec[fs.name];
    if (isBig(fs, v)) {
      o.view.setUint32(o.off, v.length);
      o.off += 4;
      out.push(small.subarray(start, o.off), v);
      start = o.off;
    } else writeField(o, fs, v);
  }
  writeExtensions(o, spec, rec);
  if (o.off !== small.length) throw new RangeError('ATP encode: size mismatch (a string changed during encoding?)');
  if (o.off > start) out.push(small.subarray(start, o.off));
  return out;
}

/** Encode one message as a complete frame. */
export function encodeFrame(msg: Message): Uint8Array {
  const body = bodyBytes(msg);
  const bytes = new Uint8Array(HEADER_BYTES + body);
  const end = encodeFrameInto(msg, bytes, new DataView(bytes.buffer), 0, body);
  if (end !== bytes.length) throw new RangeError('ATP encode: size mismatch (a string changed during encoding?)');
  return bytes;
}

class In {
  constructor(
    public bytes: Uint8Array,
    public view: DataView,
    public off: number,
    public end: number,
    public type: string,
  ) {}
  need(n: number, what: string): void {
    if (this.end - this.off < n) throw bad(`${this.type}: truncated ${what}`, { type: this.type, field: what });
  }
}

/** Buffers up to this size are viewed whole once for all the frames in them. */
const WHOLE_VIEW_MAX_BYTES = 1024 * 1024;
/** The reader of every small payload; it keeps views of the whole buffer the last one came from. */
const reader = new In(new Uint8Array(0), new DataView(new ArrayBuffer(0)), 0, 0, '');

function readField(i: In, fs: FieldSpec): unknown {
  i.need(minFieldBytes(fs.kind), fs.name);
  const { view, bytes } = i;
  switch (fs.kind) {
    case 'u8':
      return view.getUint8(i.off++);
    case 'u16': {
      const v = view.getUint16(i.off);
      i.off += 2;
      return v;
    }
    case 'u32': {
      const v = view.getUint32(i.off);
      i.off += 4;
      return v;
    }
    case 'u53': {
      const hi = view.getUint32(i.off);
      if (hi > 0x1fffff) throw bad(`${i.type}: ${fs.name} exceeds 2^53-1`);
      const v = hi * 0x100000000 + view.getUint32(i.off + 4);
      i.off += 8;
      return v;
    }
    case 'id': {
      const v = bytes.subarray(i.off, i.off + 16);
      i.off += 16;
      return v;
    }
    case 'digest': {
      const alg = view.getUint8(i.off);
      const len = view.getUint8(i.off + 1);
      i.off += 2;
      const want = DIGEST_BYTES[alg];
      if (want !== undefined && want !== len) throw bad(`${i.type}: ${fs.name} algorithm ${alg} needs ${want} bytes, got ${len}`);
      i.need(len, fs.name);
      const value = bytes.subarray(i.off, i.off + len);
      i.off += len;
      // A fresh object each time: a shared one would let one caller's change leak into every later decode.
      return alg === 0 && len === 0 ? { alg, value: EMPTY } : { alg, value };
    }
    case 'str':
      return readStr(i, fs.name, fs.max ?? 0xffff);
    case 'sbytes': {
      const len = view.getUint16(i.off);
      i.off += 2;
      if (fs.max !== undefined && len > fs.max) throw bad(`${i.type}: ${fs.name} is ${len} bytes, limit ${fs.max}`);
      i.need(len, fs.name);
      const v = bytes.subarray(i.off, i.off + len);
      i.off += len;
      return v;
    }
    case 'bytes': {
      const len = view.getUint32(i.off);
      i.off += 4;
      i.need(len, fs.name);
      const v = len === 0 ? EMPTY : bytes.subarray(i.off, i.off + len);
      i.off += len;
      return v;
    }
    case 'strs': {
      const count = view.getUint16(i.off);
      i.off += 2;
      if (fs.max !== undefined && count > fs.max) throw bad(`${i.type}: ${fs.name} has ${count} entries, limit ${fs.max}`);
      // Each entry needs at least its 2-byte length: check before looping (list amplification).
      i.need(count * 2, fs.name);
      const out: string[] = [];
      for (let k = 0; k < count; k++) {
        i.need(2, fs.name);
        out.push(readStr(i, fs.name, Limits.MAX_NAME_BYTES));
      }
      return out;
    }
    case 'ids': {
      const count = view.getUint32(i.off);
      i.off += 4;
      if (fs.max !== undefined && count > fs.max) throw bad(`${i.type}: ${fs.name} has ${count} entries, limit ${fs.max}`);
      i.need(count * 16, fs.name);
      const out: Uint8Array[] = new Array<Uint8Array>(count);
      for (let k = 0; k < count; k++) out[k] = bytes.subarray(i.off + 16 * k, i.off + 16 * k + 16);
      i.off += 16 * count;
      return out;
    }
  }
}

/**
 * Node's native Latin-1 decoder (which `buf.toString('latin1')` calls; it reads any Uint8Array),
 * where there is one: the codec itself needs nothing of Node.
 */
const latin1Slice = (globalThis as { Buffer?: { prototype: { latin1Slice?: (this: Uint8Array, start: number, end: number) => string } } })
  .Buffer?.prototype.latin1Slice;

function readStr(i: In, name: string, max: number): string {
  const len = i.view.getUint16(i.off);
  i.off += 2;
  if (len > max) throw bad(`${i.type}: ${name} is ${len} bytes, limit ${max}`);
  i.need(len, name);
  const start = i.off;
  i.off += len;
  // ASCII fast path: most kinds, tags and reasons are ASCII.
  let ascii = true;
  const b = i.bytes;
  for (let k = start; k < start + len; k++) {
    if (b[k]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    if (len === 0) return '';
    return latin1Slice !== undefined
      ? latin1Slice.call(b, start, start + len)
      : String.fromCharCode.apply(null, b.subarray(start, start + len) as unknown as number[]);
  }
  try {
    return utf8Decoder.decode(b.subarray(start, start + len));
  } catch {
    throw bad(`${i.type}: ${name} is not valid UTF-8`);
  }
}

/**
 * Decode a message body. `payload` is the frame payload (without header). Returns undefined for
 * a type that must be ignored (unregistered or GREASE, ATP_WIRE §7). Throws AtpError otherwise.
 * Byte fields of the result are views into `payload`: copy them to keep them long.
 */
export function decodeBody(code: number, stream: number, payload: Uint8Array): Message | undefined {
  const name = messageNameOf(code);
  if (name === undefined) {
    if (code === 0 || code >= 0xff00)
      throw new AtpError('ATP_ERR_PROTOCOL', `frame type 0x${code.toString(16).padStart(4, '0')} is reserved`);
    return undefined;
  }
  return decodeBodyWith(MESSAGES[name], name, stream, payload) as unknown as Message;
}

/**
 * Decode a body against an explicit spec: decodeBody's work for a registered type. Exposed for
 * tests of field kinds that no v1 message uses yet (u53); not part of the public API.
 */
export function decodeBodyWith(spec: MessageSpec, name: string, stream: number, payload: Uint8Array): Record<string, unknown> {
  // The frames of one read chunk share its ArrayBuffer: one view of the whole buffer serves them
  // all, and offsets are the payload's place in it. Decoding calls nothing back, so one reader does.
  // A large reassembled message gets a reader of its own, so that nothing here keeps it alive.
  const buf = payload.buffer;
  const off = payload.byteOffset;
  const end = off + payload.byteLength;
  let i: In;
  if (buf.byteLength > WHOLE_VIEW_MAX_BYTES) i = new In(new Uint8Array(buf), new DataView(buf), off, end, name);
  else {
    i = reader;
    if (i.bytes.buffer !== buf) {
      i.bytes = new Uint8Array(buf);
      i.view = new DataView(buf);
    }
    i.off = off;
    i.end = end;
    i.type = name;
  }
  const msg: Record<string, unknown> = { type: name, stream };
  for (const fs of spec.fields) msg[fs.name] = readField(i, fs);
  decodeExtensions(i, spec, msg);
  return msg;
}

function decodeExtensions(i: In, spec: MessageSpec, msg: Record<string, unknown>): void {
  let last = -1;
  let count = 0;
  while (i.off < i.end) {
    if (++count > Limits.MAX_EXTENSIONS) throw bad(`${i.type}: more than ${Limits.MAX_EXTENSIONS} extension fields`);
    i.need(4, 'extension header');
    const id = i.view.getUint16(i.off);
    const len = i.view.getUint16(i.off + 2);
    i.off += 4;
    if (id <= last) throw bad(`${i.type}: extension ids must be strictly ascending (0x${id.toString(16)} after 0x${last.toString(16)})`);
    last = id;
    i.need(len, 'extension value');
    const xs = isGrease(id) ? undefined : spec.ext.find((e) => e.id === id);
    if (xs !== undefined) {
      const sub = new In(i.bytes, i.view, i.off, i.off + len, i.type);
      msg[xs.name] = readField(sub, xs);
      if (sub.off !== sub.end) throw bad(`${i.type}: extension ${xs.name} has ${sub.end - sub.off} trailing bytes`);
    }
    i.off += len;
  }
}

/** The registered spec of a message name. */
export function specOf(name: MessageName): MessageSpec {
  return MESSAGES[name];
}
