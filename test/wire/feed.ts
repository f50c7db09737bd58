/**
 * Test helper: feeds bytes to a FrameDecoder in given chunks and decodes every body, recording
 * what happened. Any exception other than an AtpError is rethrown: that is always a defect.
 */
import { AtpError } from '../../src/errors.js';
import { FrameDecoder, decodeBody, messageToJson } from '../../src/wire/index.js';
import type { MessageJson } from '../../src/wire/index.js';

/** What a decoder made of some input. */
export interface FeedOutcome {
  /** Decoded messages, in JSON form (ignored frames are not listed). */
  messages: MessageJson[];
  /** Frames seen, ignored ones included. */
  frames: number;
  /** The AtpError that stopped decoding, if any. */
  error: AtpError | undefined;
  /** Bytes fed up to and including the chunk that raised the error (or all of them). */
  bytesFed: number;
  /** Largest FrameDecoder.bufferedBytes seen after a push. */
  maxBuffered: number;
  /** bufferedBytes at the end (an incomplete frame). */
  leftover: number;
  /** Largest FrameDecoder.reservedBytes seen after a push: what was allocated for incomplete frames and messages. */
  maxReserved: number;
  /** Fragments seen. */
  fragments: number;
  /** True when the input ends inside a frame or a fragmented message. */
  incomplete: boolean;
}

/** Feed the chunks in order; stop at the first AtpError. `maxMessageBytes` 0 refuses fragmented messages. */
export function feed(chunks: Iterable<Uint8Array>, maxFrameBytes: number, maxMessageBytes = 0): FeedOutcome {
  const d = new FrameDecoder(maxFrameBytes, maxMessageBytes);
  const out: FeedOutcome = {
    messages: [],
    frames: 0,
    error: undefined,
    bytesFed: 0,
    maxBuffered: 0,
    leftover: 0,
    maxReserved: 0,
    fragments: 0,
    incomplete: false,
  };
  for (const chunk of chunks) {
    out.bytesFed += chunk.length;
    try {
      d.push(
        chunk,
        (f) => {
          out.frames++;
          const m = decodeBody(f.code, f.stream, f.payload);
          if (m !== undefined) out.messages.push(messageToJson(m));
        },
        () => out.fragments++,
      );
    } catch (err) {
      if (!(err instanceof AtpError)) throw err;
      out.error = err;
      return out;
    } finally {
      out.maxBuffered = Math.max(out.maxBuffered, d.bufferedBytes);
      out.maxReserved = Math.max(out.maxReserved, d.reservedBytes);
    }
  }
  out.leftover = d.bufferedBytes;
  out.incomplete = d.inFrame || d.inMessage;
  return out;
}

/** The bytes as one-byte chunks. */
export function* bytewise(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

/** The bytes cut at the given offsets (sorted, duplicates allowed). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...cuts].map((c) => Math.max(0, Math.min(bytes.length, c))).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Concatenate byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
