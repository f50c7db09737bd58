/**
 * A pool of worker_threads that runs the handlers of one artifact kind off the thread that speaks
 * the protocol (ATP-2.3-2, ATP-8.4-3, docs/worker-threads.md): a CPU-bound handler never starves
 * renewals nor delays a REVOKE, and a handler that ignores its signal past the hard-stop deadline
 * has its thread terminated and replaced.
 *
 * The pool exposes `handler`, an ordinary in-process handler (artifact, ctx) => result that forwards
 * the lease to a free thread and proxies ctx (signal, partial, checkpoint) over the thread's port;
 * the Worker registers it like any other handler, so renewal, fencing, REVOKE_ACK, RELEASE on
 * drain and credits stay in one place (worker.ts).
 *
 * Each thread runs one handler at a time; tasks beyond the pool size wait in a FIFO queue (their
 * leases keep renewing: the protocol thread is free).
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker as NodeWorker } from 'node:worker_threads';
import type { ResourceLimits } from 'node:worker_threads';
import { AtpError, ERROR_CATALOG } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Clock, Timer } from '../internal/clock.js';
import { systemClock } from '../internal/clock.js';
import type { HandlerContext, LeasedArtifact } from './handler-types.js';
import { SharedAbortFlag, createSharedFlagBuffer, nextTaskId } from './shared-signal.js';

/** Diagnostics channel of the thread pools: `{ event, kind, slot, ... }` records. */
export const WORKER_THREADS_DIAGNOSTICS = 'atp:worker-threads';
const diag = diagnosticsChannel(WORKER_THREADS_DIAGNOSTICS);

// ---- what a handler module sees (the module runs in the thread) -----------------------------------

/** The artifact an in-thread handler receives: the same as an in-process one. */
export type ThreadArtifact = LeasedArtifact;

/**
 * The ctx of an in-thread handler: the in-process HandlerContext, whose `signal` is here backed by a
 * flag in shared memory (so `signal.aborted` is current inside a loop that never yields), plus
 * cheaper synchronous checks.
 */
export interface ThreadHandlerContext extends HandlerContext {
  /** True once the lease is revoked or lost: one atomic load, the cheapest check for a tight loop. */
  cancelled(): boolean;
  /** Throw the abort reason (an AtpError) once the lease is revoked or lost. */
  throwIfCancelled(): void;
  /**
   * Give up `bytes` (return it, or pass it to partial()/checkpoint()): its buffer is transferred to
   * the protocol thread instead of copied, and is unusable here afterwards. Only a view that spans
   * its whole (non-shared) ArrayBuffer can move; others are copied. Returns `bytes`.
   */
  move<T extends Uint8Array>(bytes: T): T;
}

/** What a handler module exports: `export default async (artifact, ctx) => result`. May be synchronous. */
export type ThreadHandler = (
  artifact: ThreadArtifact,
  ctx: ThreadHandlerContext,
) => Promise<Uint8Array | string | undefined | void> | Uint8Array | string | undefined | void;

// ---- options ----------------------------------------------------------------------------------------

/** Options of `worker.handleInThreads(kind, options)`. */
export interface ThreadPoolOptions {
  /** The handler module: a URL (`new URL('./h.js', import.meta.url)`), a file: URL string, or a file path (relative to the working directory). */
  module: URL | string;
  /** Name of the export that is the handler. Default 'default'. */
  export?: string;
  /** Threads, each running one handler at a time. Default: available parallelism minus one (the protocol thread), at least 1. */
  threads?: number;
  /**
   * How long a handler may ignore its aborted signal before its thread is terminated (the lease is
   * then reported stopped and a fresh thread takes the slot). Default: the coordinator's cancel
   * deadline (WELCOME.cancelDeadlineMs) minus a margin of 20 % (at least 50 ms, at most 1 s), or
   * 1000 ms when it is not known.
   */
  hardStopMs?: number;
  /** Heap limits of each thread (see node:worker_threads); a thread that runs out fails its lease (retryable). */
  resourceLimits?: ResourceLimits;
}

/** What the owning Worker tells the pool. */
export interface ThreadPoolHooks {
  kind: string;
  clock?: Clock;
  /** The coordinator's cancel deadline, once connected. */
  cancelDeadlineMs?: () => number | undefined;
}

