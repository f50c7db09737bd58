/**
 * The memory a coordinator gives to fragmented messages it is receiving, across all its connections
 * (ATP_SPEC ATP-4.5-10, ATP_WIRE §3.8). Each connection may receive one fragmented message at a time
 * and allocates its whole body when the first fragment arrives (ATP_WIRE §3.7); without a shared
 * bound, many connections each starting a message of the largest size would allocate that size many
 * times over. A message that does not fit waits, first come first served, while its connection's
 * window stays closed: its sender can send no more than one window of it, and every other frame on
 * that connection is still read and acted on.
 */

interface Waiter {
  bytes: number;
  granted: () => void;
}

/** A byte budget shared by the channels of one coordinator. */
export class MessageBudget {
  /** The most bytes reserved at once. */
  readonly limitBytes: number;
  #used = 0;
  #peak = 0;
  #waited = 0;
  readonly #queue: Waiter[] = [];

  constructor(limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 1) {
      throw new RangeError(`a message budget must be a positive integer number of bytes, got ${limitBytes}`);
    }
    this.limitBytes = limitBytes;
  }

  /** Bytes reserved now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** The most bytes that were reserved at once. */
  get peakBytes(): number {
    return this.#peak;
  }

  /** Messages waiting for bytes now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Messages that had to wait, since the budget was made. */
  get waited(): number {
    return this.#waited;
  }

  /** Reserve `bytes` now if they fit and nobody waits before; true when reserved. */
  tryReserve(bytes: number): boolean {
    if (this.#queue.length > 0 || this.#used + bytes > this.limitBytes) return false;
    this.#take(bytes);
    return true;
  }

  /**
   * Wait for `bytes`, behind the messages already waiting. They are reserved before `granted` is
   * called (in a microtask, never inside the release that freed them). Returns a function that
   * gives up the wait; after `granted` it does nothing, and the caller releases what it was given.
   */
  wait(bytes: number, granted: () => void): () => void {
    if (bytes > this.limitBytes) throw new RangeError(`a message of ${bytes} bytes can never fit a budget of ${this.limitBytes}`);
    const w: Waiter = { bytes, granted };
    this.#queue.push(w);
    this.#waited++;
    return () => {
      const i = this.#queue.indexOf(w);
      if (i < 0) return;
      this.#queue.splice(i, 1);
      // The first in line may have been the one that did not fit.
      if (i === 0) this.#grant();
    };
  }

  /** Give back bytes reserved by tryReserve() or granted by wait(). */
  release(bytes: number): void {
    if (bytes > this.#used) throw new RangeError(`released ${bytes} bytes of a budget with ${this.#used} reserved`);
    this.#used -= bytes;
    this.#grant();
  }

  #take(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  #grant(): void {
    for (;;) {
      const w = this.#queue[0];
      if (w === undefined || this.#used + w.bytes > this.limitBytes) return;
      this.#queue.shift();
      this.#take(w.bytes);
      queueMicrotask(w.granted);
    }
  }
}
