/** The handle of a submitted artifact: its result, its events, its cancellation (ATP_SPEC §7). */
import type { AtpError, ErrorCode } from '../errors.js';

/** How an artifact ended. */
export interface ArtifactOutcome {
  /** COMPLETED, FAILED, CANCELLED or EXPIRED. */
  state: string;
  code: ErrorCode | null;
  message: string;
  /** The result (COMPLETED), else the last partial result. */
  result: Uint8Array;
  /** The last checkpoint, if any. */
  checkpoint: Uint8Array;
  /** SHA-256 of the result, hex (COMPLETED only). */
  digest: string | null;
}

/** One event of an artifact. */
export type ArtifactEvent =
  | { type: 'state'; state: string; epoch: number; message: string }
  | { type: 'partial'; seq: number; epoch: number; data: Uint8Array }
  | { type: 'result'; outcome: ArtifactOutcome };

/** What a handle needs of its client. */
interface HandleOwner {
  cancel(
    id: string,
    options: { subtree?: boolean; reason?: string },
  ): Promise<{ cancelled: number; alreadyFinished: number; stopping: number }>;
  query(id: string): Promise<{ state: string }>;
}

/** A submitted artifact. */
export class ArtifactHandle {
  readonly id: string;
  digest = '';
  /** State at acceptance (a duplicate may already be terminal). */
  acceptedState = 'UNKNOWN';
  duplicate = false;
  /** Stream of the watch that feeds this handle. */
  watchStream = 0;
  readonly #owner: HandleOwner;
  #outcome: ArtifactOutcome | undefined;
  #error: AtpError | undefined;
  /** Callers of result() waiting, and events not yet taken by events(): made on first use. */
  #waiters: Array<{ resolve: (o: ArtifactOutcome) => void; reject: (e: AtpError) => void }> | undefined;
  #events: ArtifactEvent[] | undefined;
  #resultTaken = false;
  #wake: (() => void) | undefined;
  #lastSeq = 0;

  constructor(owner: HandleOwner, id: string) {
    this.#owner = owner;
    this.id = id;
  }

  /** @internal */
  accepted(digest: string, state: string, duplicate: boolean): void {
    this.digest = digest;
    this.acceptedState = state;
    this.duplicate = duplicate;
  }

  /** @internal */
  push(ev: ArtifactEvent): void {
    (this.#events ??= []).push(ev);
    this.#wake?.();
  }

  /** @internal Partial results are delivered in order, without duplicates (after a re-watch too). */
  pushPartial(seq: number, epoch: number, data: Uint8Array): void {
    if (seq <= this.#lastSeq) return;
    this.#lastSeq = seq;
    this.push({ type: 'partial', seq, epoch, data });
  }

  /** @internal */
  settle(outcome: ArtifactOutcome): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    // events() yields the result after the events before it: no event object is kept for it.
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters !== undefined) for (const w of waiters) w.resolve(outcome);
    this.#wake?.();
  }

  /** @internal */
  fail(err: AtpError): void {
    if (this.#outcome !== undefined) return;
    this.#error = err;
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters !== undefined) for (const w of waiters) w.reject(err);
    this.#wake?.();
  }

  /** The outcome once terminal (COMPLETED, FAILED, CANCELLED or EXPIRED). */
  result(): Promise<ArtifactOutcome> {
    if (this.#outcome !== undefined) return Promise.resolve(this.#outcome);
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => (this.#waiters ??= []).push({ resolve, reject }));
  }

  /** The current state, asked of the coordinator. */
  async state(): Promise<string> {
    return (await this.#owner.query(this.id)).state;
  }

  /** Cancel this artifact (and, with `subtree`, every descendant, present and future). */
  cancel(options: { subtree?: boolean; reason?: string } = {}) {
    return this.#owner.cancel(this.id, options);
  }

  /** Events in order: states, partial results, and the result last. Ends after the result. */
  async *events(): AsyncGenerator<ArtifactEvent> {
    for (;;) {
      const events = this.#events;
      while (events !== undefined && events.length > 0) yield events.shift()!;
      if (this.#outcome !== undefined) {
        if (this.#resultTaken) return;
        this.#resultTaken = true;
        yield { type: 'result', outcome: this.#outcome };
        return;
      }
      if (this.#error !== undefined) throw this.#error;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }

  /** Partial results only, in order. */
  async *partials(): AsyncGenerator<Uint8Array> {
    for await (const ev of this.events()) if (ev.type === 'partial') yield ev.data;
  }
}
