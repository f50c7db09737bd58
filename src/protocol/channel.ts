/**
 * A Channel speaks ATP frames over one Transport: the preface, the incremental decoder, batched
 * writes (every frame produced while one callback runs leaves in one write), idle and flood
 * budgets, and the fatal-error path (GOAWAY with a registered code, then close). Both the
 * coordinator and the SDKs use it.
 */
import { AtpError, ErrorClass, classOfWire, wireCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Clock, Timer } from '../internal/clock.js';
import type { Transport } from '../transport/transport.js';
import { FrameDecoder, FrameEncoder, Limits, PREFACE, checkPreface, decodeBody, encodeFrame, isGrease } from '../wire/index.js';
import type { Message } from '../wire/index.js';

/** Which end of the connection this channel is. */
export type ChannelSide = 'client' | 'coordinator';

/** Options of a channel. */
export interface ChannelOptions {
  side: ChannelSide;
  clock: Clock;
  /** Close when no complete frame arrived for this long; 0 disables (set after the handshake). */
  idleTimeoutMs?: number;
  /** Unknown frame types tolerated per second before ATP_ERR_ENHANCE_YOUR_CALM. */
  maxUnknownPerSecond?: number;
  /** Outbound bytes buffered above which the peer is a slow consumer and is disconnected. */
  maxBufferedBytes?: number;
}

/** What a channel reports to its owner. */
export interface ChannelEvents {
  message(msg: Message): void;
  /** The channel closed; `error` says why when it was not a clean close. Called once. */
  closed(error: AtpError | undefined): void;
}

const FLUSH_BYTES = 256 * 1024;

/** One ATP connection. */
export class Channel {
  readonly transport: Transport;
  readonly #side: ChannelSide;
  readonly #clock: Clock;
  readonly #decoder = new FrameDecoder(Limits.PRE_WELCOME_MAX_FRAME_BYTES);
  readonly #encoder = new FrameEncoder();
  readonly #maxUnknown: number;
  readonly #maxBuffered: number;
  #events: ChannelEvents | undefined;
  #prefaceIn: Uint8Array | undefined;
  #flushScheduled = false;
  #closed = false;
  #closing = false;
  #idleMs = 0;
  #idleTimer: Timer | undefined;
  #lastFrameAt = 0;
  #unknownWindowStart = 0;
  #unknownCount = 0;
  #framesIn = 0;
  #framesOut = 0;

  constructor(transport: Transport, options: ChannelOptions) {
    this.transport = transport;
    this.#side = options.side;
    this.#clock = options.clock;
    this.#maxUnknown = options.maxUnknownPerSecond ?? 1000;
    this.#maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.#prefaceIn = transport.framed ? undefined : new Uint8Array(0);
    this.#lastFrameAt = this.#clock.now();
    if (options.idleTimeoutMs) this.setIdleTimeout(options.idleTimeoutMs);
  }

  /** Attach the owner and start reading. The client side sends its preface at once. */
  start(events: ChannelEvents): void {
    this.#events = events;
    if (this.#side === 'client' && !this.transport.framed) this.transport.write(PREFACE);
    this.transport.setHandlers({
      data: (chunk) => this.#onData(chunk),
      drain: () => this.transport.resume(),
      close: (err) => this.#onTransportClose(err),
    });
  }

  /** Frames received and sent, for diagnostics. */
  get stats(): { framesIn: number; framesOut: number; bufferedBytes: number } {
    return {
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      bufferedBytes: this.transport.bufferedBytes + this.#encoder.pendingBytes,
    };
  }

  /** True once the channel is closed or closing. */
  get closed(): boolean {
    return this.#closed || this.#closing;
  }

  /** ATP_WIRE §8: raise the inbound frame limit once WELCOME is exchanged. */
  setMaxFrameBytes(n: number): void {
    this.#decoder.maxFrameBytes = n;
  }

  /** ATP_WIRE §10: close with ATP_ERR_IDLE_TIMEOUT when no complete frame arrives for `ms`. */
  setIdleTimeout(ms: number): void {
    this.#idleMs = ms;
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    if (ms > 0) this.#armIdle(ms);
  }

  #armIdle(delay: number): void {
    this.#idleTimer = this.#clock.setTimer(delay, () => {
      if (this.#closed) return;
      const quiet = this.#clock.now() - this.#lastFrameAt;
      if (quiet >= this.#idleMs) this.fail(new AtpError('ATP_ERR_IDLE_TIMEOUT', `no frame received for ${Math.round(quiet)} ms`));
      else this.#armIdle(this.#idleMs - quiet);
    });
  }

