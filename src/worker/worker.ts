/**
 * The worker SDK (ATP_SPEC §5, §6, §8, §9, §11): `worker.handle(kind, async (artifact, ctx) => result)`.
 * Leases arrive only against free slots (credits); renewal is automatic and batched (one RENEW per
 * heartbeat for every lease); a revoke or a stale reply aborts the handler's `ctx.signal` at once.
 */
import { AtpError, codeOfWire, wireCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Clock } from '../internal/clock.js';
import { systemClock } from '../internal/clock.js';
import { ownedBytes } from '../internal/bytes.js';
import { toHex } from '../internal/ids.js';
import { ClientConnection } from '../protocol/client-connection.js';
import type { ConnectOptions } from '../transport/url.js';
import { Capability, GoawayMode, Limits, REVOKE_ACK_ENTRY_BYTES, REVOKE_ENTRY_BYTES, Role } from '../wire/index.js';
import type { Message, MessageOf } from '../wire/index.js';
import type { HandlerContext, LeasedArtifact } from './handler-types.js';

export type { HandlerContext, LeasedArtifact } from './handler-types.js';
import { ThreadPool } from './thread-pool.js';
import type { ThreadPoolOptions } from './thread-pool.js';

/** A handler: returns the result bytes (a string is sent as UTF-8; undefined as empty). */
export type Handler = (artifact: LeasedArtifact, ctx: HandlerContext) => Promise<Uint8Array | string | undefined | void>;

/** Throw this (or any error with `retryable: false`) to fail the artifact without another attempt. */
export class NonRetryableError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'NonRetryableError';
  }
}

/** Options of a worker. */
export interface WorkerOptions {
  url: string;
  /** Other coordinators sharing the store, tried in turn when `url` does not answer. */
  fallbackUrls?: readonly string[];
  /**
   * In-process handlers (worker.handle) that may run at once. Default 1. The credits announced are
   * this (counted only when an in-process handler is registered) plus the threads of every
   * handleInThreads pool (docs/worker-threads.md).
   */
  concurrency?: number;
  authToken?: string;
  tenant?: string;
  clock?: Clock;
  transport?: ConnectOptions;
  /** Also act as a producer on the same session (to submit children). */
  producer?: boolean;
  nodeId?: Uint8Array;
  /** Largest message body this worker accepts, a LEASE included (HELLO.maxMessageBytes, ATP_WIRE §3.7). Default 256 MiB. */
  maxMessageBytes?: number;
  /**
   * Let the window for large messages from the coordinator grow to the link, up to this many bytes
   * (ATP_WIRE §3.8), measured with at most 4 PINGs a second while one arrives. Off by default: those
   * PINGs count against the coordinator's budget of 10 a second.
   */
  maxReceiveWindowBytes?: number;
}

interface Active {
  lease: MessageOf<'LEASE'>;
  leaseHex: string;
  /** Created when the handler first reads ctx.signal (most never do). */
  controller: AbortController | undefined;
  /** Why the lease was stopped, once it was. */
  abortReason: AtpError | undefined;
  /** Set when the coordinator revoked it: answer REVOKE_ACK, not COMPLETE. */
  revoked: boolean;
  /** Set when a stale reply arrived: send nothing more. */
  lost: boolean;
  handback: boolean;
  seq: number;
  lastCheckpoint: Uint8Array | undefined;
  ttlMs: number;
}

interface Unacked {
  msg: MessageOf<'COMPLETE'> | MessageOf<'FAIL'> | MessageOf<'RELEASE'>;
  /** Called once: `accepted` is true when the coordinator answered ACK. */
  resolve: (accepted: boolean) => void;
}

const enc = new TextEncoder();

/**
 * Stop a lease's handler: the reason is recorded and, when the handler holds the signal, it fires.
 * The reason is an AtpError without a stack trace: capturing one costs more than the abort itself
 * and would only point into this SDK (a subtree cancel aborts thousands at once).
 */
function abortLease(a: Active, code: ErrorCode, message: string): void {
  if (a.abortReason !== undefined) return;
  a.abortReason = abortReason(code, message);
  a.controller?.abort(a.abortReason);
}

