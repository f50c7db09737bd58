/**
 * Pending artifacts of one (tenant, kind): highest priority first, FIFO within a priority.
 * Removal is lazy: an entry whose artifact is no longer leasable is skipped when popped.
 */

class Deque<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(v: T): void {
    this.#items.push(v);
  }

  unshift(v: T): void {
    if (this.#head > 0) this.#items[--this.#head] = v;
    else this.#items.unshift(v);
  }

  first(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }
}

/** A priority queue of items with integer priorities 0–255. */
export class PendingQueue<T> {
  #buckets = new Map<number, Deque<T>>();
  #sorted: number[] = []; // priorities with a bucket, descending
  #size = 0;

  /** Entries queued (including ones that will be skipped lazily). */
  get size(): number {
    return this.#size;
  }

  /** Highest priority with entries, or -1. */
  get topPriority(): number {
    return this.#sorted[0] ?? -1;
  }

  /** Add at the back of its priority (or the front, for a hand-back to be re-issued first). */
  add(priority: number, item: T, front = false): void {
    let b = this.#buckets.get(priority);
    if (b === undefined) {
      b = new Deque<T>();
      this.#buckets.set(priority, b);
      let i = 0;
      while (i < this.#sorted.length && this.#sorted[i]! > priority) i++;
      this.#sorted.splice(i, 0, priority);
    }
    if (front) b.unshift(item);
    else b.push(item);
    this.#size++;
  }

  /** The entry pop() would return, left in place. */
  peek(): T | undefined {
    const p = this.#sorted[0];
    return p === undefined ? undefined : this.#buckets.get(p)!.first();
  }

  /** Remove and return the first entry of the highest priority. */
  pop(): T | undefined {
    const p = this.#sorted[0];
    if (p === undefined) return undefined;
    const b = this.#buckets.get(p)!;
    const v = b.shift();
    this.#size--;
    if (b.length === 0) {
      this.#buckets.delete(p);
      this.#sorted.shift();
    }
    return v;
  }
}