  /**
   * Queue a message. Frames queued while one callback runs (one read chunk with everything it
   * causes, promise continuations included) leave in one write, right after it: batching without
   * holding a frame back for a whole event-loop turn.
   */
  send(msg: Message): void {
    if (this.#closed) return;
    this.#framesOut++;
    if (this.transport.framed) {
      // ATP_WIRE §9.3: one frame per WebSocket message.
      this.#write(encodeFrame(msg));
      return;
    }
    this.#encoder.push(msg);
    if (this.#encoder.pendingBytes >= FLUSH_BYTES) this.flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      scheduleFlush(this, msg.type === 'LEASE' || msg.type === 'REVOKE');
    }
  }

  /** Write what is queued now. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    const bytes = this.#encoder.take();
    if (bytes !== undefined) this.#write(bytes);
  }

  #write(bytes: Uint8Array): void {
    if (!this.transport.write(bytes)) {
      // Backpressure: stop reading from a peer that does not read what we send (ATP_WIRE §8).
      this.transport.pause();
      if (this.transport.bufferedBytes > this.#maxBuffered) {
        this.fail(new AtpError('ATP_ERR_ENHANCE_YOUR_CALM', `slow consumer: ${this.transport.bufferedBytes} bytes unread`));
      }
    }
  }

  /** Send an ERROR answer on a request's stream (not fatal). */
  sendError(stream: number, code: ErrorCode, message: string, offendingType = 0, subject?: Uint8Array): void {
    this.send({
      type: 'ERROR',
      stream,
      code: wireCodeOf(code),
      offendingType,
      subject: subject ?? new Uint8Array(16),
      message: truncate(message),
    });
  }

  /** Close cleanly: GOAWAY(code, mode 0) then end. */
  close(code: ErrorCode = 'ATP_ERR_NONE', reason = ''): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    this.send({ type: 'GOAWAY', stream: 0, code: wireCodeOf(code), mode: 0, deadlineMs: 0, reason: truncate(reason) });
    this.flush();
    const wire = wireCodeOf(code);
    this.transport.end(
      this.transport.framed && classOfWire(wire) === ErrorClass.CONNECTION && wire !== 0 ? 4000 + (wire & 0xff) : 1000,
      reason.slice(0, 100),
    );
    this.#finish(code === 'ATP_ERR_NONE' ? undefined : new AtpError(code, reason));
  }

  /** Close because of a fatal error: GOAWAY with its code, then end (ATP_WIRE §3.4). */
  fail(err: AtpError): void {
    if (this.#closed || this.#closing) return;
    this.close(err.code, err.message);
  }

  /** Drop the connection without a GOAWAY (tests of abrupt leave use this). */
  destroy(): void {
    if (this.#closed) return;
    this.transport.destroy();
    this.#finish(new AtpError('ATP_ERR_INTERNAL', 'connection destroyed'));
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closed || this.#closing) return;
    try {
      if (this.#prefaceIn !== undefined) {
        const buf = concat(this.#prefaceIn, chunk);
        const check = checkPreface(buf);
        if (!check.ok) {
          if (check.needMore) {
            this.#prefaceIn = buf;
            return;
          }
          if (this.#side === 'coordinator' && check.error.code === 'ATP_ERR_UNSUPPORTED_VERSION') this.transport.write(PREFACE);
          // ATP_WIRE §2: a wrong protocol is not answered in ATP; the connection is closed.
          this.transport.end();
          this.#finish(check.error);
          return;
        }
        this.#prefaceIn = undefined;
        if (this.#side === 'coordinator') this.transport.write(PREFACE);
        chunk = buf.subarray(PREFACE.length);
        if (chunk.length === 0) return;
      }
      const framedBefore = this.#framesIn;
      this.#decoder.push(chunk, (f) => {
        this.#framesIn++;
        this.#lastFrameAt = this.#clock.now();
        const msg = decodeBody(f.code, f.stream, f.payload);
        if (msg === undefined) {
          this.#countUnknown(f.code);
          return;
        }
        if (this.#closed || this.#closing) return;
        this.#events?.message(msg);
      });
      if (this.transport.framed && (this.#framesIn - framedBefore !== 1 || this.#decoder.bufferedBytes !== 0)) {
        throw new AtpError('ATP_ERR_FRAME_TOO_LARGE', 'a WebSocket message must carry exactly one ATP frame');
      }
    } catch (err) {
      this.fail(err instanceof AtpError ? err : new AtpError('ATP_ERR_INTERNAL', `internal error: ${String(err)}`));
      if (!(err instanceof AtpError)) throw err;
    }
  }

  #countUnknown(code: number): void {
    const now = this.#clock.now();
    if (now - this.#unknownWindowStart >= 1000) {
      this.#unknownWindowStart = now;
      this.#unknownCount = 0;
    }
    if (++this.#unknownCount > this.#maxUnknown) {
      throw new AtpError(
        'ATP_ERR_ENHANCE_YOUR_CALM',
        `more than ${this.#maxUnknown} unknown frames per second (last type 0x${code.toString(16)}${isGrease(code) ? ', GREASE' : ''})`,
      );
    }
  }

  #onTransportClose(err: Error | undefined): void {
    this.#finish(err === undefined ? undefined : new AtpError('ATP_ERR_INTERNAL', `connection lost: ${err.message}`));
  }

  #finish(error: AtpError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#idleTimer?.cancel();
    this.#events?.closed(error);
  }
}

/*
 * One flush pass for every channel with queued frames, run right after the current callback and
 * its promise continuations (process.nextTick). Channels that carry a LEASE or a REVOKE are written
 * first: a frame that starts or stops work on a worker does not wait behind answers to producers.
 */
let urgentFlushes: Channel[] = [];
let flushes: Channel[] = [];
let flushPassScheduled = false;

function scheduleFlush(ch: Channel, urgent: boolean): void {
  (urgent ? urgentFlushes : flushes).push(ch);
  if (!flushPassScheduled) {
    flushPassScheduled = true;
    process.nextTick(flushPass);
  }
}

function flushPass(): void {
  flushPassScheduled = false;
  const first = urgentFlushes;
  const then = flushes;
  urgentFlushes = [];
  flushes = [];
  for (const ch of first) ch.flush();
  for (const ch of then) ch.flush();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Cut a reason to the 1024-byte wire limit (on a character boundary, conservatively). */
export function truncate(s: string, maxBytes = Limits.MAX_REASON_BYTES): string {
  if (s.length * 3 <= maxBytes) return s;
  let out = s.slice(0, maxBytes);
  while (new TextEncoder().encode(out).length > maxBytes) out = out.slice(0, -1);
  return out;
}
