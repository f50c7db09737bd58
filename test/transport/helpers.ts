/** Test helpers for transports: recording handlers, patterned bytes, and a writer that honours backpressure. */
import type { TestContext } from 'node:test';
import { connectTcp, listenTcp } from '../../src/transport/tcp.js';
import type { Transport } from '../../src/transport/transport.js';

/** What a transport delivered to its handlers. */
export interface Recorder {
  readonly chunks: Uint8Array[];
  receivedBytes: number;
  closeCalls: number;
  closeError: Error | undefined;
  drains: number;
  /** Resolves with the close error (or undefined) at the first close. */
  readonly closed: Promise<Error | undefined>;
  /** Resolves at the next drain(). */
  nextDrain(): Promise<void>;
  /** Resolves once at least `bytes` bytes were received. */
  received(bytes: number): Promise<void>;
  /** All received bytes, concatenated. */
  bytes(): Buffer;
}

/** Installs recording handlers on `transport`; `onData` runs after each chunk is recorded. */
export function record(transport: Transport, onData?: (chunk: Uint8Array) => void): Recorder {
  let resolveClosed!: (error: Error | undefined) => void;
  const closed = new Promise<Error | undefined>((resolve) => (resolveClosed = resolve));
  let drainWaiters: (() => void)[] = [];
  const byteWaiters: { bytes: number; resolve: () => void }[] = [];
  const recorder: Recorder = {
    chunks: [],
    receivedBytes: 0,
    closeCalls: 0,
    closeError: undefined,
    drains: 0,
    closed,
    nextDrain: () => new Promise((resolve) => drainWaiters.push(resolve)),
    received: (bytes) =>
      recorder.receivedBytes >= bytes ? Promise.resolve() : new Promise((resolve) => byteWaiters.push({ bytes, resolve })),
    bytes: () => Buffer.concat(recorder.chunks),
  };
  transport.setHandlers({
    data(chunk) {
      recorder.chunks.push(chunk);
      recorder.receivedBytes += chunk.byteLength;
      for (let i = byteWaiters.length - 1; i >= 0; i--) {
        const waiter = byteWaiters[i];
        if (waiter !== undefined && recorder.receivedBytes >= waiter.bytes) {
          byteWaiters.splice(i, 1);
          waiter.resolve();
        }
      }
      onData?.(chunk);
    },
    drain() {
      recorder.drains++;
      const waiters = drainWaiters;
      drainWaiters = [];
      for (const resolve of waiters) resolve();
    },
    close(error) {
      recorder.closeCalls++;
      recorder.closeError = error;
      resolveClosed(error);
    },
  });
  return recorder;
}

/** `length` bytes of a pattern that depends on the absolute stream offset, so that loss or reordering shows. */
export function pattern(offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (offset + i) % 251;
  return bytes;
}

/** The first offset at which `bytes` departs from the pattern, or -1. */
export function patternMismatch(bytes: Uint8Array, offset = 0): number {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== (offset + i) % 251) return offset + i;
  return -1;
}

/** Waits `count` turns of the event loop (not wall-clock time). */
export async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Writes `totalBytes` of the pattern in `chunkBytes` writes, waiting for drain() whenever write()
 * returns false. `falses` counts those waits; `firstFalse` tells the caller as soon as one happens.
 */
export async function pump(
  transport: Transport,
  recorder: Recorder,
  totalBytes: number,
  chunkBytes: number,
  firstFalse?: () => void,
): Promise<{ falses: number }> {
  let falses = 0;
  for (let offset = 0; offset < totalBytes; offset += chunkBytes) {
    if (!transport.write(pattern(offset, Math.min(chunkBytes, totalBytes - offset)))) {
      // drain() is never delivered synchronously, so waiting from here cannot miss it.
      const drained = recorder.nextDrain();
      falses++;
      if (falses === 1) firstFalse?.();
      await drained;
    }
  }
  return { falses };
}

/** Resolves with the next value passed to the returned callback. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A connected pair over loopback TCP, [client, server]; both ends and the listener close after the test. */
export async function tcpTransports(t: TestContext): Promise<[Transport, Transport]> {
  let accepted!: (tr: Transport) => void;
  const server = new Promise<Transport>((r) => (accepted = r));
  const listener = await listenTcp({ host: '127.0.0.1', port: 0 }, (tr) => accepted(tr));
  const { hostname, port } = new URL(listener.url);
  const client = await connectTcp({ host: hostname, port: Number(port) });
  const s = await server;
  t.after(async () => {
    client.destroy();
    s.destroy();
    await listener.close();
  });
  return [client, s];
}
