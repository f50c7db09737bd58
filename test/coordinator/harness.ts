/**
 * Test harness for the coordinator: a coordinator on a FakeClock behind `memory://`, and a raw peer
 * that speaks frames directly (no SDK), so that tests can send anything, out of order or malformed,
 * and see every frame the coordinator answers.
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { COORDINATOR_DIAGNOSTICS, Coordinator } from '../../src/coordinator/coordinator.js';
import type { CoordinatorOptions } from '../../src/coordinator/options.js';
import { wireCodeOf } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { FakeClock } from '../../src/internal/clock.js';
import { artifactDigest, defaultArtifactId, randomId, toHex } from '../../src/internal/ids.js';
import type { Transport } from '../../src/transport/transport.js';
import { connect } from '../../src/transport/url.js';
import { FrameDecoder, Limits, PREFACE, decodeBody, encodeFrame } from '../../src/wire/index.js';
import type { Message, MessageName, MessageOf } from '../../src/wire/index.js';

let serial = 0;

/** A coordinator on a fake clock, listening on a fresh memory:// name. */
export interface TestCoordinator {
  coord: Coordinator;
  clock: FakeClock;
  url: string;
  /** Diagnostics events published while the coordinator ran. */
  events: Array<{ event: string } & Record<string, unknown>>;
  close(): Promise<void>;
}

/** Start a coordinator with a FakeClock (unless one is given) on memory://. */
export async function startCoordinator(options: CoordinatorOptions = {}): Promise<TestCoordinator> {
  const clock = options.clock instanceof FakeClock ? options.clock : new FakeClock();
  const coord = new Coordinator({ ...options, clock: options.clock ?? clock });
  const listener = await coord.listen(`memory://coord-${process.pid}-${++serial}`);
  const events: TestCoordinator['events'] = [];
  const ch = diagnosticsChannel(COORDINATOR_DIAGNOSTICS);
  const onEvent = (m: unknown) => {
    events.push(m as TestCoordinator['events'][number]);
  };
  ch.subscribe(onEvent);
  return {
    coord,
    clock,
    url: listener.url,
    events,
    close: async () => {
      ch.unsubscribe(onEvent);
      await coord.close();
    },
  };
}

/** Wait `n` turns of the event loop (not wall-clock time): enough for memory:// round trips to settle. */
export async function settle(n = 12): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

type Pred = (m: Message) => boolean;

/** A client that speaks raw ATP frames over one transport. */
export class Peer {
  readonly transport: Transport;
  /** Every message received, in order. */
  readonly log: Message[] = [];
  readonly #inbox: Message[] = [];
  readonly #waiters: Array<{ pred: Pred; resolve: (m: Message) => void }> = [];
  readonly #decoder = new FrameDecoder(Limits.MAX_MAX_FRAME_BYTES);
  #prefaceLeft: number;
  #closed = false;
  readonly closed: Promise<void>;
  #stream = 1;
  welcome: MessageOf<'WELCOME'> | undefined;

  private constructor(transport: Transport) {
    this.transport = transport;
    this.#prefaceLeft = transport.framed ? 0 : PREFACE.length;
    let done!: () => void;
    this.closed = new Promise((r) => (done = r));
    transport.setHandlers({
      data: (chunk) => this.#data(chunk),
      drain: () => undefined,
      close: () => {
        this.#closed = true;
        done();
      },
    });
  }

