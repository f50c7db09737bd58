/**
 * The Clock: every expiry in ATP reads it, so that tests drive time by hand (STYLE: a test never
 * sleeps to wait for a lease to expire).
 */

/** A cancellable timer handle. */
export interface Timer {
  cancel(): void;
}

/** Time source and timers. `now()` is milliseconds; only differences between readings matter. */
export interface Clock {
  now(): number;
  setTimer(delayMs: number, fn: () => void): Timer;
}

/** The process clock: performance.now() offset to the epoch at start, real timers (unref'd). */
export class SystemClock implements Clock {
  readonly #origin = Date.now() - performance.now();

  now(): number {
    return this.#origin + performance.now();
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  }
}

/** The shared system clock. */
export const systemClock: Clock = new SystemClock();

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to. Timers fire in time order during advance(). */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: FakeTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const t: FakeTimer = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  /** Number of live timers. */
  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Move time forward by `ms`, firing due timers in order (timers set while firing included). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      let next: FakeTimer | undefined;
      for (const t of this.#timers)
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      this.#now = Math.max(this.#now, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.#now = target;
  }
}
