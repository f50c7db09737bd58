/**
 * Batches encoded frames into one buffer, so that many frames leave in one write (the syscall,
 * not the byte count, bounds loopback throughput: ../docs/ATP_RATIONALE.md §7).
 */
import { HEADER_BYTES } from './constants.js';
import { bodyBytes, encodeFrameInto } from './codec.js';
import type { Message } from './schema.js';

const INITIAL_BYTES = 16 * 1024;

/** Appends frames to a growing buffer; `take()` hands the bytes out and starts afresh. */
export class FrameEncoder {
  #bytes = new Uint8Array(INITIAL_BYTES);
  #view = new DataView(this.#bytes.buffer);
  #off = 0;
  #frames = 0;

  /** Bytes waiting to be taken. */
  get pendingBytes(): number {
    return this.#off;
  }

  /** Frames waiting to be taken. */
  get pendingFrames(): number {
    return this.#frames;
  }

  /** Encode one message after the ones already pending (`body`: its body size, when already known). */
  push(msg: Message, body: number = bodyBytes(msg)): void {
    const need = this.#off + HEADER_BYTES + body;
    if (need > this.#bytes.length) this.#grow(need);
    this.#off = encodeFrameInto(msg, this.#bytes, this.#view, this.#off, body);
    this.#frames++;
  }

  /** The pending frames as one buffer (owned by the caller), or undefined when there are none. */
  take(): Uint8Array | undefined {
    if (this.#off === 0) return undefined;
    const out = this.#bytes.slice(0, this.#off);
    this.#off = 0;
    this.#frames = 0;
    if (this.#bytes.length > 4 * 1024 * 1024) {
      this.#bytes = new Uint8Array(INITIAL_BYTES);
      this.#view = new DataView(this.#bytes.buffer);
    }
    return out;
  }

  #grow(need: number): void {
    let size = this.#bytes.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#bytes.subarray(0, this.#off));
    this.#bytes = next;
    this.#view = new DataView(next.buffer);
  }
}