  /** Connect; sends the client preface unless told not to. */
  static async open(url: string, options: { preface?: boolean } = {}): Promise<Peer> {
    const t = await connect(url);
    const p = new Peer(t);
    if (options.preface !== false && !t.framed) t.write(PREFACE);
    return p;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Bytes received, preface included. */
  bytesIn = 0;

  #data(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    if (this.#prefaceLeft > 0) {
      const n = Math.min(this.#prefaceLeft, chunk.length);
      this.#prefaceLeft -= n;
      chunk = chunk.subarray(n);
      if (chunk.length === 0) return;
    }
    this.#decoder.push(chunk, (f) => {
      const m = decodeBody(f.code, f.stream, f.payload);
      if (m === undefined) return;
      this.log.push(m);
      const i = this.#waiters.findIndex((w) => w.pred(m));
      if (i >= 0) {
        const [w] = this.#waiters.splice(i, 1);
        w!.resolve(m);
      } else this.#inbox.push(m);
    });
  }

  /** A fresh odd stream id. */
  stream(): number {
    const s = this.#stream;
    this.#stream += 2;
    return s;
  }

  send(msg: Message): void {
    this.transport.write(encodeFrame(msg));
  }

  /** Send several frames in one write (pipelined). */
  sendAll(msgs: readonly Message[]): void {
    const parts = msgs.map((m) => encodeFrame(m));
    this.transport.write(Buffer.concat(parts));
  }

  sendRaw(bytes: Uint8Array): void {
    this.transport.write(bytes);
  }

  /** The next (not yet taken) message matching `what`; waits up to `timeoutMs` of real time as a safety net. */
  next<N extends MessageName>(what: N, pred?: (m: MessageOf<N>) => boolean, timeoutMs?: number): Promise<MessageOf<N>>;
  next(what: Pred, pred?: undefined, timeoutMs?: number): Promise<Message>;
  next(what: MessageName | Pred, pred?: (m: never) => boolean, timeoutMs = 15_000): Promise<Message> {
    const p: Pred =
      typeof what === 'function' ? what : (m) => m.type === what && (pred === undefined || (pred as (m: Message) => boolean)(m));
    const i = this.#inbox.findIndex(p);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = {
        pred: p,
        resolve: (m: Message) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        const k = this.#waiters.indexOf(w);
        if (k >= 0) this.#waiters.splice(k, 1);
        reject(
          new Error(
            `no ${typeof what === 'string' ? what : 'matching message'} within ${timeoutMs} ms; received: ${this.log.map((m) => m.type).join(' ')}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Take every buffered message matching `what` (after letting the event loop settle). */
  async take<N extends MessageName>(what: N, pred?: (m: MessageOf<N>) => boolean): Promise<Array<MessageOf<N>>> {
    await settle();
    const out: Array<MessageOf<N>> = [];
    for (let i = 0; i < this.#inbox.length;) {
      const m = this.#inbox[i]!;
      if (m.type === what && (pred === undefined || pred(m as unknown as MessageOf<N>))) {
        out.push(m as unknown as MessageOf<N>);
        this.#inbox.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** The GOAWAY that ended the connection, and wait for the close. */
  async goaway(): Promise<MessageOf<'GOAWAY'>> {
    const g = await this.next('GOAWAY');
    await this.closed;
    return g;
  }

  /** Send HELLO and wait for WELCOME (or throw with the GOAWAY). */
  async hello(fields: Partial<MessageOf<'HELLO'>> = {}): Promise<MessageOf<'WELCOME'>> {
    this.send(hello(fields));
    const m = await this.next((x) => x.type === 'WELCOME' || x.type === 'GOAWAY');
    if (m.type === 'GOAWAY') throw new Error(`refused: code 0x${m.code.toString(16)} ${m.reason}`);
    this.welcome = m as MessageOf<'WELCOME'>;
    return this.welcome;
  }

  close(): void {
    this.transport.destroy();
  }

  /** Graceful leave. */
  bye(): void {
    this.send({ type: 'GOAWAY', stream: 0, code: 0, mode: 0, deadlineMs: 0, reason: 'bye' });
  }
}

/** A HELLO with defaults (producer and observer, version 1). */
export function hello(fields: Partial<MessageOf<'HELLO'>> = {}): MessageOf<'HELLO'> {
  return {
    type: 'HELLO',
    stream: 0,
    minVersion: 1,
    maxVersion: 1,
    roles: 6,
    nodeId: randomId(16),
    credits: 0,
    maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
    idleTimeoutMs: 0,
    agent: 'atp-test',
    kinds: [],
    capabilities: [],
    ...fields,
  };
}

/** A WELCOME with defaults (worker and producer, version 1), for tests that play the coordinator. */
export function welcome(fields: Partial<MessageOf<'WELCOME'>> = {}): MessageOf<'WELCOME'> {
  return {
    type: 'WELCOME',
    stream: 0,
    version: 1,
    roles: 3,
    resumed: 0,
    sessionId: new Uint8Array(16).fill(8),
    resumeToken: new Uint8Array(32),
    heartbeatMs: 10_000,
    idleTimeoutMs: 0,
    maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
    resumeWindowMs: 5_000,
    cancelDeadlineMs: 5_000,
    agent: 'atp-test',
    capabilities: [],
    ...fields,
  };
}

/** Open a producer session. */
export async function producer(url: string, fields: Partial<MessageOf<'HELLO'>> = {}): Promise<Peer> {
  const p = await Peer.open(url);
  await p.hello({ roles: 6, ...fields });
  return p;
}

/** Open a worker session for `kinds` with `credits`. */
export async function worker(url: string, kinds: string[] = ['k'], credits = 1, fields: Partial<MessageOf<'HELLO'>> = {}): Promise<Peer> {
  const p = await Peer.open(url);
  await p.hello({ roles: 1, kinds, credits, ...fields });
  return p;
}

const enc = new TextEncoder();

/** The SUBMIT of an artifact, with the default (content-derived) id unless one is given. */
export function submit(
  stream: number,
  kind: string,
  payload: string | Uint8Array,
  fields: Partial<MessageOf<'SUBMIT'>> = {},
): MessageOf<'SUBMIT'> {
  const bytes = typeof payload === 'string' ? enc.encode(payload) : payload;
  return {
    type: 'SUBMIT',
    stream,
    artifactId: fields.artifactId ?? defaultArtifactId(artifactDigest(kind, bytes)),
    kind,
    priority: 0,
    latePolicy: 0,
    quorumK: 0,
    quorumN: 0,
    leaseTtlMs: 0,
    maxDurationMs: 0,
    deadlineMs: 0,
    maxAttempts: 0,
    watch: 0,
    parentId: new Uint8Array(16),
    tags: [],
    payload: bytes,
    ...fields,
  };
}

/** Submit one artifact and wait for ACCEPTED; returns it (and the artifact id in hex). */
export async function submitOne(
  p: Peer,
  kind: string,
  payload: string | Uint8Array,
  fields: Partial<MessageOf<'SUBMIT'>> = {},
): Promise<MessageOf<'ACCEPTED'> & { id: string }> {
  const s = p.stream();
  p.send(submit(s, kind, payload, fields));
  const m = await p.next((x) => (x.type === 'ACCEPTED' || x.type === 'ERROR') && x.stream === s);
  if (m.type === 'ERROR') throw new Error(`SUBMIT refused: 0x${m.code.toString(16)} ${m.message}`);
  const a = m as MessageOf<'ACCEPTED'>;
  return { ...a, id: toHex(a.artifactId) };
}

/** Lease reference fields of a LEASE. */
export function ref(l: MessageOf<'LEASE'>): { leaseId: Uint8Array; epoch: number } {
  return { leaseId: l.leaseId, epoch: l.epoch };
}

/** Wire code of a string code. */
export function code(c: ErrorCode): number {
  return wireCodeOf(c);
}

/** QUERY an artifact and return its STATE. */
export async function query(p: Peer, id: Uint8Array | string): Promise<MessageOf<'STATE'>> {
  const s = p.stream();
  p.send({ type: 'QUERY', stream: s, artifactId: typeof id === 'string' ? Buffer.from(id, 'hex') : id, withResult: 0 });
  return p.next('STATE', (m) => m.stream === s);
}

/** QUERY with the result of a terminal artifact. */
export async function queryResult(p: Peer, id: Uint8Array | string): Promise<MessageOf<'RESULT'>> {
  const s = p.stream();
  p.send({ type: 'QUERY', stream: s, artifactId: typeof id === 'string' ? Buffer.from(id, 'hex') : id, withResult: 1 });
  return p.next('RESULT', (m) => m.stream === s);
}

/** Text of bytes. */
export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
