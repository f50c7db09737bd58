/**
 * The incremental frame decoder (ATP_WIRE §3): accepts bytes in chunks of any size and yields
 * complete messages. Every length is checked against its limit before any allocation: a frame's
 * from the 12-byte header, a fragmented message's from the first 16 bytes of its first fragment
 * (ATP_WIRE §3.7). A frame that straddles chunks is copied once into a buffer of its exact size;
 * the fragments of a message are copied, as they arrive, into one buffer of the message's size.
 */
import { AtpError } from '../errors.js';
import { FIRST_FRAGMENT_PREFIX_BYTES, FrameFlags, HEADER_BYTES } from './constants.js';
import { decodeBody, minBodyBytes } from './codec.js';
import type { Message } from './schema.js';

/** A complete message: the header fields and its body. */
export interface RawFrame {
  code: number;
  /** The Flags byte of the frame; 0 for a message reassembled from fragments. */
  flags: number;
  stream: number;
  /**
   * The message body. A view into the received chunk, or a buffer of its own (a frame that
   * straddled chunks, a reassembled message). Empty for a fragmented message of an unregistered
   * type, which is read past without being kept.
   */
  payload: Uint8Array;
  /** Frames the message arrived in: 1, or its number of fragments. */
  frames: number;
}

/** One fragment, reported once its last byte has arrived (flow control, diagnostics). */
export interface FragmentInfo {
  code: number;
  flags: number;
  stream: number;
  /** Payload length of the fragment frame (for a first fragment, the 4-byte message length included). */
  length: number;
  /** Length of the whole message body, as announced by its first fragment. */
  messageLength: number;
  /** Body bytes of the message received so far, this fragment's included. */
  received: number;
}

interface Assembly {
  code: number;
  stream: number;
  total: number;
  /** Undefined for an unregistered type (its bytes are skipped), and while the body waits for memory. */
  buf: Uint8Array | undefined;
  /** Copies of the bytes received while the body waits for memory (see `allocate`). */
  held: Uint8Array[] | undefined;
  received: number;
  frames: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Gives the buffer for a fragmented message's body of `total` bytes, or undefined when there is no
 * memory for it yet: the decoder then keeps copies of the bytes that arrive until `resume()`.
 */
export type MessageAllocator = (total: number) => Uint8Array | undefined;
/** Copy `pieces` one after the other into the start of `into`; returns `into`. */
function gather(pieces: readonly Uint8Array[], into: Uint8Array): Uint8Array {
  let at = 0;
  for (const piece of pieces) {
    into.set(piece, at);
    at += piece.length;
  }
  return into;
}

const hex4 = (code: number): string => `0x${code.toString(16).padStart(4, '0')}`;

/**
 * Decodes a byte stream into messages. After it throws, the decoder is poisoned: every later push
 * throws the same error, because the stream can no longer be trusted.
 */
export class FrameDecoder {
  #maxFrameBytes: number;
  #maxMessageBytes: number;
  /** Where a message's body goes; by default a new buffer of its size. */
  allocate: MessageAllocator | undefined;
  /** Header bytes held: 12, and 4 more for the message length of a first fragment. */
  #head = new Uint8Array(HEADER_BYTES + FIRST_FRAGMENT_PREFIX_BYTES);
  #headView = new DataView(this.#head.buffer);
  #headLen = 0;
  #headNeed = HEADER_BYTES;
  #frame: Uint8Array | undefined;
  #frameLen = 0;
  /** Payload bytes of the current fragment still to come. */
  #fragLeft = 0;
  #fragLength = 0;
  #fragFlags = 0;
  #msg: Assembly | undefined;
  #error: AtpError | undefined;
  #code = 0;
  #flags = 0;
  #stream = 0;
  #len = 0;

  /**
   * `maxMessageBytes` bounds a fragmented message's body; 0 (the default) refuses fragmented
   * messages, as before WELCOME (ATP_WIRE §3.7).
   */
  constructor(maxFrameBytes: number, maxMessageBytes = 0) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** The largest payload of one frame accepted; raised after WELCOME (ATP_WIRE §8). */
  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  set maxFrameBytes(n: number) {
    this.#maxFrameBytes = n;
  }

  /** The largest message body accepted in fragments; 0 refuses fragments (ATP_WIRE §3.7). */
  get maxMessageBytes(): number {
    return this.#maxMessageBytes;
  }

