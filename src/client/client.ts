/**
 * The producer SDK (ATP_SPEC §3, §7, §8): submit artifacts (one or pipelined batches), follow their
 * partial results and state changes, await results, query and cancel.
 */
import { AtpError, codeOfWire } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { systemClock } from '../internal/clock.js';
import type { Clock, Timer } from '../internal/clock.js';
import { ownedBytes } from '../internal/bytes.js';
import { OrderedDigests } from '../internal/digest.js';
import { ZERO_ID, defaultArtifactId, fromHex, toHex } from '../internal/ids.js';
import { ClientConnection } from '../protocol/client-connection.js';
import type { ConnectOptions } from '../transport/url.js';
import { ARTIFACT_STATE_NAMES, LatePolicy, Role, WatchFlags, WatchScope, isTerminalState } from '../wire/index.js';
import type { Message, MessageOf } from '../wire/index.js';
import { ArtifactHandle } from './handle.js';
import type { ArtifactEvent, ArtifactOutcome } from './handle.js';

/** What to submit. Only `kind` is required. */
export interface SubmitSpec {
  kind: string;
  payload?: Uint8Array | string;
  /** A producer-chosen id (hex, 32 characters); by default the id is derived from the content. */
  id?: string;
  priority?: number;
  leaseTtlMs?: number;
  maxDurationMs?: number;
  deadlineMs?: number;
  maxAttempts?: number;
  parentId?: string;
  tags?: string[];
  /** Late-result policy: 'reject' (default), 'accept-if-unresolved', or { quorum: [k, n] }. */
  latePolicy?: 'reject' | 'accept-if-unresolved' | { quorum: [number, number] };
  /** Events to follow on the handle: 'result' (default), or 'all' for states and partials too. */
  follow?: 'result' | 'all' | 'none';
}

/** Options of a client. */
export interface ClientOptions {
  /** Other coordinators sharing the store, tried in turn when the first does not answer. */
  fallbackUrls?: readonly string[];
  authToken?: string;
  tenant?: string;
  clock?: Clock;
  transport?: ConnectOptions;
  reconnect?: boolean;
  /** Largest message body this client accepts, a RESULT included (HELLO.maxMessageBytes, ATP_WIRE §3.7). Default 256 MiB. */
  maxMessageBytes?: number;
  /**
   * Let the window for large messages from the coordinator grow to the link, up to this many bytes
   * (ATP_WIRE §3.8), measured with at most 4 PINGs a second while one arrives. Off by default: those
   * PINGs count against the coordinator's budget of 10 a second.
   */
  maxReceiveWindowBytes?: number;
}

/** The answer to a CANCEL. */
export interface CancelSummary {
  cancelled: number;
  alreadyFinished: number;
  stopping: number;
}

/** The state of an artifact as QUERY reports it. */
export interface ArtifactStatus {
  id: string;
  state: string;
  attempts: number;
  epoch: number;
  code: ErrorCode | null;
  lastPartialSeq: number;
  kind: string;
  message: string;
}

const enc = new TextEncoder();
/** How long close() lets the submits already made finish. */
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** A producer's connection to a coordinator. */
export class Client {
  readonly connection: ClientConnection;
  readonly #handles = new Map<string, ArtifactHandle>();
  readonly #digests = new OrderedDigests<Client>();
  /** Submits not answered yet: close() lets them finish (ACCEPTED or ERROR) before it leaves. */
  #unanswered = 0;
  #allAnswered: (() => void) | undefined;
  readonly #clock: Clock;

  private constructor(conn: ClientConnection, clock: Clock) {
    this.connection = conn;
    this.#clock = clock;
  }