/** The hard-stop delay derived from the coordinator's cancel deadline (see ThreadPoolOptions.hardStopMs). */
export function defaultHardStopMs(cancelDeadlineMs: number | undefined): number {
  if (cancelDeadlineMs === undefined || !Number.isFinite(cancelDeadlineMs) || cancelDeadlineMs <= 0) return 1000;
  const margin = Math.min(1000, Math.max(50, Math.round(cancelDeadlineMs * 0.2)));
  return Math.max(Math.floor(cancelDeadlineMs / 2), cancelDeadlineMs - margin);
}

// ---- messages between the pool and a thread (internal) ---------------------------------------------

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** Copied from `err.retryable` when it is a boolean (NonRetryableError sets false). */
  retryable?: boolean;
  /** The ATP error code, when the error was an AtpError. */
  code?: string;
}

/** @internal workerData of a thread. */
export interface HostData {
  module: string;
  exportName: string;
  flag: SharedArrayBuffer;
}

/** @internal pool → thread */
export type ToThread =
  | {
      t: 'run';
      task: number;
      artifact: ThreadArtifact;
      leaseId: string;
      epoch: number;
      checkpointData: Uint8Array | undefined;
      lastPartialSeq: number;
    }
  | { t: 'abort'; task: number }
  | { t: 'checkpoint-ack'; task: number; req: number; error?: SerializedError };

/** @internal thread → pool */
export type FromThread =
  | { t: 'ready' }
  | { t: 'load-error'; error: SerializedError }
  | { t: 'partial'; task: number; data: Uint8Array }
  | { t: 'checkpoint'; task: number; req: number; data: Uint8Array }
  | { t: 'done'; task: number; ok: true; result: Uint8Array }
  | { t: 'done'; task: number; ok: false; error: SerializedError };

/** The bytes to post, and the buffer to transfer: moved as they are when possible, else one exact copy. */
export function transferable(bytes: Uint8Array, owned: boolean): [Uint8Array, ArrayBuffer[]] {
  const b = bytes.buffer;
  // Nothing to save on an empty buffer, and Node silently drops a message whose transfer list holds
  // a detached buffer (which has length 0): never transfer one.
  if (b.byteLength === 0 || bytes.byteLength === 0) return [new Uint8Array(0), []];
  if (owned && b instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === b.byteLength) return [bytes, [b]];
  // A view into a larger (or shared) buffer: structured clone would copy the whole buffer; copy the view only.
  const copy = new Uint8Array(bytes);
  return [copy, [copy.buffer]];
}

/** Rebuild an error thrown in a thread (name, message, stack, retryable, ATP code). */
export function reviveError(e: SerializedError): Error {
  const code = e.code !== undefined && Object.hasOwn(ERROR_CATALOG, e.code) ? (e.code as ErrorCode) : undefined;
  const err: Error = code !== undefined ? new AtpError(code, e.message) : new Error(e.message);
  err.name = e.name;
  if (e.stack !== undefined) err.stack = e.stack;
  if (e.retryable !== undefined) Object.defineProperty(err, 'retryable', { value: e.retryable, enumerable: true });
  return err;
}

// ---- the pool -----------------------------------------------------------------------------------------

/** The shape of the in-process ctx the pool proxies (a subset of worker.ts's HandlerContext). */
export interface PoolContext {
  readonly signal: AbortSignal;
  readonly leaseId: string;
  readonly epoch: number;
  readonly checkpointData: Uint8Array | undefined;
  readonly lastPartialSeq: number;
  partial(data: Uint8Array | string): void;
  checkpoint(data: Uint8Array | string): Promise<void>;
}

interface Task {
  artifact: ThreadArtifact;
  ctx: PoolContext;
  resolve: (v: Uint8Array) => void;
  reject: (e: Error) => void;
  onAbort: () => void;
  slot: Slot | undefined;
  id: number;
  hardStop: Timer | undefined;
  settled: boolean;
}

interface Slot {
  index: number;
  flag: SharedAbortFlag;
  state: 'empty' | 'starting' | 'idle' | 'busy';
  thread: NodeWorker | undefined;
  task: Task | undefined;
  lastTaskId: number;
}

const HOST_URL = new URL('./thread-host.js', import.meta.url);