  set maxMessageBytes(n: number) {
    this.#maxMessageBytes = n;
  }

  /** Bytes held for an incomplete frame or fragmented message. */
  get bufferedBytes(): number {
    const m = this.#msg;
    return this.#headLen + this.#frameLen + (m !== undefined && (m.buf !== undefined || m.held !== undefined) ? m.received : 0);
  }

  /** Bytes allocated for what is incomplete: a straddling frame, or the whole body of a fragmented message. */
  get reservedBytes(): number {
    return (this.#frame?.length ?? 0) + (this.#msg?.buf?.length ?? 0);
  }

  /** True while a frame is incomplete (part of a header or of a payload has arrived). */
  get inFrame(): boolean {
    return this.#headLen > 0 || this.#frame !== undefined || this.#fragLeft > 0;
  }

  /** True while a fragmented message is incomplete. */
  get inMessage(): boolean {
    return this.#msg !== undefined;
  }

  /** True while the message in progress waits for the buffer its allocator did not give (see `resume`). */
  get waiting(): boolean {
    return this.#msg?.held !== undefined;
  }

  /**
   * The buffer for the message that waits: the bytes held so far are copied into it, and the rest
   * go straight there. `buf` must be exactly the message's length.
   */
  resume(buf: Uint8Array): void {
    const m = this.#msg;
    if (m?.held === undefined) throw new Error('no fragmented message waits for a buffer');
    if (buf.length !== m.total) throw new RangeError(`a buffer of ${buf.length} bytes for a ${m.total}-byte message`);
    m.buf = gather(m.held, buf);
    m.held = undefined;
  }

  /**
   * Feed a chunk; `onFrame` is called for each complete message, in order, and `onFragment` (when
   * given) for each fragment once it is complete, before the message it completes.
   */
  push(chunk: Uint8Array, onFrame: (frame: RawFrame) => void, onFragment?: (f: FragmentInfo) => void): void {
    if (this.#error) throw this.#error;
    try {
      this.#push(chunk, onFrame, onFragment);
    } catch (err) {
      if (err instanceof AtpError && this.#error === undefined) this.#error = err;
      throw err;
    }
  }

  #push(chunk: Uint8Array, onFrame: (frame: RawFrame) => void, onFragment: ((f: FragmentInfo) => void) | undefined): void {
    let off = 0;
    const end = chunk.length;
    let view: DataView | undefined;
    while (off < end) {
      // Inside a fragment: its bytes go straight into the message buffer.
      if (this.#fragLeft > 0) {
        const m = this.#msg!;
        const take = Math.min(this.#fragLeft, end - off);
        if (m.buf !== undefined) m.buf.set(chunk.subarray(off, off + take), m.received);
        else m.held?.push(Uint8Array.prototype.slice.call(chunk, off, off + take));
        m.received += take;
        this.#fragLeft -= take;
        off += take;
        if (this.#fragLeft === 0) this.#fragmentDone(onFrame, onFragment);
        continue;
      }
      // Inside a whole frame that straddles chunks.
      if (this.#frame !== undefined) {
        const frame = this.#frame;
        const take = Math.min(frame.length - this.#frameLen, end - off);
        frame.set(chunk.subarray(off, off + take), this.#frameLen);
        this.#frameLen += take;
        off += take;
        if (this.#frameLen < frame.length) return;
        this.#frame = undefined;
        this.#frameLen = 0;
        onFrame({ code: this.#code, flags: this.#flags, stream: this.#stream, payload: frame, frames: 1 });
        continue;
      }
      // At a header. Fast path: a whole header and its whole frame within this chunk.
      if (this.#headLen === 0 && end - off >= HEADER_BYTES) {
        view ??= new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        this.#readHeader(view, off);
        if ((this.#flags & (FrameFlags.MORE | FrameFlags.CONTINUATION)) === 0) {
          const start = off + HEADER_BYTES;
          const len = this.#len;
          if (end - start >= len) {
            off = start + len;
            onFrame({ code: this.#code, flags: this.#flags, stream: this.#stream, payload: chunk.subarray(start, off), frames: 1 });
            continue;
          }
          const frame = new Uint8Array(len);
          frame.set(chunk.subarray(start, end));
          this.#frame = frame;
          this.#frameLen = end - start;
          return;
        }
        if ((this.#flags & FrameFlags.CONTINUATION) !== 0) {
          off += HEADER_BYTES;
          this.#startContinuation();
          continue;
        }
        // A first fragment: its message length follows the header.
        if (end - off >= HEADER_BYTES + FIRST_FRAGMENT_PREFIX_BYTES) {
          this.#startMessage(view.getUint32(off + HEADER_BYTES));
          off += HEADER_BYTES + FIRST_FRAGMENT_PREFIX_BYTES;
          continue;
        }
        this.#head.set(chunk.subarray(off, end), 0);
        this.#headLen = end - off;
        this.#headNeed = HEADER_BYTES + FIRST_FRAGMENT_PREFIX_BYTES;
        return;
      }
      // Slow path: collect the header across chunks.
      const take = Math.min(this.#headNeed - this.#headLen, end - off);
      this.#head.set(chunk.subarray(off, off + take), this.#headLen);
      this.#headLen += take;
      off += take;
      if (this.#headLen < this.#headNeed) return;
      if (this.#headNeed === HEADER_BYTES) {
        this.#readHeader(this.#headView, 0);
        const fragment = this.#flags & (FrameFlags.MORE | FrameFlags.CONTINUATION);
        if (fragment === FrameFlags.MORE) {
          this.#headNeed = HEADER_BYTES + FIRST_FRAGMENT_PREFIX_BYTES;
          continue;
        }
        this.#headLen = 0;
        if (fragment !== 0) {
          this.#startContinuation();
          continue;
        }
        if (this.#len === 0) {
          onFrame({ code: this.#code, flags: this.#flags, stream: this.#stream, payload: EMPTY, frames: 1 });
          continue;
        }
        this.#frame = new Uint8Array(this.#len);
        this.#frameLen = 0;
        continue;
      }
      this.#headLen = 0;
      this.#headNeed = HEADER_BYTES;
      this.#startMessage(this.#headView.getUint32(HEADER_BYTES));
    }
  }

  /**
   * Validate a 12-byte header (ATP_WIRE §3.2, §3.7): every check that needs only the header
   * comes before any allocation. Sets the current code, flags, stream and length.
   */
  #readHeader(view: DataView, off: number): void {
    const len = view.getUint32(off);
    const code = view.getUint16(off + 4);
    const flags = view.getUint8(off + 6);
    const stream = view.getUint32(off + 8) & 0x7fffffff;
    this.#code = code;
    this.#flags = flags;
    this.#stream = stream;
    this.#len = len;
    if (len > this.#maxFrameBytes) {
      throw new AtpError('ATP_ERR_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the limit of ${this.#maxFrameBytes}`, {
        type: code,
        length: len,
      });
    }
    if (code === 0 || code >= 0xff00) {
      throw new AtpError('ATP_ERR_PROTOCOL', `frame type ${hex4(code)} is reserved`, { type: code });
    }
    const more = (flags & FrameFlags.MORE) !== 0;
    if ((flags & FrameFlags.CONTINUATION) !== 0) {
      const m = this.#msg;
      if (m === undefined) {
        throw new AtpError(
          'ATP_ERR_PROTOCOL',
          `a continuation fragment (type ${hex4(code)}, stream ${stream}) with no fragmented message in progress`,
          {
            type: code,
          },
        );
      }
      if (m.code !== code || m.stream !== stream) {
        throw new AtpError(
          'ATP_ERR_PROTOCOL',
          `a continuation fragment of type ${hex4(code)} on stream ${stream} while the message in progress is type ${hex4(m.code)} on stream ${m.stream}`,
          { type: code },
        );
      }
      const left = m.total - m.received;
      if (len === 0) throw new AtpError('ATP_ERR_ENCODING', `an empty fragment of type ${hex4(code)}`, { type: code });
      if (len > left) {
        throw new AtpError('ATP_ERR_ENCODING', `a fragment of ${len} bytes runs past the ${m.total}-byte message (${left} bytes left)`, {
          type: code,
          length: len,
        });
      }
      if (!more && len < left) {
        throw new AtpError('ATP_ERR_ENCODING', `the last fragment ends the ${m.total}-byte message ${left - len} bytes short`, {
          type: code,
          length: len,
        });
      }
      if (more && len === left) {
        throw new AtpError('ATP_ERR_ENCODING', `a fragment completes the ${m.total}-byte message but is flagged MORE`, { type: code });
      }
      return;
    }
    if (more) {
      if (this.#msg !== undefined) {
        throw new AtpError(
          'ATP_ERR_PROTOCOL',
          `a second fragmented message (type ${hex4(code)}, stream ${stream}) while type ${hex4(this.#msg.code)} on stream ${this.#msg.stream} is in progress`,
          { type: code },
        );
      }
      if (this.#maxMessageBytes === 0) {
        throw new AtpError('ATP_ERR_PROTOCOL', `a fragmented message (type ${hex4(code)}) before the limits are agreed in WELCOME`, {
          type: code,
        });
      }
      if (len < FIRST_FRAGMENT_PREFIX_BYTES + 1) {
        throw new AtpError(
          'ATP_ERR_ENCODING',
          `a first fragment of ${len} bytes: it needs the 4-byte message length and a byte of the body`,
          {
            type: code,
            length: len,
          },
        );
      }
      return;
    }
    const min = minBodyBytes(code);
    if (min !== undefined && len < min) {
      throw new AtpError('ATP_ERR_ENCODING', `frame type ${hex4(code)} needs at least ${min} bytes, got ${len}`, {
        type: code,
        length: len,
      });
    }
  }

  /** A first fragment's message length has arrived: check it, then allocate the message (ATP_WIRE §3.7). */
  #startMessage(total: number): void {
    const code = this.#code;
    const first = this.#len - FIRST_FRAGMENT_PREFIX_BYTES;
    if (total > this.#maxMessageBytes) {
      throw new AtpError('ATP_ERR_FRAME_TOO_LARGE', `message of ${total} bytes exceeds the limit of ${this.#maxMessageBytes}`, {
        type: code,
        length: total,
      });
    }
    const min = minBodyBytes(code);
    if (min !== undefined && total < min) {
      throw new AtpError('ATP_ERR_ENCODING', `message type ${hex4(code)} needs at least ${min} bytes, got ${total}`, {
        type: code,
        length: total,
      });
    }
    if (first >= total) {
      throw new AtpError('ATP_ERR_ENCODING', `a first fragment carries ${first} bytes of a ${total}-byte message flagged MORE`, {
        type: code,
        length: total,
      });
    }
    let buf: Uint8Array | undefined;
    let held: Uint8Array[] | undefined;
    if (min !== undefined) {
      buf = this.allocate === undefined ? new Uint8Array(total) : this.allocate(total);
      if (buf === undefined) held = [];
    }
    this.#msg = { code, stream: this.#stream, total, buf, held, received: 0, frames: 0 };
    this.#fragLength = this.#len;
    this.#fragFlags = this.#flags;
    this.#fragLeft = first;
  }

  #startContinuation(): void {
    this.#fragLength = this.#len;
    this.#fragFlags = this.#flags;
    this.#fragLeft = this.#len;
  }

  #fragmentDone(onFrame: (frame: RawFrame) => void, onFragment: ((f: FragmentInfo) => void) | undefined): void {
    const m = this.#msg!;
    m.frames++;
    onFragment?.({
      code: m.code,
      flags: this.#fragFlags,
      stream: m.stream,
      length: this.#fragLength,
      messageLength: m.total,
      received: m.received,
    });
    if (m.received < m.total) return;
    this.#msg = undefined;
    // A message that arrived whole while it waited for memory (it is at most a window long).
    if (m.held !== undefined) m.buf = gather(m.held, new Uint8Array(m.total));
    onFrame({ code: m.code, flags: 0, stream: m.stream, payload: m.buf ?? EMPTY, frames: m.frames });
  }
}

/**
 * Decode every frame in `bytes` into messages (unknown and GREASE types are skipped). For tests,
 * the dump tool and other whole-buffer uses; `maxMessageBytes` 0 refuses fragmented messages.
 */
export function decodeAll(bytes: Uint8Array, maxFrameBytes: number, maxMessageBytes = 0): Message[] {
  const out: Message[] = [];
  const d = new FrameDecoder(maxFrameBytes, maxMessageBytes);
  d.push(bytes, (f) => {
    const m = decodeBody(f.code, f.stream, f.payload);
    if (m !== undefined) out.push(m);
  });
  if (d.bufferedBytes > 0 || d.inFrame || d.inMessage)
    throw new AtpError('ATP_ERR_ENCODING', `${d.bufferedBytes} bytes of an incomplete frame or message at the end`);
  return out;
}
