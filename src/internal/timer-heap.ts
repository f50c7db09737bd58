/**
 * One timer structure for every deadline in the coordinator (lease expiries, revoke deadlines,
 * resume windows, artifact deadlines): a binary min-heap driving a single clock timer, never a
 * setTimeout per lease (DESIGN: Timers).
 */
import type { Clock, Timer } from './clock.js';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** A handle that cancels one scheduled callback. */
export interface HeapTimer {
  cancel(): void;
}

/** Schedules callbacks at absolute clock times. */
export class TimerHeap {
  readonly #clock: Clock;
  #heap: Entry[] = [];
  #seq = 0;
  #armed: Timer | undefined;
  #armedAt = Infinity;
  #live = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Live scheduled callbacks. */
  get size(): number {
    return this.#live;
  }

  /** Run `fn` at clock time `at` (or at once, on the next turn, if `at` has passed). */
  at(at: number, fn: () => void): HeapTimer {
    const e: Entry = { at, seq: this.#seq++, fn, live: true };
    this.#push(e);
    this.#live++;
    if (at < this.#armedAt) this.#arm();
    return {
      cancel: () => {
        if (e.live) {
          e.live = false;
          this.#live--;
        }
      },
    };
  }

  /** Cancel everything. */
  clear(): void {
    this.#heap = [];
    this.#live = 0;
    this.#armed?.cancel();
    this.#armed = undefined;
    this.#armedAt = Infinity;
  }

  #arm(): void {
    while (this.#heap.length > 0 && !this.#heap[0]!.live) this.#pop();
    this.#armed?.cancel();
    this.#armed = undefined;
    this.#armedAt = Infinity;
    const top = this.#heap[0];
    if (top === undefined) return;
    this.#armedAt = top.at;
    this.#armed = this.#clock.setTimer(top.at - this.#clock.now(), () => this.#fire());
  }

  #fire(): void {
    this.#armed = undefined;
    this.#armedAt = Infinity;
    const now = this.#clock.now();
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const e = this.#pop()!;
      if (!e.live) continue;
      e.live = false;
      this.#live--;
      e.fn();
    }
    this.#arm();
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Entry | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
