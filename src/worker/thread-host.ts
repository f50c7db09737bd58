/**
 * The code that runs inside each worker thread of a ThreadPool (thread-pool.ts): it loads the
 * user's handler module once, then runs one lease at a time as the pool orders, with a ctx whose
 * signal reads the slot's shared abort flag (shared-signal.ts) and whose partial() and checkpoint()
 * travel over the thread's port, in order, to the protocol thread.
 *
 * Not for import: the pool starts it as a thread entry point.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { AtpError, ERROR_CATALOG } from '../errors.js';
import { SharedAbortFlag, createTaskSignal } from './shared-signal.js';
import type { TaskSignal } from './shared-signal.js';
import { transferable } from './thread-pool.js';
import type { FromThread, HostData, SerializedError, ThreadHandler, ThreadHandlerContext, ToThread } from './thread-pool.js';

const enc = new TextEncoder();

interface Running {
  id: number;
  ts: TaskSignal;
  checkpoints: Map<number, { resolve: () => void; reject: (e: Error) => void }>;
  nextReq: number;
}

function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: typeof err === 'string' ? err : `non-Error thrown: ${String(err)}` };
  const out: SerializedError = { name: err.name, message: err.message };
  if (err.stack !== undefined) out.stack = err.stack;
  const retryable = (err as { retryable?: unknown }).retryable;
  if (typeof retryable === 'boolean') out.retryable = retryable;
  const code = (err as { code?: unknown }).code;
  if ((err instanceof AtpError || err.name === 'AtpError') && typeof code === 'string' && Object.hasOwn(ERROR_CATALOG, code))
    out.code = code;
  return out;
}

/** Buffers already transferred out of this thread: detached, unusable. */
const gone = new WeakSet<object>();

/** Bytes out of the thread: moved when the handler gave them up (or the SDK made them), else one exact copy. */
function outgoing(v: unknown, moved: WeakSet<object>): [Uint8Array, ArrayBuffer[]] {
  if (v === undefined) return [new Uint8Array(0), []];
  if (typeof v === 'string') return transferable(enc.encode(v), true);
  if (v instanceof Uint8Array) {
    if (gone.has(v.buffer))
      throw new TypeError('these bytes were already moved out of the thread (ctx.move) and are detached; send a copy instead');
    return transferable(v, moved.has(v.buffer));
  }
  throw new TypeError(`a handler must return (or send) a Uint8Array, a string or undefined, got ${v === null ? 'null' : typeof v}`);
}

async function main(): Promise<void> {
  const port = parentPort;
  if (isMainThread || port === null) throw new Error('thread-host.js runs only as a worker thread started by the ATP worker SDK');
  const data = workerData as HostData;
  const flag = new SharedAbortFlag(data.flag);
  const post = (m: FromThread, transfer: ArrayBuffer[] = []) => {
    port.postMessage(m, transfer);
    for (const b of transfer) gone.add(b);
  };

  let handler: ThreadHandler;
  try {
    const mod = (await import(data.module)) as Record<string, unknown>;
    const fn = mod[data.exportName];
    if (typeof fn !== 'function') {
      const names = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw new TypeError(
        `the module has no function export ${JSON.stringify(data.exportName)} (function exports: ${names.length > 0 ? names.join(', ') : 'none'})`,
      );
    }
    handler = fn as ThreadHandler;
  } catch (err) {
    post({ t: 'load-error', error: serializeError(err) });
    return;
  }

  let current: Running | undefined;

  const run = async (m: Extract<ToThread, { t: 'run' }>): Promise<void> => {
    const ts = createTaskSignal(flag, m.task);
    const task: Running = { id: m.task, ts, checkpoints: new Map(), nextReq: 1 };
    current = task;
    const moved = new WeakSet<object>();
    const send = (data: Uint8Array | string): [Uint8Array, ArrayBuffer[]] => outgoing(data, moved);
    // partial() and checkpoint() are forwarded while the task runs, even after an abort: the
    // protocol thread decides (after a revoke nothing is sent; on a drain hand-back the last
    // checkpoint goes with RELEASE).
    const ctx: ThreadHandlerContext = {
      signal: ts.signal,
      leaseId: m.leaseId,
      epoch: m.epoch,
      checkpointData: m.checkpointData,
      lastPartialSeq: m.lastPartialSeq,
      cancelled: () => ts.poll(),
      throwIfCancelled: () => {
        if (ts.poll()) throw ts.signal.reason;
      },
      move: (bytes) => {
        moved.add(bytes.buffer);
        return bytes;
      },
      partial: (d) => {
        if (current !== task) return;
        const [bytes, transfer] = send(d);
        post({ t: 'partial', task: task.id, data: bytes }, transfer);
      },
      checkpoint: (d) => {
        if (current !== task) return Promise.resolve();
        const [bytes, transfer] = send(d);
        const req = task.nextReq++;
        return new Promise<void>((resolve, reject) => {
          task.checkpoints.set(req, { resolve, reject });
          post({ t: 'checkpoint', task: task.id, req, data: bytes }, transfer);
        });
      },
    };
    let out: FromThread;
    let transfer: ArrayBuffer[] = [];
    try {
      const value = await handler(m.artifact, ctx);
      const [result, t] = outgoing(value, moved);
      out = { t: 'done', task: task.id, ok: true, result };
      transfer = t;
    } catch (err) {
      out = { t: 'done', task: task.id, ok: false, error: serializeError(err) };
    }
    if (current === task) current = undefined;
    task.checkpoints.clear();
    try {
      post(out, transfer);
    } catch (err) {
      // e.g. a result whose buffer was already moved away (detached): fail the lease rather than hang.
      post({ t: 'done', task: task.id, ok: false, error: serializeError(err) });
    }
  };

  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'run':
        void run(m);
        return;
      case 'abort':
        // The flag is already set: this only wakes a handler that waits on I/O ('abort' event).
        if (current?.id === m.task) current.ts.poll();
        return;
      case 'checkpoint-ack': {
        const w = current?.id === m.task ? current.checkpoints.get(m.req) : undefined;
        if (w === undefined) return;
        current!.checkpoints.delete(m.req);
        if (m.error === undefined) w.resolve();
        else {
          const code = m.error.code;
          w.reject(
            code !== undefined && Object.hasOwn(ERROR_CATALOG, code)
              ? new AtpError(code as keyof typeof ERROR_CATALOG, m.error.message)
              : new Error(m.error.message),
          );
        }
        return;
      }
    }
  });
  post({ t: 'ready' });
}

await main();
