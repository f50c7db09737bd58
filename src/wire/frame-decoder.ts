/**
 * The incremental frame decoder (ATP_WIRE §3): accepts bytes in chunks of any size and yields
 * complete frames. The length is checked against the limit from the 12-byte header alone, before
 * any allocation; a frame that straddles chunks is copied once into a buffer of its exact size.
 */
import { AtpError } from '../errors.js';
import { HEADER_BYTES } from './constants.js';
import { decodeBody, minBodyBytes } from './codec.js';
import type { Message } from './schema.js';

/** A frame split into header fields and a payload view. */
export interface RawFrame {
  code: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

/**
 * Decodes a byte stream into frames. After it throws, the decoder is poisoned: every later push
 * throws the same error, because the stream can no longer be trusted.
 */
export class FrameDecoder {
  #maxFrameBytes: number;
  #head = new Uint8Array(HEADER_BYTES);
  #headLen = 0;
  #frame: Uint8Array | undefined;
  #frameLen = 0;
  #error: AtpError | undefined;
  #code = 0;
  #flags = 0;
  #stream = 0;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** The largest payload accepted; raised after WELCOME (ATP_WIRE §8). */
  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  set maxFrameBytes(n: number) {
    this.#maxFrameBytes = n;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.#headLen + this.#frameLen;
  }

  /** Feed a chunk; `onFrame` is called for each complete frame, in order. */
  push(chunk: Uint8Array, onFrame: (frame: RawFrame) => void): void {
    if (this.#error) throw this.#error;
    try {
      this.#push(chunk, onFrame);
    } catch (err) {
      if (err instanceof AtpError && this.#error === undefined) this.#error = err;
      throw err;
    }
  }

  #push(chunk: Uint8Array, onFrame: (frame: RawFrame) => void): void {
    let off = 0;
    const end = chunk.length;
    // Finish a frame carried over from earlier chunks.
    if (this.#headLen > 0) {
      const take = Math.min(HEADER_BYTES - this.#headLen, end);
      this.#head.set(chunk.subarray(0, take), this.#headLen);
      this.#headLen += take;
      off = take;
      if (this.#headLen < HEADER_BYTES) return;
      const len = this.#readHeader(new DataView(this.#head.buffer), 0);
      this.#headLen = 0;
      this.#frame = new Uint8Array(len);
      this.#frameLen = 0;
    }
    if (this.#frame !== undefined) {
      const frame = this.#frame;
      const take = Math.min(frame.length - this.#frameLen, end - off);
      frame.set(chunk.subarray(off, off + take), this.#frameLen);
      this.#frameLen += take;
      off += take;
      if (this.#frameLen < frame.length) return;
      this.#frame = undefined;
      this.#frameLen = 0;
      onFrame({ code: this.#code, flags: this.#flags, stream: this.#stream, payload: frame });
    }
    if (off >= end) return;
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (end - off >= HEADER_BYTES) {
      const len = this.#readHeader(view, off);
      const start = off + HEADER_BYTES;
      if (end - start >= len) {
        off = start + len;
        onFrame({ code: this.#code, flags: this.#flags, stream: this.#stream, payload: chunk.subarray(start, off) });
      } else {
        const frame = new Uint8Array(len);
        frame.set(chunk.subarray(start, end));
        this.#frame = frame;
        this.#frameLen = end - start;
        return;
      }
    }
    if (off < end) {
      this.#head.set(chunk.subarray(off, end), 0);
      this.#headLen = end - off;
    }
  }

  /** Validate a header; returns the payload length. ATP_WIRE §3.2: checks come before allocation. */
  #readHeader(view: DataView, off: number): number {
    const len = view.getUint32(off);
    const code = view.getUint16(off + 4);
    this.#code = code;
    this.#flags = view.getUint8(off + 6);
    this.#stream = view.getUint32(off + 8) & 0x7fffffff;
    if (len > this.#maxFrameBytes) {
      throw new AtpError('ATP_ERR_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the limit of ${this.#maxFrameBytes}`, {
        type: code,
        length: len,
      });
    }
    if (code === 0 || code >= 0xff00) {
      throw new AtpError('ATP_ERR_PROTOCOL', `frame type 0x${code.toString(16).padStart(4, '0')} is reserved`, { type: code });
    }
    const min = minBodyBytes(code);
    if (min !== undefined && len < min) {
      throw new AtpError('ATP_ERR_ENCODING', `frame type 0x${code.toString(16).padStart(4, '0')} needs at least ${min} bytes, got ${len}`, {
        type: code,
        length: len,
      });
    }
    return len;
  }
}

/**
 * Decode every frame in `bytes` into messages (unknown and GREASE types are skipped). For tests,
 * the dump tool and other whole-buffer uses.
 */
export function decodeAll(bytes: Uint8Array, maxFrameBytes: number): Message[] {
  const out: Message[] = [];
  const d = new FrameDecoder(maxFrameBytes);
  d.push(bytes, (f) => {
    const m = decodeBody(f.code, f.stream, f.payload);
    if (m !== undefined) out.push(m);
  });
  if (d.bufferedBytes > 0) throw new AtpError('ATP_ERR_ENCODING', `${d.bufferedBytes} bytes of an incomplete frame at the end`);
  return out;
}
