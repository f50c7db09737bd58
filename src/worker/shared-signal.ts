/**
 * A cancellation flag shared between the protocol thread and one handler thread (ATP_SPEC §8.4,
 * ATP_RATIONALE §20). A CPU-bound handler never yields to its event loop, so a posted message
 * would reach it only after it finished; the flag lives in a SharedArrayBuffer instead, and the
 * handler reads it synchronously (one `Atomics.load`) from its tight loop.
 *
 * Layout (Int32 words, then bytes):
 *   word 0  id of the task that is aborted (0: none). Written last, with Atomics.store, so that a
 *           reader that sees the id also sees the code and the reason written before it.
 *   word 1  wire code of the reason (ATP_ERR_CANCELLED, ATP_ERR_STALE_LEASE, ...)
 *   word 2  length in bytes of the UTF-8 reason message
 *   bytes   the reason message, at most MAX_REASON_BYTES
 *
 * Task ids are per slot and rise with every task, so a flag set for an earlier task is never read as
 * the abort of the current one and nothing ever needs to be reset (no reset race).
 */
import { AtpError, codeOfWire } from '../errors.js';

const HEADER_BYTES = 12;
/** Longest reason message carried in the flag; longer ones are cut at a character boundary. */
export const MAX_REASON_BYTES = 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Allocate the shared memory of one slot's flag. */
export function createSharedFlagBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + MAX_REASON_BYTES);
}

/** Next task id after `id`: 1, 2, ... 2^31-1, then 1 again (0 means "none"). */
export function nextTaskId(id: number): number {
  return id >= 0x7fffffff ? 1 : id + 1;
}

/** One slot's flag; the protocol thread writes it, the handler thread reads it. */
export class SharedAbortFlag {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength < HEADER_BYTES + MAX_REASON_BYTES) throw new RangeError('shared abort flag buffer too small');
    this.buffer = buffer;
    this.#words = new Int32Array(buffer, 0, 3);
    this.#bytes = new Uint8Array(buffer, HEADER_BYTES, MAX_REASON_BYTES);
  }

  /** Writer side: mark task `taskId` aborted with a reason. */
  abort(taskId: number, wireCode: number, message: string): void {
    const { written } = enc.encodeInto(message, this.#bytes);
    Atomics.store(this.#words, 1, wireCode);
    Atomics.store(this.#words, 2, written);
    Atomics.store(this.#words, 0, taskId);
  }

  /** Reader side: is task `taskId` aborted? One atomic load: cheap enough for a tight loop. */
  isAborted(taskId: number): boolean {
    return Atomics.load(this.#words, 0) === taskId;
  }

  /** Reader side: the reason of the last abort, as an AtpError. */
  reason(): AtpError {
    const wire = Atomics.load(this.#words, 1);
    const len = Math.min(Atomics.load(this.#words, 2), MAX_REASON_BYTES);
    // TextDecoder does not accept views on shared memory: copy the (short) message out first.
    const message = dec.decode(this.#bytes.slice(0, len));
    return new AtpError(codeOfWire(wire), message || 'the lease was revoked');
  }
}

const proto = AbortSignal.prototype;
/** The real (prototype) accessors, read with the signal as receiver. */
const realAborted = (signal: AbortSignal): boolean => Reflect.get<AbortSignal, 'aborted'>(proto, 'aborted', signal);
const realReason = (signal: AbortSignal): unknown => Reflect.get(proto, 'reason', signal);

/** The abort state of one task in the handler thread: an AbortSignal that reads the shared flag. */
export interface TaskSignal {
  readonly signal: AbortSignal;
  /** Check the shared flag; abort the signal (firing 'abort' listeners) if the task is aborted. */
  poll(): boolean;
}

/**
 * An AbortSignal for task `taskId` whose `aborted`, `reason` and `throwIfAborted()` consult the shared
 * flag first: a loop that never yields still sees a revoke. When the flag is found set, the signal is
 * aborted there and then (its 'abort' listeners run synchronously, inside the property read), so
 * `aborted`, `reason` and the event always agree. A posted message calls poll() too, for handlers
 * that wait on I/O and only listen for the event.
 */
export function createTaskSignal(flag: SharedAbortFlag, taskId: number): TaskSignal {
  const controller = new AbortController();
  const signal = controller.signal;
  let done = false;
  const poll = (): boolean => {
    if (done) return true;
    if (!flag.isAborted(taskId)) return false;
    done = true;
    controller.abort(flag.reason());
    return true;
  };
  // Own properties shadow the prototype's accessors; Node's internals keep using the real state,
  // which poll() keeps in step.
  Object.defineProperties(signal, {
    aborted: { configurable: true, enumerable: false, get: () => (poll(), realAborted(signal)) },
    reason: { configurable: true, enumerable: false, get: () => (poll(), realReason(signal)) },
    throwIfAborted: {
      configurable: true,
      enumerable: false,
      writable: true,
      value: () => {
        poll();
        if (realAborted(signal)) throw realReason(signal);
      },
    },
  });
  return { signal, poll };
}