function moduleHref(m: URL | string): string {
  if (m instanceof URL) return m.href;
  if (/^(file|data):/.test(m)) return m;
  return pathToFileURL(isAbsolute(m) ? m : resolvePath(process.cwd(), m)).href;
}

function reasonOf(signal: AbortSignal): AtpError {
  const r: unknown = signal.reason;
  if (r instanceof AtpError) return r;
  return new AtpError('ATP_ERR_CANCELLED', r instanceof Error ? r.message : 'the lease was revoked');
}

/** The threads that run one kind's handler. */
export class ThreadPool {
  readonly kind: string;
  readonly size: number;
  readonly #href: string;
  readonly #exportName: string;
  readonly #options: ThreadPoolOptions;
  readonly #clock: Clock;
  readonly #cancelDeadlineMs: () => number | undefined;
  readonly #slots: Slot[] = [];
  readonly #queue: Task[] = [];
  #closing = false;
  /** Threads terminated because their handler ignored its signal (diagnostics). */
  hardStops = 0;

  constructor(options: ThreadPoolOptions, hooks: ThreadPoolHooks) {
    const n = options.threads ?? Math.max(1, availableParallelism() - 1);
    if (!Number.isInteger(n) || n < 1 || n > 1024)
      throw new RangeError(`threads must be an integer in [1, 1024], got ${String(options.threads)}`);
    const h = options.hardStopMs;
    if (h !== undefined && (!Number.isFinite(h) || h < 0))
      throw new RangeError(`hardStopMs must be a non-negative number, got ${String(h)}`);
    this.kind = hooks.kind;
    this.size = n;
    this.#href = moduleHref(options.module);
    this.#exportName = options.export ?? 'default';
    this.#options = options;
    this.#clock = hooks.clock ?? systemClock;
    this.#cancelDeadlineMs = hooks.cancelDeadlineMs ?? (() => undefined);
    for (let i = 0; i < n; i++)
      this.#slots.push({
        index: i,
        flag: new SharedAbortFlag(createSharedFlagBuffer()),
        state: 'empty',
        thread: undefined,
        task: undefined,
        lastTaskId: 0,
      });
  }

  /** Handlers running now. */
  get busy(): number {
    return this.#slots.filter((s) => s.state === 'busy').length;
  }

  /** Leases waiting for a free thread. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The hard-stop delay in force now. */
  get hardStopMs(): number {
    return this.#options.hardStopMs ?? defaultHardStopMs(this.#cancelDeadlineMs());
  }

  /** Start every thread and load the handler module; rejects (and stops the pool) if it does not load. */
  async start(): Promise<void> {
    const starting = this.#slots.filter((s) => s.state === 'empty').map((s) => this.#spawn(s));
    try {
      await Promise.all(starting);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Terminate every thread; running and queued handlers end with ATP_ERR_WORKER_LEAVING. */
  async close(): Promise<void> {
    this.#closing = true;
    const leaving = () => new AtpError('ATP_ERR_WORKER_LEAVING', 'the worker thread pool is closed');
    for (const t of this.#queue.splice(0)) this.#settle(t, undefined, leaving());
    const exits: Promise<number>[] = [];
    for (const s of this.#slots) {
      const thread = s.thread;
      const task = s.task;
      s.thread = undefined;
      s.task = undefined;
      s.state = 'empty';
      if (task !== undefined) this.#settle(task, undefined, leaving());
      if (thread !== undefined) exits.push(thread.terminate());
    }
    await Promise.all(exits);
  }

  /** The in-process handler that runs the lease in a thread; register it with worker.handle(kind, pool.handler). */
  readonly handler = (artifact: ThreadArtifact, ctx: PoolContext): Promise<Uint8Array> => {
    if (this.#closing) return Promise.reject(new AtpError('ATP_ERR_WORKER_LEAVING', 'the worker thread pool is closed'));
    if (ctx.signal.aborted) return Promise.reject(reasonOf(ctx.signal));
    return new Promise<Uint8Array>((resolve, reject) => {
      const task: Task = {
        artifact,
        ctx,
        resolve,
        reject,
        onAbort: () => this.#onAbort(task),
        slot: undefined,
        id: 0,
        hardStop: undefined,
        settled: false,
      };
      ctx.signal.addEventListener('abort', task.onAbort, { once: true });
      this.#queue.push(task);
      this.#pump();
      if (task.slot === undefined && !task.settled)
        this.#emit('queued', { leaseId: ctx.leaseId, artifactId: artifact.id, queued: this.#queue.length });
    });
  };

  #pump(): void {
    if (this.#closing) return;
    while (this.#queue.length > 0) {
      const idle = this.#slots.find((s) => s.state === 'idle');
      if (idle !== undefined) {
        this.#run(idle, this.#queue.shift()!);
        continue;
      }
      const starting = this.#slots.filter((s) => s.state === 'starting').length;
      const empty = this.#slots.find((s) => s.state === 'empty');
      if (empty === undefined || starting >= this.#queue.length) return;
      // A slot lost its thread (crash, hard stop whose restart failed): start one for the queued work.
      this.#spawn(empty).catch((err: unknown) => {
        // The module no longer loads: fail one queued lease (retryable) rather than retry forever.
        const t = this.#queue.shift();
        if (t !== undefined) this.#settle(t, undefined, err instanceof Error ? err : new Error(String(err)));
        this.#pump();
      });
    }
  }

  #spawn(slot: Slot): Promise<void> {
    const data: HostData = { module: this.#href, exportName: this.#exportName, flag: slot.flag.buffer };
    const thread = new NodeWorker(HOST_URL, {
      workerData: data,
      ...(this.#options.resourceLimits !== undefined ? { resourceLimits: this.#options.resourceLimits } : {}),
    });
    // The threads never keep the process alive on their own (the connection does while it is open).
    thread.unref();
    slot.thread = thread;
    slot.state = 'starting';
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      let error: Error | undefined;
      thread.on('message', (m: FromThread) => {
        if (slot.thread !== thread) return;
        if (m.t === 'ready') {
          ready = true;
          slot.state = 'idle';
          this.#emit('thread-start', { slot: slot.index, threadId: thread.threadId });
          resolve();
          this.#pump();
        } else if (m.t === 'load-error') {
          slot.thread = undefined;
          slot.state = 'empty';
          void thread.terminate();
          reject(
            new Error(
              `worker threads for kind ${this.kind}: cannot load handler ${JSON.stringify(this.#exportName)} from ${this.#href}: ${m.error.message}`,
            ),
          );
        } else this.#onMessage(slot, thread, m);
      });
      thread.on('error', (err) => {
        error = err;
      });
      thread.on('exit', (code) => {
        if (slot.thread !== thread) return; // terminated on purpose (hard stop, close) or replaced
        slot.thread = undefined;
        slot.state = 'empty';
        const why = error !== undefined ? `${error.name}: ${error.message}` : `exit code ${code}`;
        this.#emit('thread-exit', {
          slot: slot.index,
          threadId: thread.threadId,
          code,
          error: error?.message,
          leaseId: slot.task?.ctx.leaseId,
        });
        if (!ready) reject(new Error(`worker threads for kind ${this.kind}: the thread stopped while loading ${this.#href} (${why})`));
        const task = slot.task;
        slot.task = undefined;
        // A thread that dies under a handler (uncaught error, out of memory, process.exit) fails the lease, retryable.
        if (task !== undefined) this.#settle(task, undefined, new AtpError('ATP_ERR_HANDLER', `the handler thread stopped (${why})`));
        this.#pump();
      });
    });
  }

  #run(slot: Slot, task: Task): void {
    const thread = slot.thread!;
    slot.state = 'busy';
    slot.task = task;
    task.slot = slot;
    task.id = slot.lastTaskId = nextTaskId(slot.lastTaskId);
    const { artifact, ctx } = task;
    // The payload and checkpoint are copies the SDK made for this lease: move them, do not copy again.
    const [payload, t1] = transferable(artifact.payload, true);
    const cp = ctx.checkpointData === undefined ? undefined : transferable(ctx.checkpointData, true);
    const msg: ToThread = {
      t: 'run',
      task: task.id,
      artifact: {
        id: artifact.id,
        kind: artifact.kind,
        payload,
        parentId: artifact.parentId,
        digest: artifact.digest,
        attempt: artifact.attempt,
      },
      leaseId: ctx.leaseId,
      epoch: ctx.epoch,
      checkpointData: cp?.[0],
      lastPartialSeq: ctx.lastPartialSeq,
    };
    try {
      thread.postMessage(msg, cp === undefined ? t1 : [...t1, ...cp[1]]);
    } catch (err) {
      slot.task = undefined;
      slot.state = 'idle';
      this.#settle(task, undefined, err instanceof Error ? err : new Error(String(err)));
      queueMicrotask(() => this.#pump());
    }
  }

  #onMessage(slot: Slot, thread: NodeWorker, m: FromThread): void {
    const task = slot.task;
    if (m.t === 'ready' || m.t === 'load-error' || task === undefined || task.id !== m.task) return;
    switch (m.t) {
      case 'partial':
        task.ctx.partial(m.data);
        return;
      case 'checkpoint': {
        const ack = (error?: SerializedError) => {
          if (slot.thread === thread && slot.task === task)
            thread.postMessage({ t: 'checkpoint-ack', task: task.id, req: m.req, ...(error ? { error } : {}) } satisfies ToThread);
        };
        let p: Promise<void>;
        try {
          p = task.ctx.checkpoint(m.data);
        } catch (err) {
          p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        p.then(
          () => ack(),
          (err: unknown) =>
            ack(
              err instanceof Error
                ? { name: err.name, message: err.message, ...(err instanceof AtpError ? { code: err.code } : {}) }
                : { name: 'Error', message: String(err) },
            ),
        );
        return;
      }
      case 'done':
        slot.task = undefined;
        slot.state = 'idle';
        if (m.ok) this.#settle(task, m.result, undefined);
        else this.#settle(task, undefined, reviveError(m.error));
        this.#pump();
        return;
    }
  }

  #onAbort(task: Task): void {
    if (task.settled) return;
    const slot = task.slot;
    if (slot === undefined) {
      // Still queued: it never started; it stops at once.
      const i = this.#queue.indexOf(task);
      if (i >= 0) this.#queue.splice(i, 1);
      this.#settle(task, undefined, reasonOf(task.ctx.signal));
      return;
    }
    const reason = reasonOf(task.ctx.signal);
    // Shared memory first (seen by a loop that never yields), then a message (fires 'abort' for async handlers).
    slot.flag.abort(task.id, reason.wire, reason.message);
    slot.thread?.postMessage({ t: 'abort', task: task.id } satisfies ToThread);
    const ms = this.hardStopMs;
    task.hardStop = this.#clock.setTimer(ms, () => this.#hardStop(slot, task, ms));
  }

  /** ATP-8.4-3: the handler ignored its signal: terminate its thread, report it stopped, start a fresh thread. */
  #hardStop(slot: Slot, task: Task, ms: number): void {
    task.hardStop = undefined;
    if (task.settled || slot.task !== task) return;
    const thread = slot.thread;
    slot.thread = undefined;
    slot.task = undefined;
    slot.state = 'empty';
    this.hardStops++;
    this.#emit('hard-stop', {
      slot: slot.index,
      threadId: thread?.threadId,
      leaseId: task.ctx.leaseId,
      artifactId: task.artifact.id,
      hardStopMs: ms,
    });
    const code = reasonOf(task.ctx.signal).code;
    const stopped = thread === undefined ? Promise.resolve() : thread.terminate().then(() => undefined);
    // Report the lease stopped only once the thread is gone: nothing of it runs after REVOKE_ACK.
    void stopped.then(() => {
      this.#settle(task, undefined, new AtpError(code, `the handler ignored its signal for ${ms} ms; its thread was terminated`));
      if (this.#closing || slot.state !== 'empty') return;
      this.#spawn(slot).catch(() => undefined); // a failed restart leaves the slot empty; #pump retries on demand
      this.#pump();
    });
  }

  #settle(task: Task, result: Uint8Array | undefined, error: Error | undefined): void {
    if (task.settled) return;
    task.settled = true;
    task.hardStop?.cancel();
    task.hardStop = undefined;
    task.ctx.signal.removeEventListener('abort', task.onAbort);
    if (error !== undefined) task.reject(error);
    else task.resolve(result ?? new Uint8Array(0));
  }

  #emit(event: string, detail: Record<string, unknown>): void {
    if (diag.hasSubscribers) diag.publish({ event, kind: this.kind, ...detail });
  }
}
