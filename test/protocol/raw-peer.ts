/**
 * A client that speaks raw frames to a coordinator-side channel or a coordinator: it sends exactly
 * the frames a test gives it, and keeps count of its fragment window (ATP_WIRE §3.8).
 */
import assert from 'node:assert/strict';
import type { Transport } from '../../src/transport/transport.js';
import { FrameDecoder, Limits, PREFACE, decodeBody, encodeFrame } from '../../src/wire/index.js';
import type { Message } from '../../src/wire/index.js';
import { hello } from '../coordinator/harness.js';

/** The body length announced by a first fragment. */
export function bodyLength(frames: Uint8Array[]): number {
  const f = frames[0]!;
  return new DataView(f.buffer, f.byteOffset).getUint32(12);
}

export interface RawPeer {
  got: Message[];
  /** Fragment bytes this peer may still send: 64 KiB, plus every WINDOW received. */
  window: () => number;
  windows: () => number;
  send(bytes: Uint8Array): void;
  next(pred: (m: Message) => boolean): Promise<Message>;
}

/** A client that speaks raw frames: preface and HELLO, then what the test sends. */
export async function rawPeer(t: Transport): Promise<RawPeer> {
  const d = new FrameDecoder(Limits.DEFAULT_MAX_FRAME_BYTES, 1 << 24);
  const got: Message[] = [];
  let window: number = Limits.INITIAL_FRAGMENT_WINDOW;
  let windows = 0;
  let prefaceLeft = PREFACE.length;
  const waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  t.setHandlers({
    data: (chunk) => {
      const skip = Math.min(prefaceLeft, chunk.length);
      prefaceLeft -= skip;
      d.push(chunk.subarray(skip), (f) => {
        const m = decodeBody(f.code, f.stream, f.payload);
        if (m === undefined) return;
        if (m.type === 'WINDOW') {
          window += m.bytes;
          windows++;
        }
        got.push(m);
        for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred(m)) waiters.splice(i, 1)[0]!.resolve(m);
      });
    },
    drain: () => undefined,
    close: () => undefined,
  });
  const peer: RawPeer = {
    got,
    window: () => window,
    windows: () => windows,
    send: (bytes) => {
      const flags = bytes[6]!;
      if ((flags & 0x03) !== 0) window -= new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
      assert.ok(window >= 0, 'the test sent beyond the window');
      t.write(bytes);
    },
    next: (pred) => {
      const found = got.find(pred);
      return found !== undefined ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
  t.write(PREFACE);
  t.write(encodeFrame(hello({ roles: 2, agent: 'raw' })));
  await peer.next((m) => m.type === 'WELCOME');
  return peer;
}

/** Send `frames` in order, each once the peer's window allows it. */
export async function sendWithinWindow(p: RawPeer, frames: Uint8Array[]): Promise<void> {
  for (const f of frames) {
    const len = new DataView(f.buffer, f.byteOffset).getUint32(0);
    while (p.window() < len) await p.next((m) => m.type === 'WINDOW' && p.window() >= len);
    p.send(f);
  }
}
