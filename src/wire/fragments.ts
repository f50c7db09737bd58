/**
 * Fragmented messages, the sending side (ATP_WIRE §3.7): a message is cut into a run of frames of
 * its type and stream, the first carrying the length of the whole body, every one but the last
 * flagged MORE, every one but the first flagged CONTINUATION. Fragments are made one at a time, so
 * that frames of other messages can be sent between them and only the bytes of the fragment being
 * made are copied.
 */
import { FIRST_FRAGMENT_PREFIX_BYTES, FrameFlags, HEADER_BYTES } from './constants.js';
import { bodyBytes, bodySegments, specOf } from './codec.js';
import type { Message } from './schema.js';

/** Cuts one message into fragment frames, one fragment per next(). */
export class MessageFragmenter {
  /** The message type code. */
  readonly code: number;
  readonly stream: number;
  /** Length of the encoded message body: the total announced by the first fragment. */
  readonly bodyBytes: number;
  readonly #segments: Uint8Array[];
  #segment = 0;
  #segmentOff = 0;
  #sent = 0;
  #frames = 0;

  /**
   * Encodes the small fields now; `bytes` fields of at least `inlineMax` bytes are read from the
   * message as fragments are made, and must not change until the last one is.
   */
  constructor(msg: Message, inlineMax?: number) {
    const stream = msg.stream;
    if (!Number.isInteger(stream) || stream < 0 || stream > 0x7fffffff)
      throw new RangeError(`ATP encode: field stream must be an integer in [0, ${0x7fffffff}], got ${String(stream)}`);
    this.code = specOf(msg.type).code;
    this.stream = stream;
    this.bodyBytes = bodyBytes(msg);
    // A fragmented message spans at least two frames, each with at least one byte of the body.
    if (this.bodyBytes < 2) throw new RangeError(`ATP encode: a body of ${this.bodyBytes} bytes cannot be fragmented`);
    this.#segments = bodySegments(msg, inlineMax);
  }

  /** Fragments made so far. */
  get frames(): number {
    return this.#frames;
  }

  /** True once the last fragment is made. */
  get done(): boolean {
    return this.#sent === this.bodyBytes;
  }

  /** Body bytes not yet in a fragment. */
  get remaining(): number {
    return this.bodyBytes - this.#sent;
  }

  /** The payload length the next fragment has when it may carry up to `maxPayload` bytes. */
  nextPayloadBytes(maxPayload: number): number {
    const prefix = this.#frames === 0 ? FIRST_FRAGMENT_PREFIX_BYTES : 0;
    let n = Math.min(maxPayload - prefix, this.remaining);
    // The first fragment never carries the whole body: the message would not be fragmented.
    if (this.#frames === 0) n = Math.min(n, this.bodyBytes - 1);
    return n < 1 ? 0 : prefix + n;
  }

  /**
   * The next fragment, header included, with a payload of at most `maxPayload` bytes: written into
   * `into` when it is given and large enough (the result is then a view of it), else into a new buffer.
   */
  next(maxPayload: number, into?: Uint8Array): Uint8Array {
    if (this.done) throw new RangeError('ATP encode: every fragment of this message has been made');
    const payload = this.nextPayloadBytes(maxPayload);
    if (payload === 0) throw new RangeError(`ATP encode: a fragment needs room for at least one byte of the body, got ${maxPayload}`);
    const first = this.#frames === 0;
    const prefix = first ? FIRST_FRAGMENT_PREFIX_BYTES : 0;
    const n = payload - prefix;
    const last = this.#sent + n === this.bodyBytes;
    const out =
      into !== undefined && into.length >= HEADER_BYTES + payload
        ? into.subarray(0, HEADER_BYTES + payload)
        : new Uint8Array(HEADER_BYTES + payload);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    view.setUint8(7, 0);
    view.setUint32(0, payload);
    view.setUint16(4, this.code);
    view.setUint8(6, (last ? 0 : FrameFlags.MORE) | (first ? 0 : FrameFlags.CONTINUATION));
    view.setUint32(8, this.stream);
    if (first) view.setUint32(HEADER_BYTES, this.bodyBytes);
    let at = HEADER_BYTES + prefix;
    let left = n;
    while (left > 0) {
      const seg = this.#segments[this.#segment]!;
      const take = Math.min(left, seg.length - this.#segmentOff);
      out.set(seg.subarray(this.#segmentOff, this.#segmentOff + take), at);
      at += take;
      left -= take;
      this.#segmentOff += take;
      if (this.#segmentOff === seg.length) {
        this.#segment++;
        this.#segmentOff = 0;
      }
    }
    this.#sent += n;
    this.#frames++;
    return out;
  }
}

/** A whole message as fragment frames whose payloads are at most `maxPayload` bytes each. */
export function encodeFragments(msg: Message, maxPayload: number): Uint8Array[] {
  const f = new MessageFragmenter(msg);
  const out: Uint8Array[] = [];
  while (!f.done) out.push(f.next(maxPayload));
  return out;
}
