/**
 * Benchmark child: the platform's floor under end-to-end throughput. The same processes as the ATP
 * run (one producer, one relay in the coordinator's place, 4 workers) move the same six frames per
 * artifact over loopback TCP (SUBMIT, ACCEPTED, LEASE, COMPLETE, ACK, RESULT), with writes
 * gathered per event-loop turn as ATP's channels do. Each frame is a length, a type, a 16-byte id
 * and the payload; the relay keeps each artifact in a Map by its id until its result, queues it,
 * and leases it to a worker that has a credit. Nothing else: no digest, no store, no lease
 * deadline, no watch, no validation, no promise or handle per artifact.
 *
 * Roles (the `role` of the configuration): `relay` listens and answers `{ port }` when ready;
 * `worker` connects and offers `credits`; `producer` connects and answers `throughput`. With
 * `batch` (every role), the artifacts of one type queued together share a frame.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { childConfig, emit, nowNs, serve } from '../lib/ipc.js';
import { summarize } from '../lib/stats.js';

type Role = { batch?: boolean } & (
  | { role: 'relay' }
  | { role: 'worker'; port: number; credits: number; mode?: 'noop' | 'stamp' | 'hold' }
  | { role: 'producer'; port: number }
);

const T_SUBMIT = 1;
const T_ACCEPTED = 2;
const T_LEASE = 3;
const T_COMPLETE = 4;
const T_ACK = 5;
const T_RESULT = 6;
const T_HELLO = 7;
const T_CANCEL = 8;
const T_REVOKE = 9;
const T_REVOKE_ACK = 10;
const T_CANCEL_RESULT = 11;
const ID_BYTES = 16;
/** A frame: length (u32), type (u8), how many artifacts it carries (u32); then each: id, u16 length, body. */
const HEAD = 9;
const ITEM_HEAD = ID_BYTES + 2;

/**
 * Frames queued for one socket, written once per event-loop turn; a LEASE or REVOKE right after
 * the current callback, as ATP's channels write a frame that starts or stops work (process.nextTick).
 * One artifact per frame, as in ATP; with `batch`, the artifacts of one type queued one after the
 * other share a frame (a SUBMIT, LEASE, COMPLETE or RESULT of many).
 */
class Out {
  #buf = Buffer.allocUnsafe(64 * 1024);
  #len = 0;
  #scheduled = false;
  #urgent = false;
  /** The frame still open for more artifacts (batch only): where it starts, its type, its count. */
  #open = -1;
  #openType = 0;
  #openCount = 0;
  constructor(
    readonly socket: net.Socket,
    readonly batch: boolean,
  ) {}

