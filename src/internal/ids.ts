/** Ids, hex and digests (ATP_SPEC §3.2). */
import * as crypto from 'node:crypto';
import { randomBytes, randomFillSync } from 'node:crypto';

/**
 * Buffer's native hex encoder, which `buf.toString('hex')` calls; it reads any Uint8Array. Used
 * directly it spares the Buffer that toString would need around a plain array.
 */
const hexSlice = (Buffer.prototype as unknown as { hexSlice?: (this: Uint8Array, start: number, end: number) => string }).hexSlice;

/** Lowercase hex of bytes (native encoding: this is on every frame's path). */
export function toHex(bytes: Uint8Array): string {
  if (hexSlice !== undefined) return hexSlice.call(bytes, 0, bytes.length);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of a hex string; throws RangeError on odd length or non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  const out = Buffer.from(hex, 'hex');
  // Buffer.from stops at the first character that is not hex: a short result means a bad string.
  if (hex.length % 2 !== 0 || out.length * 2 !== hex.length) throw new RangeError(`not a hex string: ${JSON.stringify(hex.slice(0, 40))}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decode the hex of exactly `out.length` bytes into `out` and return it: no allocation, for ids and
 * digests that are encoded into a frame at once (LEASE, RESULT, STATE, REVOKE). Throws like fromHex.
 */
export function hexInto(hex: string, out: Uint8Array): Uint8Array {
  const n = out.length;
  if (hex.length !== 2 * n) throw new RangeError(`not the hex of ${n} bytes: ${JSON.stringify(hex.slice(0, 80))}`);
  for (let i = 0; i < n; i++) {
    const hi = HEX_VALUE[hex.charCodeAt(2 * i)] ?? 16;
    const lo = HEX_VALUE[hex.charCodeAt(2 * i + 1)] ?? 16;
    if ((hi | lo) > 15) throw new RangeError(`not a hex string: ${JSON.stringify(hex.slice(0, 80))}`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}
const HEX_VALUE = new Uint8Array(128).fill(16);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[97 + i] = HEX_VALUE[65 + i] = 10 + i;

/** The 16 zero bytes that mean "no id". */
export const ZERO_ID = new Uint8Array(16);
/** Hex of ZERO_ID. */
export const ZERO_ID_HEX = '0'.repeat(32);

/** True when all 16 bytes are zero. */
export function isZeroId(id: Uint8Array): boolean {
  for (let i = 0; i < id.length; i++) if (id[i] !== 0) return false;
  return true;
}

/**
 * One-shot hashing (node:crypto `hash`, Node 20.12+): half the cost of a Hash object for the small
 * payloads every submit carries. Undefined on an older Node, which then uses createHash.
 */
const oneShot = (crypto as Partial<typeof crypto>).hash;
/** kind || 0x00 || payload of a small artifact, assembled for one-shot hashing. */
const DIGEST_SCRATCH = Buffer.allocUnsafe(16 * 1024);
/** The same bytes as a plain array: its subarray is a builtin view, not a Buffer made in JavaScript. */
const DIGEST_SCRATCH_BYTES = new Uint8Array(DIGEST_SCRATCH.buffer, DIGEST_SCRATCH.byteOffset, DIGEST_SCRATCH.byteLength);

/** ATP_SPEC §3.2: digest = SHA-256(utf8(kind) || 0x00 || payload). */
export function artifactDigest(kind: string, payload: Uint8Array): Uint8Array {
  if (oneShot !== undefined && kind.length * 3 + 1 + payload.length <= DIGEST_SCRATCH.length) {
    const k = DIGEST_SCRATCH.write(kind, 0, 'utf8');
    DIGEST_SCRATCH_BYTES[k] = 0;
    DIGEST_SCRATCH_BYTES.set(payload, k + 1);
    const d = oneShot('sha256', DIGEST_SCRATCH_BYTES.subarray(0, k + 1 + payload.length), 'buffer');
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }
  const h = crypto.createHash('sha256');
  h.update(kind, 'utf8');
  h.update(ZERO_BYTE);
  h.update(payload);
  return new Uint8Array(h.digest());
}
const ZERO_BYTE = new Uint8Array(1);

/** SHA-256 of bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  if (oneShot !== undefined) {
    const d = oneShot('sha256', bytes, 'buffer');
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }
  return new Uint8Array(crypto.createHash('sha256').update(bytes).digest());
}

/** The default artifact id: the first 16 bytes of its digest. */
export function defaultArtifactId(digest: Uint8Array): Uint8Array {
  return digest.slice(0, 16);
}

/** Random bytes (for tokens and node ids). */
export function randomId(bytes = 16): Uint8Array {
  return new Uint8Array(randomBytes(bytes));
}

/**
 * Unique 16-byte ids, cheap: an 8-byte random prefix per generator and an 8-byte counter.
 * Unique across restarts because the prefix is random.
 */
export class IdGenerator {
  readonly #bytes = new Uint8Array(16);
  readonly #view = new DataView(this.#bytes.buffer);
  #counter = 0;

  constructor() {
    randomFillSync(this.#bytes, 0, 8);
  }

  /** Next id as hex. */
  nextHex(): string {
    this.#counter++;
    this.#view.setUint32(8, Math.floor(this.#counter / 0x100000000));
    this.#view.setUint32(12, this.#counter >>> 0);
    return toHex(this.#bytes);
  }
}

/** Constant-time comparison of two byte strings. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** ATP_SPEC §3.1: artifact kinds are 1–128 bytes of [A-Za-z0-9._:/-]. */
export const KIND_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