  /** Connect to a coordinator (tcp://, tls://, ws://, memory:// URL). */
  static async connect(url: string, options: ClientOptions = {}): Promise<Client> {
    const conn = new ClientConnection({
      url,
      roles: Role.PRODUCER | Role.OBSERVER,
      ...(options.fallbackUrls !== undefined ? { fallbackUrls: options.fallbackUrls } : {}),
      ...(options.authToken !== undefined ? { authToken: options.authToken } : {}),
      ...(options.tenant !== undefined ? { tenant: options.tenant } : {}),
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      ...(options.transport !== undefined ? { transport: options.transport } : {}),
      ...(options.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
      channel: {
        ...(options.maxMessageBytes !== undefined ? { maxMessageBytes: options.maxMessageBytes } : {}),
        ...(options.maxReceiveWindowBytes !== undefined ? { maxReceiveWindowBytes: options.maxReceiveWindowBytes } : {}),
      },
    });
    const client = new Client(conn, options.clock ?? systemClock);
    await conn.start({
      push: () => undefined,
      // Every reconnect, resumed or not, watches the open handles again with replay: a dropped
      // connection took their stream listeners, and a session resumed on another coordinator
      // (ATP_SPEC §11.8) has none of its watches there. The handle drops what it already had.
      up: () => client.#rewatch(),
      down: () => undefined,
      closed: (err) => client.#failAll(err ?? new AtpError('ATP_ERR_UNAVAILABLE', 'the client is closed')),
    });
    return client;
  }

  /** Submit one artifact; resolves once the coordinator has made it durable (ACCEPTED). */
  submit(spec: SubmitSpec): Promise<ArtifactHandle> {
    return new Promise<ArtifactHandle>((resolve, reject) => this.#submit(spec, { ok: (_, h) => resolve(h), fail: (_, e) => reject(e) }, 0));
  }

  /**
   * Submit many artifacts pipelined in as few writes as possible; resolves in order once all are
   * accepted, or rejects with the first error (the others still go on). One promise for the batch.
   */
  submitMany(specs: readonly SubmitSpec[]): Promise<ArtifactHandle[]> {
    if (specs.length === 0) return Promise.resolve([]);
    return new Promise<ArtifactHandle[]>((resolve, reject) => {
      const sink = new BatchSink(specs.length, resolve, reject);
      for (let i = 0; i < specs.length; i++) this.#submit(specs[i]!, sink, i);
    });
  }

  #submit(spec: SubmitSpec, sink: SubmitSink, i: number): void {
    const payload =
      spec.payload === undefined ? new Uint8Array(0) : typeof spec.payload === 'string' ? enc.encode(spec.payload) : spec.payload;
    this.#unanswered++;
    // A small payload is hashed here; a large one across event-loop turns, and submissions still
    // leave in the order made.
    if (spec.id === undefined) {
      const digest = this.#digests.now(this, spec.kind, payload);
      if (digest !== undefined) return this.#send(spec, payload, digest, sink, i);
    } else if (this.#digests.pending === 0) return this.#send(spec, payload, undefined, sink, i);
    this.#digests.run(this, spec.kind, spec.id === undefined ? payload : undefined, (digest) => this.#send(spec, payload, digest, sink, i));
  }

  #send(spec: SubmitSpec, payload: Uint8Array, digest: Uint8Array | undefined, sink: SubmitSink, i: number): void {
    try {
      this.#submitWith(spec, payload, digest, sink, i);
    } catch (err) {
      this.#answered();
      sink.fail(i, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A submit was answered (or failed before it was sent): one fewer for close() to wait for. */
  #answered(): void {
    if (--this.#unanswered === 0 && this.#allAnswered !== undefined) {
      const done = this.#allAnswered;
      this.#allAnswered = undefined;
      done();
    }
  }

  /** Send the SUBMIT and give its answer to `sink` as entry `i`. */
  #submitWith(spec: SubmitSpec, payload: Uint8Array, digest: Uint8Array | undefined, sink: SubmitSink, i: number): void {
    const idBytes = spec.id !== undefined ? fromHex(spec.id) : defaultArtifactId(digest!);
    if (idBytes.length !== 16) {
      this.#answered();
      return sink.fail(i, new RangeError(`artifact id must be 32 hex characters, got ${JSON.stringify(spec.id)}`));
    }
    const id = toHex(idBytes);
    let latePolicy: number = LatePolicy.REJECT;
    let quorumK = 0;
    let quorumN = 0;
    if (spec.latePolicy === 'accept-if-unresolved') latePolicy = LatePolicy.ACCEPT_IF_UNRESOLVED;
    else if (typeof spec.latePolicy === 'object') {
      latePolicy = LatePolicy.QUORUM;
      [quorumK, quorumN] = spec.latePolicy.quorum;
    }
    const follow = spec.follow ?? 'result';
    const conn = this.connection;
    const stream = conn.nextStream();
    const handle = this.#handles.get(id) ?? new ArtifactHandle(this, id);
    const msg: MessageOf<'SUBMIT'> = {
      type: 'SUBMIT',
      stream,
      artifactId: idBytes,
      kind: spec.kind,
      priority: spec.priority ?? 0,
      latePolicy,
      quorumK,
      quorumN,
      leaseTtlMs: spec.leaseTtlMs ?? 0,
      maxDurationMs: spec.maxDurationMs ?? 0,
      deadlineMs: spec.deadlineMs ?? 0,
      maxAttempts: spec.maxAttempts ?? 0,
      watch: follow === 'none' ? 0 : follow === 'all' ? 7 : 1,
      parentId: spec.parentId !== undefined ? fromHex(spec.parentId) : ZERO_ID,
      tags: spec.tags ?? [],
      payload,
    };
    let accepted = false;
    conn.listen(stream, (m) => {
      switch (m.type) {
        case 'ACCEPTED':
          accepted = true;
          handle.accepted(toHex(m.digest.value), ARTIFACT_STATE_NAMES[m.state] ?? 'UNKNOWN', m.duplicate === 1);
          if (follow === 'none') conn.unlisten(stream);
          else {
            this.#handles.set(id, handle);
            handle.watchStream = stream;
          }
          this.#answered();
          sink.ok(i, handle);
          return;
        case 'ERROR': {
          conn.unlisten(stream);
          const err = new AtpError(codeOfWire(m.code), m.message, { wireCode: m.code, artifactId: id });
          if (!accepted) {
            this.#answered();
            return sink.fail(i, err);
          }
          // A lost connection: the handle is watched again after the reconnect (#rewatch).
          if (err.code === 'ATP_ERR_UNAVAILABLE') return;
          // After ACCEPTED, an ERROR ends what the SUBMIT's watch follows: a RESULT larger than this
          // client accepts (ATP_ERR_PAYLOAD_TOO_LARGE), say. handle.result() rejects with it.
          if (this.#handles.get(id) === handle) this.#handles.delete(id);
          handle.fail(err);
          return;
        }
        default:
          this.#event(handle, m, stream);
      }
    });
    let sent: boolean;
    try {
      sent = conn.send(msg);
    } catch (err) {
      // ATP_ERR_PAYLOAD_TOO_LARGE: more than the coordinator accepts; nothing was sent.
      conn.unlisten(stream);
      this.#answered();
      sink.fail(i, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!sent) {
      conn.unlisten(stream);
      this.#answered();
      sink.fail(i, new AtpError('ATP_ERR_UNAVAILABLE', 'not connected to the coordinator'));
    }
  }

  #event(handle: ArtifactHandle, m: Message, stream: number): void {
    switch (m.type) {
      case 'STATE':
        handle.push({ type: 'state', state: ARTIFACT_STATE_NAMES[m.state] ?? 'UNKNOWN', epoch: m.epoch, message: m.message });
        return;
      case 'PARTIAL_RESULT':
        handle.pushPartial(m.seq, m.epoch, ownedBytes(m.data));
        return;
      case 'RESULT': {
        this.connection.unlisten(stream);
        this.#handles.delete(handle.id);
        handle.settle(outcomeOf(m));
        return;
      }
      default:
        return;
    }
  }

  /** After a reconnect with a new session, watches are opened again with replay. */
  #rewatch(): void {
    for (const h of this.#handles.values()) {
      this.#watchHandle(h);
      if (h.digest !== '') this.#checkKnown(h);
    }
  }

  /**
   * After a reconnect: an artifact this client saw accepted that the coordinator no longer knows was
   * forgotten after its retention (ATP_SPEC §3.11), or lost with a coordinator that keeps nothing
   * across a restart. Its result will never come, so result() rejects instead of waiting for ever.
   */
  #checkKnown(h: ArtifactHandle): void {
    this.query(h.id).then(
      (st) => {
        if (st.state !== 'UNKNOWN' || this.#handles.get(h.id) !== h) return;
        this.#handles.delete(h.id);
        const conn = this.connection;
        conn.unlisten(h.watchStream);
        conn.send({ type: 'UNWATCH', stream: conn.nextStream(), watchStream: h.watchStream });
        h.fail(
          new AtpError(
            'ATP_ERR_NOT_FOUND',
            `the coordinator no longer knows artifact ${h.id}: forgotten after its retention, or lost with a coordinator that keeps nothing across a restart`,
            { artifactId: h.id },
          ),
        );
      },
      // Lost again meanwhile: the next reconnect asks again.
      () => undefined,
    );
  }

  #watchHandle(h: ArtifactHandle): void {
    const conn = this.connection;
    const stream = conn.nextStream();
    h.watchStream = stream;
    conn.listen(stream, (m) => this.#event(h, m, stream));
    conn.send({
      type: 'WATCH',
      stream,
      scope: WatchScope.ARTIFACT,
      flags: WatchFlags.PARTIALS | WatchFlags.REPLAY,
      artifactId: fromHex(h.id),
      tag: '',
    });
  }

  /** A handle for an artifact submitted elsewhere (follows it with WATCH and replay). */
  follow(id: string): ArtifactHandle {
    const existing = this.#handles.get(id);
    if (existing !== undefined) return existing;
    const h = new ArtifactHandle(this, id);
    this.#handles.set(id, h);
    this.#watchHandle(h);
    return h;
  }

  /** ATP_SPEC §8: cancel an artifact, or its whole subtree (present and future). */
  async cancel(id: string, options: { subtree?: boolean; reason?: string } = {}): Promise<CancelSummary> {
    const conn = this.connection;
    const m = await conn.request(
      {
        type: 'CANCEL',
        stream: conn.nextStream(),
        artifactId: fromHex(id),
        subtree: options.subtree ? 1 : 0,
        reason: options.reason ?? '',
      },
      (x): x is MessageOf<'CANCEL_RESULT'> => x.type === 'CANCEL_RESULT',
    );
    return { cancelled: m.cancelled, alreadyFinished: m.alreadyFinished, stopping: m.stopping };
  }

  /** ATP_SPEC §7.6: the current state of an artifact (state UNKNOWN if the coordinator has none). */
  async query(id: string): Promise<ArtifactStatus> {
    const conn = this.connection;
    const m = await conn.request(
      { type: 'QUERY', stream: conn.nextStream(), artifactId: fromHex(id), withResult: 0 },
      (x): x is MessageOf<'STATE'> => x.type === 'STATE',
    );
    return {
      id,
      state: ARTIFACT_STATE_NAMES[m.state] ?? 'UNKNOWN',
      attempts: m.attempts,
      epoch: m.epoch,
      code: m.code === 0 ? null : codeOfWire(m.code),
      lastPartialSeq: m.lastPartialSeq,
      kind: m.kind,
      message: m.message,
    };
  }

  /** The outcome of a terminal artifact, or undefined while it is not terminal. */
  async outcome(id: string): Promise<ArtifactOutcome | undefined> {
    const conn = this.connection;
    const stream = conn.nextStream();
    return new Promise<ArtifactOutcome | undefined>((resolve, reject) => {
      conn.listen(stream, (m) => {
        if (m.type === 'ERROR') {
          conn.unlisten(stream);
          reject(new AtpError(codeOfWire(m.code), m.message));
        } else if (m.type === 'STATE' && !isTerminalState(m.state)) {
          conn.unlisten(stream);
          resolve(undefined);
        } else if (m.type === 'RESULT') {
          conn.unlisten(stream);
          resolve(outcomeOf(m));
        }
      });
      conn.send({ type: 'QUERY', stream, artifactId: fromHex(id), withResult: 1 });
    });
  }

  /**
   * ATP_SPEC §7.1: follow every artifact of a subtree or a tag. Events arrive on the iterator until
   * `stop()`.
   */
  watch(target: { subtree: string } | { tag: string } | { artifact: string }, options: { partials?: boolean; replay?: boolean } = {}) {
    const conn = this.connection;
    const stream = conn.nextStream();
    const queue: Array<ArtifactEvent & { id: string }> = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    conn.listen(stream, (m) => {
      let ev: (ArtifactEvent & { id: string }) | undefined;
      if (m.type === 'STATE')
        ev = {
          id: toHex(m.artifactId),
          type: 'state',
          state: ARTIFACT_STATE_NAMES[m.state] ?? 'UNKNOWN',
          epoch: m.epoch,
          message: m.message,
        };
      else if (m.type === 'PARTIAL_RESULT')
        ev = { id: toHex(m.artifactId), type: 'partial', seq: m.seq, epoch: m.epoch, data: ownedBytes(m.data) };
      else if (m.type === 'RESULT')
        ev = {
          id: toHex(m.artifactId),
          type: 'result',
          outcome: outcomeOf(m),
        };
      if (ev !== undefined) {
        queue.push(ev);
        wake?.();
      }
    });
    const scope = 'subtree' in target ? WatchScope.SUBTREE : 'tag' in target ? WatchScope.TAG : WatchScope.ARTIFACT;
    const idHex = 'subtree' in target ? target.subtree : 'artifact' in target ? target.artifact : undefined;
    conn.send({
      type: 'WATCH',
      stream,
      scope,
      flags: (options.partials ? WatchFlags.PARTIALS : 0) | (options.replay ? WatchFlags.REPLAY : 0),
      artifactId: idHex === undefined ? new Uint8Array(16) : fromHex(idHex),
      tag: 'tag' in target ? target.tag : '',
    });
    const stop = () => {
      if (stopped) return;
      stopped = true;
      conn.unlisten(stream);
      conn.send({ type: 'UNWATCH', stream: conn.nextStream(), watchStream: stream });
      wake?.();
    };
    const events = async function* () {
      while (!stopped) {
        while (queue.length > 0) yield queue.shift()!;
        if (stopped) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    };
    return { events: events(), stop };
  }

  #failAll(err: AtpError): void {
    for (const h of this.#handles.values()) h.fail(err);
    this.#handles.clear();
  }

  /**
   * Leave (GOAWAY) and close. Submits already made are let finish first — sent whole, however large,
   * and answered with ACCEPTED or an ERROR — for up to `timeoutMs` (default 10 s); those still
   * unanswered then reject with ATP_ERR_UNAVAILABLE. Handles still waiting for results reject with
   * ATP_ERR_UNAVAILABLE ("the client is closed").
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (this.#unanswered > 0 && timeoutMs > 0) {
      let timer: Timer | undefined;
      await new Promise<void>((resolve) => {
        this.#allAnswered = resolve;
        timer = this.#clock.setTimer(timeoutMs, resolve);
      });
      this.#allAnswered = undefined;
      timer?.cancel();
    }
    await this.connection.close();
  }
}

/** Where the answers of submits go: entry `i` of a submit or of a batch. */
interface SubmitSink {
  ok(i: number, h: ArtifactHandle): void;
  fail(i: number, err: Error): void;
}

/** The answers of a submitMany() batch, settling one promise: in order, or the first error. */
class BatchSink implements SubmitSink {
  readonly #out: ArtifactHandle[];
  #left: number;
  #failed = false;
  constructor(
    n: number,
    readonly resolve: (hs: ArtifactHandle[]) => void,
    readonly reject: (err: Error) => void,
  ) {
    this.#out = new Array<ArtifactHandle>(n);
    this.#left = n;
  }
  ok(i: number, h: ArtifactHandle): void {
    this.#out[i] = h;
    if (--this.#left === 0 && !this.#failed) this.resolve(this.#out);
  }
  fail(_i: number, err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.reject(err);
  }
}

/** The outcome a RESULT carries (bytes copied out of the frame). */
function outcomeOf(m: MessageOf<'RESULT'>): ArtifactOutcome {
  return {
    state: ARTIFACT_STATE_NAMES[m.state] ?? 'UNKNOWN',
    code: m.code === 0 ? null : codeOfWire(m.code),
    message: m.message,
    result: ownedBytes(m.result),
    checkpoint: ownedBytes(m.checkpoint),
    digest: m.digest.alg === 0 ? null : toHex(m.digest.value),
  };
}

/** Terminal state names. */
export const TERMINAL_STATES = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'] as const;