/**
 * The reason a handler's signal carries: one stackless AtpError shared by consecutive aborts with
 * the same code and message (the thousands of REVOKEs of one subtree cancel), so that a revoke
 * costs the signal and not an error object each.
 */
function abortReason(code: ErrorCode, message: string): AtpError {
  if (lastReason?.code === code && lastReason.message === message) return lastReason;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  lastReason = new AtpError(code, message);
  Error.stackTraceLimit = limit;
  return lastReason;
}
let lastReason: AtpError | undefined;

/** The ctx of one lease (HandlerContext). */
class LeaseContext implements HandlerContext {
  readonly leaseId: string;
  readonly epoch: number;
  readonly checkpointData: Uint8Array | undefined;
  readonly lastPartialSeq: number;
  readonly #a: Active;
  readonly #conn: ClientConnection;
  readonly #lose: (why: string) => void;

  constructor(a: Active, conn: ClientConnection, lose: (why: string) => void) {
    const msg = a.lease;
    this.leaseId = a.leaseHex;
    this.epoch = msg.epoch;
    this.checkpointData = msg.checkpoint.length > 0 ? ownedBytes(msg.checkpoint) : undefined;
    this.lastPartialSeq = msg.lastPartialSeq;
    this.#a = a;
    this.#conn = conn;
    this.#lose = lose;
  }

  get signal(): AbortSignal {
    const a = this.#a;
    if (a.controller === undefined) {
      a.controller = new AbortController();
      if (a.abortReason !== undefined) a.controller.abort(a.abortReason);
    }
    return a.controller.signal;
  }

  // Arrow properties, so that a handler may pass ctx.partial and ctx.checkpoint around unbound.
  readonly partial = (data: Uint8Array | string): void => {
    const a = this.#a;
    if (a.lost || a.revoked) return;
    this.#conn.send({ type: 'PARTIAL', stream: 0, leaseId: a.lease.leaseId, epoch: a.lease.epoch, seq: ++a.seq, data: toBytes(data) });
  };

  readonly checkpoint = (data: Uint8Array | string): Promise<void> => {
    const a = this.#a;
    const bytes = toBytes(data);
    a.lastCheckpoint = bytes;
    if (a.lost || a.revoked) return Promise.resolve();
    const conn = this.#conn;
    return conn
      .request(
        { type: 'CHECKPOINT', stream: conn.nextStream(), leaseId: a.lease.leaseId, epoch: a.lease.epoch, data: bytes },
        (m): m is MessageOf<'ACK'> => m.type === 'ACK' || m.type === 'LEASE_LOST',
      )
      .then((m) => {
        if ((m as Message).type === 'LEASE_LOST') this.#lose('checkpoint refused: lease not current');
      });
  };
}
const toBytes = (v: Uint8Array | string | undefined | void): Uint8Array =>
  v === undefined ? new Uint8Array(0) : typeof v === 'string' ? enc.encode(v) : v;

/** A worker process's connection to a coordinator. */
export class Worker {
  readonly #handlers = new Map<string, Handler>();
  readonly #pools = new Map<string, ThreadPool>();
  readonly #active = new Map<string, Active>();
  readonly #unacked = new Map<number, Unacked>();
  readonly #options: WorkerOptions;
  readonly #clock: Clock;
  readonly #concurrency: number;
  #conn: ClientConnection | undefined;
  #draining = 0;
  #drained: (() => void) | undefined;
  #closed = false;
  /** Count of results accepted by the coordinator, for diagnostics. */
  completed = 0;
  /** Leases received. */
  leased = 0;

  constructor(options: WorkerOptions) {
    const c = options.concurrency ?? 1;
    if (!Number.isInteger(c) || c < 1 || c > 65536)
      throw new RangeError(`concurrency must be an integer in [1, 65536], got ${String(options.concurrency)}`);
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#concurrency = c;
  }