  frame(type: number, src: Buffer, idAt: number, body: Buffer | undefined, bodyAt = 0, bodyLen = 0): void {
    const join = this.batch && this.#open >= 0 && this.#openType === type;
    const size = (join ? 0 : HEAD) + ITEM_HEAD + bodyLen;
    if (this.#len + size > this.#buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + size));
      this.#buf.copy(bigger, 0, 0, this.#len);
      this.#buf = bigger;
    }
    const b = this.#buf;
    if (!join) {
      this.#close();
      this.#open = this.#len;
      this.#openType = type;
      this.#openCount = 0;
      b[this.#len + 4] = type;
      this.#len += HEAD;
    }
    src.copy(b, this.#len, idAt, idAt + ID_BYTES);
    b.writeUInt16BE(bodyLen, this.#len + ID_BYTES);
    if (body !== undefined && bodyLen > 0) body.copy(b, this.#len + ITEM_HEAD, bodyAt, bodyAt + bodyLen);
    this.#len += ITEM_HEAD + bodyLen;
    this.#openCount++;
    if ((type === T_LEASE || type === T_REVOKE) && !this.#urgent) {
      this.#urgent = true;
      process.nextTick(this.#flush);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Write the open frame's length and count. */
  #close(): void {
    if (this.#open < 0) return;
    this.#buf.writeUInt32BE(this.#len - this.#open - 4, this.#open);
    this.#buf.writeUInt32BE(this.#openCount, this.#open + 5);
    this.#open = -1;
  }

  readonly #flush = (): void => {
    this.#scheduled = this.#urgent = false;
    if (this.#len === 0) return;
    this.#close();
    // The socket keeps what it is given until written: hand it this buffer and start a new one.
    this.socket.write(this.#buf.subarray(0, this.#len));
    this.#buf = Buffer.allocUnsafe(64 * 1024);
    this.#len = 0;
  };
}

/** Split a byte stream into frames, and each into artifacts: onFrame(type, buffer, offset of the id, length of its body). */
function reader(socket: net.Socket, onFrame: (type: number, b: Buffer, at: number, bodyLen: number) => void): void {
  let rest: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    const b = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
    rest = undefined;
    let at = 0;
    while (b.length - at >= 4) {
      const len = b.readUInt32BE(at);
      if (b.length - at - 4 < len) break;
      const type = b[at + 4]!;
      let item = at + HEAD;
      for (let k = b.readUInt32BE(at + 5); k > 0; k--) {
        const bodyLen = b.readUInt16BE(item + ID_BYTES);
        onFrame(type, b, item, bodyLen);
        item += ITEM_HEAD + bodyLen;
      }
      at += 4 + len;
    }
    if (at < b.length) rest = b.subarray(at);
  });
}

const cfg = childConfig<Role>();

if (cfg.role === 'relay') {
  interface Art {
    id: Buffer;
    payload: Buffer;
    producer: Out;
    worker: WorkerConn | undefined;
    canceller: Out | undefined;
  }
  interface WorkerConn {
    out: Out;
    credits: number;
  }
  const arts = new Map<string, Art>();
  const queue: Art[] = [];
  let head = 0;
  const workers: WorkerConn[] = [];
  let next = 0;
  let dispatchScheduled = false;
  const dispatch = (): void => {
    dispatchScheduled = false;
    for (let idle = 0; head < queue.length && idle < workers.length;) {
      const w = workers[next++ % workers.length]!;
      if (w.credits === 0) {
        idle++;
        continue;
      }
      idle = 0;
      const a = queue[head++]!;
      w.credits--;
      a.worker = w;
      w.out.frame(T_LEASE, a.id, 0, a.payload, 0, a.payload.length);
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    }
  };
  const wantDispatch = (): void => {
    if (dispatchScheduled) return;
    dispatchScheduled = true;
    queueMicrotask(dispatch);
  };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const out = new Out(socket, cfg.batch === true);
    let worker: WorkerConn | undefined;
    reader(socket, (type, b, at, bodyLen) => {
      if (type === T_SUBMIT) {
        // Own copies: the read buffer is the socket's.
        const id = Buffer.from(b.subarray(at, at + ID_BYTES));
        const payload = Buffer.from(b.subarray(at + ITEM_HEAD, at + ITEM_HEAD + bodyLen));
        const a: Art = { id, payload, producer: out, worker: undefined, canceller: undefined };
        arts.set(id.toString('latin1'), a);
        queue.push(a);
        out.frame(T_ACCEPTED, b, at, undefined);
        wantDispatch();
      } else if (type === T_COMPLETE) {
        const key = b.toString('latin1', at, at + ID_BYTES);
        const a = arts.get(key);
        out.frame(T_ACK, b, at, undefined);
        if (a !== undefined) {
          arts.delete(key);
          a.producer.frame(T_RESULT, b, at, b, at + ITEM_HEAD, bodyLen);
        }
        worker!.credits++;
        wantDispatch();
      } else if (type === T_CANCEL) {
        // One leased artifact: REVOKE it, and answer once its worker acknowledges.
        const a = arts.get(b.toString('latin1', at, at + ID_BYTES));
        if (a?.worker === undefined) return out.frame(T_CANCEL_RESULT, b, at, undefined);
        a.canceller = out;
        a.worker.out.frame(T_REVOKE, b, at, undefined);
      } else if (type === T_REVOKE_ACK) {
        const key = b.toString('latin1', at, at + ID_BYTES);
        const a = arts.get(key);
        if (a === undefined) return;
        arts.delete(key);
        a.canceller?.frame(T_CANCEL_RESULT, b, at, undefined);
        worker!.credits++;
        wantDispatch();
      } else if (type === T_HELLO) {
        worker = { out, credits: b.readUInt32BE(at) };
        workers.push(worker);
        wantDispatch();
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as net.AddressInfo).port;
    serve({});
    emit('ready', { pid: process.pid, port });
  });
} else if (cfg.role === 'worker') {
  const socket = net.connect(cfg.port, '127.0.0.1', () => {
    const hello = Buffer.alloc(ID_BYTES);
    hello.writeUInt32BE(cfg.credits, 0);
    out.frame(T_HELLO, hello, 0, undefined);
    serve({});
    emit('ready', { pid: process.pid });
  });
  socket.setNoDelay(true);
  const out = new Out(socket, cfg.batch === true);
  const stamp = Buffer.alloc(8);
  reader(socket, (type, b, at) => {
    if (type === T_REVOKE) {
      // `hold`: the handler stops here; the harness hears when, as from the ATP worker's 'hold' handler.
      emit('aborted', { id: b.toString('hex', at, at + ID_BYTES), t: nowNs() });
      return out.frame(T_REVOKE_ACK, b, at, undefined);
    }
    if (type !== T_LEASE) return;
    if (cfg.mode === 'hold') return emit('started', { id: b.toString('hex', at, at + ID_BYTES) });
    // The no-op handler: an empty result; or, with `stamp`, the time it started.
    if (cfg.mode !== 'stamp') return out.frame(T_COMPLETE, b, at, undefined);
    stamp.writeDoubleBE(nowNs());
    out.frame(T_COMPLETE, b, at, stamp, 0, 8);
  });
} else {
  const port = cfg.port;
  const socket = net.connect(port, '127.0.0.1', () => {
    serve({ throughput, dispatch, submitOne, cancel });
    emit('ready', { pid: process.pid });
  });
  socket.setNoDelay(true);
  const out = new Out(socket, cfg.batch === true);
  /** Ids submitted whose result has not come: the producer's only per-artifact state. */
  const waiting = new Set<string>();
  let accepted = 0;
  let completed = 0;
  let onAccepted: (() => void) | undefined;
  let onDone: (() => void) | undefined;
  let want = 0;
  let started = 0;
  let onCancelResult: (() => void) | undefined;
  reader(socket, (type, b, at, bodyLen) => {
    if (type === T_CANCEL_RESULT) {
      onCancelResult?.();
    } else if (type === T_ACCEPTED) {
      if (--accepted === 0) onAccepted?.();
    } else if (type === T_RESULT) {
      if (bodyLen === 8) started = b.readDoubleBE(at + ITEM_HEAD);
      if (waiting.delete(b.toString('latin1', at, at + ID_BYTES)) && ++completed === want) onDone?.();
    }
  });
  const prefix = randomBytes(8);

  /** Submit n artifacts in awaited chunks, as the ATP driver does, and wait for every result. */
  async function throughput(a: { n: number; chunk: number; nonce: string }) {
    want = a.n;
    completed = 0;
    const done = new Promise<void>((r) => (onDone = r));
    const t0 = nowNs();
    const id = Buffer.alloc(ID_BYTES);
    prefix.copy(id, 0);
    for (let i = 0; i < a.n; i += a.chunk) {
      const end = Math.min(a.n, i + a.chunk);
      const chunkDone = new Promise<void>((r) => (onAccepted = r));
      accepted = end - i;
      for (let j = i; j < end; j++) {
        id.writeBigUInt64BE(BigInt(j + 1), 8);
        const payload = Buffer.from(`{"unit":${j},"run":"${a.nonce}"}`);
        waiting.add(id.toString('latin1'));
        out.frame(T_SUBMIT, id, 0, payload, 0, payload.length);
      }
      await chunkDone;
    }
    const tSubmitted = nowNs();
    await done;
    const t1 = nowNs();
    return { t0, tSubmitted, t1, n: a.n, completed };
  }

  /** Light load, as the ATP driver's dispatch: one artifact at a time, from submit to the handler's start. */
  async function dispatch(a: { n: number; warm: number; nonce: string }) {
    const startUs: number[] = [];
    const id = Buffer.alloc(ID_BYTES);
    prefix.copy(id, 0);
    for (let i = 0; i < a.warm + a.n; i++) {
      want = 1;
      completed = 0;
      accepted = 1;
      const done = new Promise<void>((r) => (onDone = r));
      const t0 = nowNs();
      id.writeBigUInt64BE(BigInt(i + 1), 8);
      waiting.add(id.toString('latin1'));
      const payload = Buffer.from(`lat-${a.nonce}-${i}`);
      out.frame(T_SUBMIT, id, 0, payload, 0, payload.length);
      await done;
      if (i >= a.warm) startUs.push((started - t0) / 1e3);
    }
    return summarize(startUs);
  }

  let one = 0;
  /** Submit one artifact; answers its id (hex) once ACCEPTED. */
  async function submitOne(a: { payload: string }) {
    const id = Buffer.alloc(ID_BYTES);
    prefix.copy(id, 0);
    id.writeBigUInt64BE(BigInt(++one), 8);
    accepted = 1;
    const ok = new Promise<void>((r) => (onAccepted = r));
    const payload = Buffer.from(a.payload);
    out.frame(T_SUBMIT, id, 0, payload, 0, payload.length);
    await ok;
    return { id: id.toString('hex') };
  }

  /** Cancel one artifact: when the CANCEL was handed over, and when its answer came. */
  async function cancel(a: { id: string }) {
    const done = new Promise<void>((r) => (onCancelResult = r));
    const t0 = nowNs();
    out.frame(T_CANCEL, Buffer.from(a.id, 'hex'), 0, undefined);
    await done;
    return { t0, t1: nowNs() };
  }
}
