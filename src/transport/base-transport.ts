/**
 * What every transport shares: installing handlers late without losing bytes, pause/resume as
 * inbound backpressure on the underlying source, asynchronous drain, and a close delivered exactly
 * once. Subclasses feed it with push() and finish() and map pauseSource()/resumeSource() to their I/O.
 */
import type { Transport, TransportHandlers } from './transport.js';

/** Default high-water mark of the outbound buffer: write() returns false above 1 MiB. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024;

/** On an unframed transport, held chunks are merged into data() calls of at most this many bytes. */
const MERGE_LIMIT_BYTES = 64 * 1024;

/** Base class of the transports. Subclasses call start() at the end of their constructor. */
export abstract class BaseTransport implements Transport {
  abstract readonly kind: Transport['kind'];
  abstract readonly framed: boolean;
  abstract readonly remote: string;
  abstract get bufferedBytes(): number;
  abstract write(bytes: Uint8Array, written?: () => void): boolean;
  abstract end(code?: number, reason?: string): void;
  abstract destroy(error?: Error): void;

  /** Stop reading from the underlying source. */
  protected abstract pauseSource(): void;
  /** Read from the underlying source again. */
  protected abstract resumeSource(): void;

  #handlers: TransportHandlers | undefined;
  /** Chunks that arrived while no handler could take them. */
  readonly #held: Uint8Array[] = [];
  #paused = false;
  #sourcePaused = false;
  #delivering = false;
  #flushScheduled = false;
  #drainOwed = false;
  /** Set once the connection ended; `drop` means held bytes are discarded. */
  #ending: { readonly error: Error | undefined } | undefined;
  #closed = false;

  setHandlers(handlers: TransportHandlers): void {
    if (this.#handlers !== undefined) throw new Error('transport handlers are already installed');
    this.#handlers = handlers;
    this.#update();
  }

  pause(): void {
    this.#paused = true;
    this.#update();
  }

  resume(): void {
    this.#paused = false;
    this.#update();
  }

  /** True once the connection has ended (the close may still be waiting for held bytes). */
  protected get finished(): boolean {
    return this.#ending !== undefined;
  }

  /** Subclasses call this once their fields are ready: it pauses the source until handlers exist. */
  protected start(): void {
    this.#update();
  }

  /** The source delivered bytes. */
  protected push(chunk: Uint8Array): void {
    if (this.#ending !== undefined) return;
    if (this.#handlers !== undefined && !this.#paused && this.#held.length === 0 && !this.#delivering) {
      this.#deliver(this.#handlers, chunk);
      return;
    }
    this.#held.push(chunk);
    this.#update();
  }

  /**
   * The connection ended. A clean end is reported after the held bytes are delivered; an error,
   * or `dropHeld` (a local destroy), discards them and is reported at once, even while paused.
   */
  protected finish(error?: Error, dropHeld = error !== undefined): void {
    if (this.#ending !== undefined) return;
    this.#ending = { error };
    // No drain() after the end: nothing more can be written.
    this.#drainOwed = false;
    if (dropHeld) this.#held.length = 0;
    this.#update();
  }

  /** The outbound buffer fell below the high-water mark: deliver drain() asynchronously. */
  protected emitDrain(): void {
    if (this.#ending !== undefined) return;
    this.#drainOwed = true;
    this.#update();
  }

  /** Called after each data() delivery with the number of bytes handed over. */
  protected consumed(_bytes: number): void {}

  #closeReady(): boolean {
    return this.#ending !== undefined && (this.#ending.error !== undefined || this.#held.length === 0);
  }

  #update(): void {
    const flowing = this.#handlers !== undefined && !this.#paused;
    if (this.#handlers !== undefined && !this.#closed && (this.#drainOwed || this.#closeReady() || (flowing && this.#held.length > 0))) {
      this.#scheduleFlush();
    }
    if (this.#ending !== undefined) return;
    // Keep the source stopped while bytes are held so that the holding stays bounded.
    const wantPaused = !flowing || this.#held.length > 0;
    if (wantPaused === this.#sourcePaused) return;
    this.#sourcePaused = wantPaused;
    if (wantPaused) this.pauseSource();
    else this.resumeSource();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const handlers = this.#handlers;
    if (handlers === undefined || this.#closed) return;
    while (!this.#paused && this.#held.length > 0 && !this.#closed) {
      this.#deliver(handlers, this.#takeHeld());
    }
    if (this.#drainOwed && !this.#closed && this.#ending === undefined) {
      this.#drainOwed = false;
      handlers.drain();
    }
    if (!this.#closed && this.#closeReady()) {
      this.#closed = true;
      this.#drainOwed = false;
      this.#held.length = 0;
      const error = this.#ending?.error;
      if (error === undefined) handlers.close();
      else handlers.close(error);
      return;
    }
    this.#update();
  }

  #takeHeld(): Uint8Array {
    const first = this.#held.shift() as Uint8Array;
    if (this.framed || this.#held.length === 0) return first;
    let total = first.byteLength;
    let count = 0;
    for (const chunk of this.#held) {
      if (total + chunk.byteLength > MERGE_LIMIT_BYTES) break;
      total += chunk.byteLength;
      count++;
    }
    if (count === 0) return first;
    const merged = new Uint8Array(total);
    merged.set(first, 0);
    let offset = first.byteLength;
    for (const chunk of this.#held.splice(0, count)) {
      merged.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return merged;
  }

  #deliver(handlers: TransportHandlers, chunk: Uint8Array): void {
    this.#delivering = true;
    try {
      handlers.data(chunk);
    } finally {
      this.#delivering = false;
    }
    this.consumed(chunk.byteLength);
  }
}

/** Validates a high-water mark option: a positive safe integer. */
export function highWaterMarkOf(value: number | undefined): number {
  if (value === undefined) return DEFAULT_HIGH_WATER_MARK_BYTES;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`highWaterMarkBytes must be a positive integer, got ${String(value)}`);
  }
  return value;
}