  /** Register the handler of a kind (before start()). */
  handle(kind: string, handler: Handler): this {
    if (this.#conn !== undefined) throw new Error('handle() must be called before start()');
    this.#handlers.set(kind, handler);
    this.#pools.delete(kind);
    return this;
  }

  /**
   * Register a kind whose handler runs in a pool of worker_threads, off the thread that speaks the
   * protocol (ATP-2.3-2): a CPU-bound handler never starves renewals nor delays a REVOKE.
   *
   * ```ts
   * worker.handleInThreads('hash', { module: new URL('./hash-handler.js', import.meta.url), threads: 4 });
   * // hash-handler.js (runs in each thread):
   * export default (artifact, ctx) => { while (!ctx.signal.aborted && more()) step(); return result; };
   * ```
   *
   * - `module`: a URL, file: URL string or path (relative to the working directory) of an ES module
   *   whose export `export` (default 'default') is `(artifact, ctx) => result` (sync or async). It is
   *   loaded in every thread at start(); start() rejects if it does not load.
   * - ctx is the in-process ctx (signal, leaseId, epoch, checkpointData, lastPartialSeq, partial(),
   *   checkpoint() resolving once the coordinator acknowledged it) proxied over the thread's port,
   *   plus `cancelled()`, `throwIfCancelled()` and `move(bytes)`. `ctx.signal.aborted` reads a flag in
   *   shared memory (set with Atomics.store on REVOKE or LEASE_LOST): a loop that never yields sees it.
   * - `threads` (default: available parallelism - 1, at least 1): each runs one handler at a time;
   *   leases beyond it wait for a free thread (still renewed). The Worker announces as credits the
   *   sum of every pool's threads and, when in-process handlers are registered, `concurrency`.
   * - `hardStopMs` (default: WELCOME.cancelDeadlineMs minus 20 %, at most 1 s less; 1000 ms if
   *   unknown): a handler still running that long after its signal aborted has its thread terminated;
   *   the lease is then reported stopped (REVOKE_ACK after a revoke) and a fresh thread takes the slot.
   * - A throw fails the lease (FAIL, retryable unless `err.retryable === false`, e.g.
   *   NonRetryableError); name, message, stack and code cross the thread boundary.
   * - Bytes: the payload and checkpoint are transferred to the thread, not copied; a result, partial
   *   or checkpoint is transferred back when it is a string or was given up with `ctx.move(bytes)`,
   *   else copied once.
   */
  handleInThreads(kind: string, options: ThreadPoolOptions): this {
    const pool = new ThreadPool(options, { kind, clock: this.#clock, cancelDeadlineMs: () => this.#conn?.welcome?.cancelDeadlineMs });
    this.handle(kind, pool.handler);
    this.#pools.set(kind, pool);
    return this;
  }

  /** Leases being worked on now. */
  get activeLeases(): number {
    return this.#active.size;
  }

  /** The connection (for submitting children when `producer` is set). */
  get connection(): ClientConnection {
    if (this.#conn === undefined) throw new Error('the worker is not started');
    return this.#conn;
  }

  /** Connect and start taking leases. */
  async start(): Promise<void> {
    if (this.#handlers.size === 0) throw new Error('register at least one handler with worker.handle(kind, fn) before start()');
    const pools = [...this.#pools.values()];
    const failed = (await Promise.allSettled(pools.map((p) => p.start()))).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(pools.map((p) => p.close()));
      throw failed.reason;
    }
    const o = this.#options;
    const conn = new ClientConnection({
      url: o.url,
      ...(o.fallbackUrls !== undefined ? { fallbackUrls: o.fallbackUrls } : {}),
      roles: Role.WORKER | (o.producer ? Role.PRODUCER | Role.OBSERVER : 0),
      kinds: [...this.#handlers.keys()],
      capabilities: [Capability.REVOKE_BATCH],
      credits: () => this.#freeSlots(),
      clock: this.#clock,
      ...(o.nodeId !== undefined ? { nodeId: o.nodeId } : {}),
      ...(o.authToken !== undefined ? { authToken: o.authToken } : {}),
      ...(o.tenant !== undefined ? { tenant: o.tenant } : {}),
      ...(o.transport !== undefined ? { transport: o.transport } : {}),
      channel: {
        ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: o.maxMessageBytes } : {}),
        ...(o.maxReceiveWindowBytes !== undefined ? { maxReceiveWindowBytes: o.maxReceiveWindowBytes } : {}),
      },
    });
    this.#conn = conn;
    conn.setHeartbeat(() => this.#renew());
    await conn.start({
      push: (msg) => this.#onPush(msg),
      up: (_w, resumed) => this.#onUp(resumed),
      down: () => undefined,
      closed: () => this.#onClosed(),
    });
  }

  #freeSlots(): number {
    return this.#draining !== 0 ? 0 : Math.max(0, this.#capacity() - this.#active.size);
  }

  /** Slots: `concurrency` for in-process handlers (if any) plus every thread pool's threads. */
  #capacity(): number {
    let threads = 0;
    for (const p of this.#pools.values()) threads += p.size;
    return (this.#handlers.size > this.#pools.size ? this.#concurrency : 0) + threads;
  }

  #onUp(resumed: boolean): void {
    if (!resumed) {
      // A new session: every lease of the old one is gone (re-issued elsewhere).
      for (const a of this.#active.values()) this.#lose(a, 'the session could not be resumed');
      for (const [stream, u] of this.#unacked) {
        this.#unacked.delete(stream);
        u.resolve(false);
      }
      return;
    }
    // ATP_SPEC §11.6: name every lease still held at once. A LEASE the coordinator sent just before
    // the drop and that never arrived is then not renewed, and ends by ttl instead of being stuck.
    const held = [...this.#active.values()].filter((a) => !a.lost && !a.revoked).map((a) => a.lease.leaseId);
    this.#conn?.send({ type: 'RENEW', stream: this.#conn.nextStream(), leaseIds: held });
    // Results the coordinator never acknowledged are sent again; it accepts each once (ATP_SPEC §12).
    for (const [stream, u] of [...this.#unacked]) {
      this.#unacked.delete(stream);
      this.#sendTracked(u.msg, u.resolve);
    }
  }

  /** ATP_SPEC §8.3: stop the handler; a lease not held (or of another epoch) is acknowledged at once. */
  #revoke(leaseId: Uint8Array, epoch: number, code: ErrorCode, reason: string): void {
    const a = this.#active.get(toHex(leaseId));
    if (a === undefined || a.lease.epoch !== epoch) {
      if (this.#conn !== undefined) this.#ackRevoke(this.#conn, leaseId, epoch);
      return;
    }
    a.revoked = true;
    abortLease(a, code, reason);
  }

  /**
   * REVOKE_ACK for one lease. With revoke-batch agreed, the leases whose handlers stopped while one
   * callback ran are acknowledged together, in REVOKE_ACKs of up to MAX_REVOKE_BATCH leases.
   */
  #ackRevoke(conn: ClientConnection, leaseId: Uint8Array, epoch: number): void {
    if (conn.welcome?.capabilities.includes(Capability.REVOKE_BATCH) !== true) {
      conn.send({ type: 'REVOKE_ACK', stream: 0, leaseId, epoch });
      return;
    }
    const at = this.#acksOwed * REVOKE_ACK_ENTRY_BYTES;
    if (at + REVOKE_ACK_ENTRY_BYTES > this.#acks.length) {
      const grown = new Uint8Array(Math.max(64 * REVOKE_ACK_ENTRY_BYTES, 2 * this.#acks.length));
      grown.set(this.#acks.subarray(0, at));
      this.#acks = grown;
    }
    this.#acks.set(leaseId, at);
    new DataView(this.#acks.buffer).setUint32(at + 16, epoch);
    if (this.#acksOwed++ > 0) return;
    queueMicrotask(() => {
      const n = this.#acksOwed;
      const bytes = this.#acks;
      this.#acksOwed = 0;
      this.#acks = new Uint8Array(0);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < n; i += Limits.MAX_REVOKE_BATCH) {
        const end = Math.min(n, i + Limits.MAX_REVOKE_BATCH);
        const at0 = i * REVOKE_ACK_ENTRY_BYTES;
        const msg: MessageOf<'REVOKE_ACK'> = {
          type: 'REVOKE_ACK',
          stream: 0,
          leaseId: bytes.subarray(at0, at0 + 16),
          epoch: view.getUint32(at0 + 16),
        };
        if (end - i > 1) msg.more = bytes.subarray(at0 + REVOKE_ACK_ENTRY_BYTES, end * REVOKE_ACK_ENTRY_BYTES);
        conn.send(msg);
      }
    });
  }
  #acks = new Uint8Array(0);
  #acksOwed = 0;

  #renew(): void {
    this.#conn?.send({ type: 'RENEW', stream: this.#conn.nextStream(), leaseIds: [] });
  }

  #onPush(msg: Message): void {
    switch (msg.type) {
      case 'LEASE':
        return this.#onLease(msg);
      case 'REVOKE': {
        const code = codeOfWire(msg.code);
        const reason = msg.reason || 'revoked';
        // revoke-batch (ATP_WIRE §6.31): `more` names other leases revoked alike. A malformed list
        // stops nothing: the connection is closed and the coordinator sends the REVOKEs again.
        const more = msg.more;
        if (more !== undefined && more.length % REVOKE_ENTRY_BYTES !== 0) {
          this.#conn?.fail(`REVOKE.more is ${more.length} bytes, not a multiple of ${REVOKE_ENTRY_BYTES}`);
          return;
        }
        this.#revoke(msg.leaseId, msg.epoch, code, reason);
        if (more === undefined) return;
        const view = new DataView(more.buffer, more.byteOffset, more.byteLength);
        for (let off = 0; off < more.length; off += REVOKE_ENTRY_BYTES) {
          this.#revoke(more.subarray(off, off + 16), view.getUint32(off + 16), code, reason);
        }
        return;
      }
      case 'LEASE_LOST': {
        const a = this.#active.get(toHex(msg.leaseId));
        if (a !== undefined) this.#lose(a, msg.message, codeOfWire(msg.code));
        return;
      }
      case 'GOAWAY':
        // ATP_SPEC §11.3: a drain asked by the coordinator is done as if the worker had started it,
        // and ends with a graceful leave (not a reconnect).
        if (msg.mode === GoawayMode.DRAIN_FINISH || msg.mode === GoawayMode.DRAIN_HANDBACK) {
          void this.drain(msg.mode === GoawayMode.DRAIN_HANDBACK ? 'handback' : 'finish', msg.deadlineMs || undefined).then(() =>
            this.close(),
          );
        }
        return;
      default:
        return;
    }
  }

  /** ATP_SPEC §5.7: a stale reply stops the handler at once; nothing more is sent for it. */
  #lose(a: Active, why: string, code: ErrorCode = 'ATP_ERR_STALE_LEASE'): void {
    a.lost = true;
    abortLease(a, code, why);
  }

  #onLease(msg: MessageOf<'LEASE'>): void {
    const leaseHex = toHex(msg.leaseId);
    const handler = this.#handlers.get(msg.kind);
    this.leased++;
    const a: Active = {
      lease: msg,
      leaseHex,
      controller: undefined,
      abortReason: undefined,
      revoked: false,
      lost: false,
      handback: false,
      seq: msg.lastPartialSeq,
      lastCheckpoint: undefined,
      ttlMs: msg.ttlMs,
    };
    this.#active.set(leaseHex, a);
    this.#countTtl(a.ttlMs, 1);
    this.#tuneHeartbeat();
    if (handler === undefined) {
      this.#finish(a, { type: 'FAIL', code: wireCodeOf('ATP_ERR_NO_HANDLER'), retryable: 1, message: `no handler for kind ${msg.kind}` });
      return;
    }
    const ctx = new LeaseContext(a, this.#conn!, (why) => this.#lose(a, why));
    const artifact: LeasedArtifact = {
      id: toHex(msg.artifactId),
      kind: msg.kind,
      // A small view of a read chunk is copied; a reassembled large payload is handed over as is.
      payload: ownedBytes(msg.payload),
      parentId: msg.parentId.every((b) => b === 0) ? null : toHex(msg.parentId),
      digest: toHex(msg.digest.value),
      attempt: msg.attempt,
    };
    let settled: Promise<Uint8Array | string | undefined | void>;
    try {
      settled = handler(artifact, ctx);
    } catch (err) {
      settled = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    settled.then(
      (value) => this.#finish(a, { type: 'COMPLETE', result: toBytes(value) }),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        const retryable = (e as { retryable?: unknown }).retryable !== false;
        const code = e instanceof AtpError ? e.wire : wireCodeOf(retryable ? 'ATP_ERR_HANDLER' : 'ATP_ERR_HANDLER_FATAL');
        this.#finish(a, { type: 'FAIL', code, retryable: retryable ? 1 : 0, message: e.message.slice(0, 1000) });
      },
    );
  }

  #finish(
    a: Active,
    outcome: { type: 'COMPLETE'; result: Uint8Array } | { type: 'FAIL'; code: number; retryable: number; message: string },
  ): void {
    const conn = this.#conn!;
    const { leaseId, epoch } = a.lease;
    const done = () => {
      if (this.#active.delete(a.leaseHex)) this.#countTtl(a.ttlMs, -1);
      if (this.#draining === 0 && !this.#closed) this.#giveCredit(conn);
      this.#tuneHeartbeat();
      this.#drained?.();
    };
    // A revoked lease is acknowledged once its handler stopped (ATP_SPEC §8.4-2), also when a stale
    // reply came after the REVOKE: after a resume the worker names its leases in a RENEW before it
    // reads the REVOKE sent again, and the coordinator answers that RENEW with LEASE_LOST (§5.8-1)
    // while it still waits for the acknowledgement.
    if (a.revoked) {
      this.#ackRevoke(conn, leaseId, epoch);
      return done();
    }
    if (a.lost) return done();
    if (a.handback) {
      const cp = a.lastCheckpoint;
      this.#sendTracked(
        {
          type: 'RELEASE',
          stream: conn.nextStream(),
          leaseId,
          epoch,
          hasCheckpoint: cp === undefined ? 0 : 1,
          checkpoint: cp ?? new Uint8Array(0),
          reason: 'handed back on drain',
        },
        () => this.#drained?.(),
      );
      return done();
    }
    const msg: MessageOf<'COMPLETE'> | MessageOf<'FAIL'> =
      outcome.type === 'COMPLETE'
        ? { type: 'COMPLETE', stream: conn.nextStream(), leaseId, epoch, result: outcome.result }
        : {
            type: 'FAIL',
            stream: conn.nextStream(),
            leaseId,
            epoch,
            code: outcome.code,
            retryable: outcome.retryable,
            message: outcome.message,
          };
    // The slot is free as soon as the handler is done: the credit goes out with the result, and
    // the result stays tracked until the coordinator acknowledges it.
    this.#sendTracked(msg, (accepted) => {
      // Only a result the coordinator acknowledged counts; a refused one (LEASE_LOST) does not.
      if (msg.type === 'COMPLETE' && accepted) this.completed++;
      this.#drained?.();
    });
    done();
  }

  /**
   * A freed slot is a credit for the coordinator. Credits freed by one callback (a read chunk of
   * LEASEs whose handlers all returned, say) go out as one CREDIT frame, queued after the results
   * they follow (ATP_SPEC §5.2 allows any positive count).
   */
  #giveCredit(conn: ClientConnection): void {
    if (this.#creditsOwed++ > 0) return;
    // A microtask: it runs before the flush pass (process.nextTick), so the CREDIT leaves in the
    // same write as the results that freed the slots.
    queueMicrotask(() => {
      const credits = this.#creditsOwed;
      this.#creditsOwed = 0;
      if (this.#draining === 0 && !this.#closed) conn.send({ type: 'CREDIT', stream: 0, credits });
    });
  }
  #creditsOwed = 0;

  /** Send a result-bearing frame and keep it until ACK or LEASE_LOST (re-sent after a resume). */
  #sendTracked(msg: Unacked['msg'], resolve: (accepted: boolean) => void): void {
    const conn = this.#conn!;
    this.#unacked.set(msg.stream, { msg, resolve });
    conn.listen(msg.stream, (m) => {
      if (m.type === 'ACK' || m.type === 'LEASE_LOST' || (m.type === 'ERROR' && m.code !== wireCodeOf('ATP_ERR_UNAVAILABLE'))) {
        conn.unlisten(msg.stream);
        if (this.#unacked.delete(msg.stream)) resolve(m.type === 'ACK');
      }
    });
    try {
      conn.send(msg);
    } catch (err) {
      conn.unlisten(msg.stream);
      this.#unacked.delete(msg.stream);
      if (!(err instanceof AtpError) || err.code !== 'ATP_ERR_PAYLOAD_TOO_LARGE' || msg.type === 'FAIL') throw err;
      // ATP_WIRE §3.7: larger than the coordinator accepts. A result becomes a failure that says so
      // (another attempt would produce the same bytes); a hand-back goes without its checkpoint.
      const next: Unacked['msg'] =
        msg.type === 'COMPLETE'
          ? {
              type: 'FAIL',
              stream: msg.stream,
              leaseId: msg.leaseId,
              epoch: msg.epoch,
              code: wireCodeOf('ATP_ERR_PAYLOAD_TOO_LARGE'),
              retryable: 0,
              message: `the result is ${msg.result.length} bytes, more than the coordinator accepts: ${err.message}`.slice(0, 1000),
            }
          : { ...msg, hasCheckpoint: 0, checkpoint: new Uint8Array(0) };
      this.#sendTracked(next, msg.type === 'COMPLETE' ? () => resolve(false) : resolve);
    }
  }

  /** Renew at least three times per smallest held ttl (ATP_SPEC §5.4). */
  #tuneHeartbeat(): void {
    const conn = this.#conn;
    if (conn === undefined) return;
    let ttl = Infinity;
    for (const t of this.#ttls.keys()) ttl = Math.min(ttl, t);
    const hb = conn.welcome?.heartbeatMs ?? 10_000;
    const interval = Math.max(10, Math.min(hb, Math.floor(ttl / 3)));
    if (interval !== this.#interval) {
      this.#interval = interval;
      conn.setHeartbeatInterval(interval, () => this.#renew());
    }
  }
  #interval = 0;
  /** Held leases by ttl: the smallest ttl without scanning every lease (a few distinct ttls at most). */
  readonly #ttls = new Map<number, number>();

  #countTtl(ttlMs: number, delta: 1 | -1): void {
    const n = (this.#ttls.get(ttlMs) ?? 0) + delta;
    if (n > 0) this.#ttls.set(ttlMs, n);
    else this.#ttls.delete(ttlMs);
  }

  /**
   * ATP_SPEC §11.2: drain. `finish` completes held leases; `handback` stops them and hands each
   * back with its last checkpoint. Resolves when no lease is held; then close() leaves.
   */
  async drain(mode: 'finish' | 'handback' = 'finish', deadlineMs = 30_000): Promise<void> {
    if (this.#draining === 0) {
      this.#draining = mode === 'finish' ? GoawayMode.DRAIN_FINISH : GoawayMode.DRAIN_HANDBACK;
      this.#conn?.send({ type: 'GOAWAY', stream: 0, code: 0, mode: this.#draining, deadlineMs, reason: `worker drain (${mode})` });
    }
    if (mode === 'handback') {
      for (const a of this.#active.values()) {
        a.handback = true;
        abortLease(a, 'ATP_ERR_WORKER_LEAVING', 'the worker is draining and hands the lease back');
      }
    }
    if (this.#active.size === 0 && this.#unacked.size === 0) return;
    await new Promise<void>((resolve) => {
      this.#drained = () => {
        if (this.#active.size === 0 && this.#unacked.size === 0) resolve();
      };
    });
  }

  /** Leave: GOAWAY and close. Leases still held are released by the coordinator. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const a of this.#active.values()) abortLease(a, 'ATP_ERR_WORKER_LEAVING', 'the worker is closing');
    await this.#conn?.close();
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
  }

  /** Drop the connection without a goodbye (tests of abrupt leave and resume). */
  dropConnection(): void {
    this.#conn?.destroyConnection();
  }

  #onClosed(): void {
    this.#closed = true;
    for (const a of this.#active.values()) this.#lose(a, 'the connection to the coordinator is closed');
  }
}
