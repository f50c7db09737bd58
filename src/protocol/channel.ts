/**
 * A Channel speaks ATP frames over one Transport: the preface, the incremental decoder, batched
 * writes (every frame produced while one callback runs leaves in one write), fragmented messages
 * with their flow-control window and a control-first send queue (ATP_WIRE §3.7–§3.9), idle and
 * flood budgets, and the fatal-error path (GOAWAY with a registered code, then close). Both the
 * coordinator and the SDKs use it.
 *
 * Sending has two lanes. Small messages are encoded into one batch buffer and written as soon as
 * the current callback is done. A message whose body is larger than BULK_ABOVE_BYTES is bulk: it
 * joins a FIFO queue and leaves as fragments of at most FRAGMENT_BYTES, each handed to the
 * transport only while the transport holds less than BULK_LOW_WATERMARK bytes and the peer's
 * window allows it. A small message is written ahead of the bulk queue unless it is related to a
 * message in it (ordering.ts); then it waits in the queue, in order. So a PING, a RENEW or a
 * CANCEL waits behind at most one fragment, the low watermark and the peer's window, never behind
 * a whole large payload.
 */
import { AtpError, ErrorClass, classOfWire, wireCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Clock, Timer } from '../internal/clock.js';
import type { Transport } from '../transport/transport.js';
import {
  FrameDecoder,
  FrameEncoder,
  HEADER_BYTES,
  Limits,
  MessageFragmenter,
  PREFACE,
  bodyBytes,
  checkPreface,
  decodeBody,
  encodeFrame,
  isGrease,
} from '../wire/index.js';
import type { FragmentInfo, Message, MessageOf } from '../wire/index.js';
import type { MessageBudget } from './message-budget.js';
import { isBarrier, orderingKeys } from './ordering.js';

/** When a channel's queued frames are to be written (see scheduleFlush at the end of this file). */
const enum FlushAt {
  NONE,
  TURN_END,
  NOW,
}

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
  /**
   * The largest message body this side accepts in fragments, advertised in HELLO or WELCOME as
   * `maxMessageBytes` when the owner does not set it (ATP_WIRE §3.7). Default 256 MiB.
   */
  maxMessageBytes?: number;
  /** Payload bytes of each fragment sent (capped by the peer's maxFrameBytes). Default 64 KiB. */
  fragmentBytes?: number;
  /** The flow-control window this side keeps open for the peer's fragments at first (ATP_WIRE §3.8). Default 128 KiB. */
  receiveWindowBytes?: number;
  /**
   * The largest the window may grow to when the link's bandwidth-delay product needs more than
   * receiveWindowBytes (a long round trip), measured with PINGs. Default: 16 MiB on the coordinator
   * side; on the client side the window stays fixed unless this is set, because a client's PINGs
   * count against the coordinator's budget of 10 a second (ATP_SPEC §13.5).
   */
  maxReceiveWindowBytes?: number;
  /**
   * Memory shared with other channels for the bodies of fragmented messages being received
   * (ATP-4.5-10): a message that does not fit waits, with this connection's window closed.
   */
  budget?: MessageBudget;
  /**
   * The least average rate at which a fragmented message that holds memory of the budget must
   * arrive while another message waits for memory, once `graceMs` have passed since it got that
   * memory (ATP-4.8-7). Unset: no minimum.
   */
  minMessageRate?: MessageRate;
}

/** A minimum data rate and the time before it applies. */
export interface MessageRate {
  bytesPerSecond: number;
  graceMs: number;
}

/** What a channel reports to its owner. */
export interface ChannelEvents {
  message(msg: Message): void;
  /** The channel closed; `error` says why when it was not a clean close. Called once. */
  closed(error: AtpError | undefined): void;
}

const FLUSH_BYTES = 256 * 1024;
/** A message whose body is larger than this is bulk: fragmented, flow-controlled, sent behind small frames. */
const BULK_ABOVE_BYTES = 16 * 1024;
/** Default payload of one fragment: at most the smallest maxFrameBytes a peer may advertise. */
const FRAGMENT_BYTES = 64 * 1024;
/** Bulk frames are handed to the transport only while it holds fewer bytes than this. */
const BULK_LOW_WATERMARK = 128 * 1024;
/**
 * Default window kept open for the peer's fragments (the protocol starts every window at 64 KiB).
 * It bounds what a control frame can wait behind in the peer's direction to about the time this
 * side takes to read this many bytes (1–2 ms here); and it bounds a large payload's rate to one
 * window per round trip (128 KiB / 20 ms = 6.5 MB/s on a WAN link), which is why a window may grow
 * to the link (maxReceiveWindowBytes, #measure below).
 */
const RECEIVE_WINDOW_BYTES = 128 * 1024;
/** Default ceiling of a window grown to the link (ATP_WIRE §3.8). */
const MAX_RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;
/** At most one round-trip probe (a PING) per this many ms. */
const PROBE_EVERY_MS = 250;
/** The window grows only on a link whose least round trip, over this many probes at least, is this long. */
const MIN_GROWTH_RTT_MS = 4;
const PROBES_BEFORE_GROWTH = 3;
/** While the window allows less than this, a fragment is not cut smaller: wait for WINDOW instead. */
const MIN_FRAGMENT_BYTES = 16 * 1024;

/** One message of the bulk queue: a large message being fragmented, or a small one held in order behind it. */
interface BulkEntry {
  fragmenter: MessageFragmenter | undefined;
  frame: Uint8Array | undefined;
  keys: string[];
}

/** One ATP connection. */
export class Channel {
  readonly transport: Transport;
  readonly #side: ChannelSide;
  readonly #clock: Clock;
  readonly #decoder = new FrameDecoder(Limits.PRE_WELCOME_MAX_FRAME_BYTES, 0);
  readonly #encoder = new FrameEncoder();
  readonly #maxUnknown: number;
  readonly #maxBuffered: number;
  readonly #maxMessageBytes: number;
  readonly #fragmentBytes: number;
  readonly #maxWindowBytes: number;
  /** The window this side keeps open: receiveWindowBytes, grown to the link by round-trip probes. */
  #windowSize: number;
  /** The probe in flight (a PING sent at `at`, fragment bytes received since), and the least round trip seen. */
  #probe: { at: number; bytes: number } | undefined;
  #lastProbeAt = -Infinity;
  #minRttMs = Infinity;
  #probes = 0;
  /** The rate (bytes per ms) measured when the window last grew. */
  #rateAtGrowth = 0;
  readonly #probeNonce = (Math.random() * 0xffffffff) >>> 0;
  /** The peer's limits: 16 KiB until WELCOME, then what it advertised (ATP_WIRE §3.2, §3.7). */
  #peerMaxFrameBytes: number = Limits.PRE_WELCOME_MAX_FRAME_BYTES;
  #peerMaxMessageBytes: number = Limits.PRE_WELCOME_MAX_FRAME_BYTES;
  /** HELLO's limits, kept until WELCOME makes them the client's (coordinator: the peer's) limits. */
  #hello: { maxFrameBytes: number; maxMessageBytes: number } | undefined;
  #agreed = false;
  /** Fragment bytes we may still send, and the peer may still send us (ATP_WIRE §3.8). */
  #sendWindow: number = Limits.INITIAL_FRAGMENT_WINDOW;
  #receiveWindow: number = Limits.INITIAL_FRAGMENT_WINDOW;
  #receivedUnreturned = 0;
  #windowDue = false;
  readonly #budget: MessageBudget | undefined;
  /** Budget bytes held for the message being received, and the wait for them when it did not fit. */
  #reserved = 0;
  #cancelWait: (() => void) | undefined;
  readonly #minRate: MessageRate | undefined;
  /** When the message in progress got its memory, and how many of its bytes had arrived by then. */
  #reservedAt = 0;
  #bytesAtReserve = 0;
  #rateTimer: Timer | undefined;
  #bulk: BulkEntry[] = [];
  /** Fragment buffers to reuse, and those handed to the transport (in order), back in the pool once written. */
  readonly #fragmentPool: Uint8Array[] = [];
  readonly #fragmentsInFlight: Uint8Array[] = [];
  /** Ordering keys of the messages in #bulk, with counts. */
  readonly #bulkKeys = new Map<string, number>();
  #pumping = false;
  #events: ChannelEvents | undefined;
  #prefaceIn: Uint8Array | undefined;
  #flushScheduled: FlushAt = FlushAt.NONE;
  #closed = false;
  #closing = false;
  #idleMs = 0;
  #idleTimer: Timer | undefined;
  #lastFrameAt = 0;
  #lastFragmentAt = 0;
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
    this.#maxMessageBytes = options.maxMessageBytes ?? Limits.DEFAULT_MAX_MESSAGE_BYTES;
    this.#fragmentBytes = options.fragmentBytes ?? FRAGMENT_BYTES;
    this.#windowSize = Math.max(options.receiveWindowBytes ?? RECEIVE_WINDOW_BYTES, Limits.INITIAL_FRAGMENT_WINDOW);
    const maxWindow = options.maxReceiveWindowBytes ?? (options.side === 'coordinator' ? MAX_RECEIVE_WINDOW_BYTES : 0);
    this.#maxWindowBytes = Math.min(Math.max(maxWindow, this.#windowSize), 1 << 30);
    if (!Number.isSafeInteger(this.#fragmentBytes) || this.#fragmentBytes < 8)
      throw new RangeError(`fragmentBytes must be an integer of at least 8, got ${this.#fragmentBytes}`);
    this.#prefaceIn = transport.framed ? undefined : new Uint8Array(0);
    this.#budget = options.budget;
    this.#minRate = options.minMessageRate;
    if (this.#minRate !== undefined && !(this.#minRate.bytesPerSecond > 0 && this.#minRate.graceMs > 0)) {
      throw new RangeError(`minMessageRate needs a positive bytesPerSecond and graceMs, got ${JSON.stringify(this.#minRate)}`);
    }
    if (this.#budget !== undefined) this.#decoder.allocate = (total) => this.#allocate(total);
    this.#lastFrameAt = this.#clock.now();
    if (options.idleTimeoutMs) this.setIdleTimeout(options.idleTimeoutMs);
  }

  /** Attach the owner and start reading. The client side sends its preface at once. */
  start(events: ChannelEvents): void {
    this.#events = events;
    if (this.#side === 'client' && !this.transport.framed) this.transport.write(PREFACE);
    this.transport.setHandlers({
      data: (chunk) => this.#onData(chunk),
      drain: () => {
        this.transport.resume();
        this.#pump();
      },
      close: (err) => this.#onTransportClose(err),
    });
  }

  /** Frames received and sent (fragments counted one by one), for diagnostics. */
  get stats(): { framesIn: number; framesOut: number; bufferedBytes: number; bulkQueued: number; receiveWindowBytes: number } {
    return {
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      bufferedBytes: this.transport.bufferedBytes + this.#encoder.pendingBytes,
      bulkQueued: this.#bulk.length,
      receiveWindowBytes: this.#windowSize,
    };
  }

  /** The largest message body the peer accepts: send() refuses a larger one (ATP_WIRE §3.7). */
  get peerMaxMessageBytes(): number {
    return this.#peerMaxMessageBytes;
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
      const now = this.#clock.now();
      const quiet = now - this.#lastFrameAt;
      if (quiet >= this.#idleMs) return this.fail(new AtpError('ATP_ERR_IDLE_TIMEOUT', `no frame received for ${Math.round(quiet)} ms`));
      // ATP-4.8-6: a fragmented message that the peer may go on sending and does not, while other
      // frames keep the connection alive, holds its memory (ATP-4.5-10) for nothing.
      let next = this.#idleMs - quiet;
      if (this.#decoder.inMessage && !this.#decoder.waiting && this.#receiveWindow > 0) {
        const stalled = now - this.#lastFragmentAt;
        if (stalled >= this.#idleMs) {
          return this.fail(new AtpError('ATP_ERR_IDLE_TIMEOUT', `a fragmented message received no fragment for ${Math.round(stalled)} ms`));
        }
        next = Math.min(next, this.#idleMs - stalled);
      }
      this.#armIdle(next);
    });
  }

  /**
   * Queue a message. Frames queued while one callback runs (one read chunk with everything it
   * causes, promise continuations included) leave in one write, right after it: batching without
   * holding a frame back for a whole event-loop turn. A large message leaves in fragments behind
   * the small frames (see the top of this file); its `bytes` fields are read as the fragments are
   * made and must not be changed until it is answered.
   *
   * Throws ATP_ERR_PAYLOAD_TOO_LARGE, sending nothing, when the body exceeds what the peer
   * accepts (16 KiB before WELCOME, then its `maxMessageBytes`).
   */
  send(msg: Message): void {
    if (this.#closed) return;
    if (msg.type === 'HELLO' || msg.type === 'WELCOME') msg = this.#sendingHandshake(msg);
    const body = bodyBytes(msg);
    if (body > this.#peerMaxMessageBytes) {
      throw new AtpError(
        'ATP_ERR_PAYLOAD_TOO_LARGE',
        `a ${msg.type} of ${body} bytes exceeds the ${this.#peerMaxMessageBytes} bytes the peer accepts`,
        { type: msg.type, length: body },
      );
    }
    if (body > Math.min(BULK_ABOVE_BYTES, this.#peerMaxFrameBytes)) {
      this.#enqueueBulk({ fragmenter: new MessageFragmenter(msg), frame: undefined, keys: orderingKeys(msg) });
    } else if (this.#bulk.length > 0 && this.#mustWait(msg)) {
      // ATP_WIRE §3.9: related to a message still in the bulk queue, so it keeps its place behind it.
      this.#enqueueBulk({ fragmenter: undefined, frame: encodeFrame(msg), keys: isBarrier(msg) ? [] : orderingKeys(msg) });
    } else if (this.transport.framed) {
      // ATP_WIRE §9.3: one frame per WebSocket message.
      this.#framesOut++;
      this.#write(encodeFrame(msg));
      return;
    } else {
      this.#framesOut++;
      this.#encoder.push(msg, body);
      if (this.#encoder.pendingBytes >= FLUSH_BYTES) {
        this.flush();
        return;
      }
    }
    this.#scheduleFlush(msg);
  }

  /**
   * The one place that decides when queued frames are written (the flush passes at the end of this
   * file): right after the current callback for a frame that starts or stops work (LEASE and REVOKE
   * to a worker, SUBMIT and CANCEL from a producer), at the end of this event-loop turn's I/O for the
   * others, so that the answers caused by the reads of several connections leave in one write per
   * connection. A producer's submitMany() still leaves in one write: its SUBMITs are queued in one
   * callback.
   */
  #scheduleFlush(msg: Message): void {
    const t = msg.type;
    const urgent = t === 'LEASE' || t === 'REVOKE' || t === 'SUBMIT' || t === 'CANCEL';
    if (this.#flushScheduled === FlushAt.NOW || (this.#flushScheduled === FlushAt.TURN_END && !urgent)) return;
    this.#flushScheduled = urgent ? FlushAt.NOW : FlushAt.TURN_END;
    scheduleFlush(this, urgent);
  }

  /** Write what is queued now: the small frames in one write, then as much of the bulk queue as may go. */
  flush(): void {
    this.#flushScheduled = FlushAt.NONE;
    if (this.#closed) return;
    const bytes = this.#encoder.take();
    if (bytes !== undefined) this.#write(bytes);
    this.#pump();
  }

  #mustWait(msg: Message): boolean {
    if (isBarrier(msg)) return true;
    for (const k of orderingKeys(msg)) if (this.#bulkKeys.has(k)) return true;
    return false;
  }

  #enqueueBulk(e: BulkEntry): void {
    this.#bulk.push(e);
    for (const k of e.keys) this.#bulkKeys.set(k, (this.#bulkKeys.get(k) ?? 0) + 1);
  }

  #dequeueBulk(): void {
    const e = this.#bulk.shift()!;
    for (const k of e.keys) {
      const n = this.#bulkKeys.get(k)! - 1;
      if (n === 0) this.#bulkKeys.delete(k);
      else this.#bulkKeys.set(k, n);
    }
  }

  /**
   * Hand bulk frames to the transport while it holds less than the low watermark and the peer's
   * window allows (ATP_WIRE §3.8). Called after each flush, when written bytes leave the transport,
   * on drain and on WINDOW.
   */
  #pump(): void {
    if (this.#pumping || this.#closed || this.#closing) return;
    this.#pumping = true;
    try {
      while (this.#bulk.length > 0 && this.transport.bufferedBytes < BULK_LOW_WATERMARK && !this.#closed) {
        const e = this.#bulk[0]!;
        if (e.frame !== undefined) {
          this.#framesOut++;
          this.#dequeueBulk();
          this.#write(e.frame);
          continue;
        }
        const f = e.fragmenter!;
        let size = f.nextPayloadBytes(Math.min(this.#fragmentBytes, this.#peerMaxFrameBytes));
        if (size > this.#sendWindow) {
          const fits = f.nextPayloadBytes(this.#sendWindow);
          if (fits === 0 || fits < Math.min(MIN_FRAGMENT_BYTES, this.#fragmentBytes)) break;
          size = fits;
        }
        // Fragment buffers are reused once written: a large payload makes no garbage but its own.
        const buf = this.#fragmentPool.pop() ?? new Uint8Array(HEADER_BYTES + Math.min(this.#fragmentBytes, this.#peerMaxFrameBytes));
        const frame = f.next(size, buf);
        this.#sendWindow -= size;
        this.#framesOut++;
        if (f.done) this.#dequeueBulk();
        if (frame.buffer === buf.buffer) this.#fragmentsInFlight.push(buf);
        this.#write(frame, frame.buffer === buf.buffer ? this.#fragmentWritten : this.#written);
      }
    } finally {
      this.#pumping = false;
    }
  }

  readonly #written = (): void => {
    if (this.#bulk.length > 0) this.#pump();
  };

  readonly #fragmentWritten = (): void => {
    const buf = this.#fragmentsInFlight.shift();
    if (buf !== undefined && this.#fragmentPool.length < 8) this.#fragmentPool.push(buf);
    this.#written();
  };

  #write(bytes: Uint8Array, written = this.#written): void {
    if (!this.transport.write(bytes, written)) {
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

  /**
   * Close cleanly: GOAWAY(code, mode 0) then end. A large message still being fragmented is
   * abandoned (the peer discards its incomplete part); a caller that needs it delivered waits for
   * its answer first.
   */
  close(code: ErrorCode = 'ATP_ERR_NONE', reason = ''): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    this.#bulk = [];
    this.#bulkKeys.clear();
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
    // A plain Uint8Array view of the socket's Buffer: every field view the decoder cuts from it is
    // then a builtin subarray, not a Buffer made in JavaScript (a third of the decoder's garbage).
    if (chunk instanceof Buffer) chunk = new Uint8Array(chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.byteLength);
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
      const inMessageBefore = this.#decoder.inMessage;
      const heldBefore = this.#decoder.bufferedBytes;
      this.#decoder.push(
        chunk,
        (f) => {
          if (f.frames === 1) {
            this.#framesIn++;
            this.#lastFrameAt = this.#clock.now();
          } else this.#releaseBudget(); // a fragmented message is complete: its memory is no longer the budget's
          const msg = decodeBody(f.code, f.stream, f.payload);
          if (msg === undefined) {
            this.#countUnknown(f.code);
            return;
          }
          if (this.#closed || this.#closing) return;
          if (msg.type === 'WINDOW') return this.#onWindow(msg);
          if (msg.type === 'PONG' && msg.stream === 0 && msg.nonce === this.#probeNonce && this.#probe !== undefined) return this.#probed();
          if ((msg.type === 'HELLO' || msg.type === 'WELCOME') && !this.#receivingHandshake(msg)) return;
          this.#events?.message(msg);
        },
        this.#onFragment,
      );
      // Progress of a fragmented message: bytes of it arrived, whole fragments or not (ATP-4.8-6).
      if (this.#decoder.inMessage && (!inMessageBefore || this.#decoder.bufferedBytes !== heldBefore)) {
        this.#lastFragmentAt = this.#clock.now();
      }
      if (this.#windowDue && !this.#decoder.waiting) this.#giveWindow();
      if (this.transport.framed && (this.#framesIn - framedBefore !== 1 || this.#decoder.inFrame)) {
        throw new AtpError('ATP_ERR_FRAME_TOO_LARGE', 'a WebSocket message must carry exactly one ATP frame');
      }
    } catch (err) {
      this.fail(err instanceof AtpError ? err : new AtpError('ATP_ERR_INTERNAL', `internal error: ${String(err)}`));
      if (!(err instanceof AtpError)) throw err;
    }
  }

  /** A fragment arrived whole: count it against the window, give the window back as it is consumed (ATP_WIRE §3.8). */
  readonly #onFragment = (f: FragmentInfo): void => {
    this.#framesIn++;
    this.#lastFrameAt = this.#clock.now();
    this.#receiveWindow -= f.length;
    if (this.#receiveWindow < 0) {
      throw new AtpError('ATP_ERR_FLOW_CONTROL', `fragments ${-this.#receiveWindow} bytes beyond the flow-control window`, {
        type: f.code,
      });
    }
    this.#receivedUnreturned += f.length;
    // Given back once the whole read chunk is taken in (#onData), so that a burst beyond the window shows.
    if (
      this.#receiveWindow + this.#receivedUnreturned < this.#windowSize ||
      this.#receivedUnreturned >= this.#windowSize / 4 ||
      f.received === f.messageLength
    ) {
      this.#windowDue = true;
    }
    if (this.#windowSize < this.#maxWindowBytes) this.#measure(f.length);
  };

  /**
   * Round-trip probes, to size the window to the link (ATP_WIRE §3.8): a PING sent when fragments
   * arrive, and the fragment bytes received until its PONG. Those bytes over the round trip are the
   * rate; the rate times the least round trip seen is the bandwidth-delay product, and the window is
   * grown to twice that, at most doubling at a time, and again only when the rate rose with the last
   * growth. On a link whose least round trip is under 4 ms (loopback, a LAN) it stays as it is: a
   * round trip there is mostly the queue of fragments in front of the PONG, and a larger window would
   * only lengthen the wait of every control frame behind it.
   */
  #measure(bytes: number): void {
    const p = this.#probe;
    if (p !== undefined) {
      p.bytes += bytes;
      return;
    }
    const now = this.#clock.now();
    if (now - this.#lastProbeAt < PROBE_EVERY_MS || this.#closing) return;
    this.#lastProbeAt = now;
    this.#probe = { at: now, bytes };
    this.send({ type: 'PING', stream: 0, nonce: this.#probeNonce });
  }

  #probed(): void {
    const p = this.#probe!;
    this.#probe = undefined;
    const rtt = this.#clock.now() - p.at;
    if (!(rtt > 0)) return;
    if (rtt < this.#minRttMs) this.#minRttMs = rtt;
    // The least of a few round trips, so that one taken while this process was slow is not the link's;
    // and a short one means the window is not what bounds the rate (128 KiB per 4 ms is 32 MB/s).
    if (++this.#probes < PROBES_BEFORE_GROWTH || this.#minRttMs < MIN_GROWTH_RTT_MS) return;
    // Grown before, and the rate did not follow: the link or the receiver bounds it, not the window.
    const rate = p.bytes / rtt;
    if (this.#rateAtGrowth > 0 && rate < 1.25 * this.#rateAtGrowth) return;
    const target = Math.min(this.#maxWindowBytes, 2 * this.#windowSize, Math.ceil(2 * rate * this.#minRttMs));
    if (target <= this.#windowSize) return;
    this.#rateAtGrowth = rate;
    this.#windowSize = target;
    this.#windowDue = true;
  }

  /** The decoder starts a fragmented message of `total` bytes: its buffer, if the budget has room now. */
  #allocate(total: number): Uint8Array | undefined {
    const budget = this.#budget!;
    if (total > budget.limitBytes) {
      throw new AtpError('ATP_ERR_FRAME_TOO_LARGE', `message of ${total} bytes exceeds the memory for messages (${budget.limitBytes})`);
    }
    if (budget.tryReserve(total)) {
      this.#reserved = total;
      this.#reservedForMessage();
      return new Uint8Array(total);
    }
    // Wait, taking in nothing more: the window given back so far bounds what the peer can still send.
    this.#cancelWait = budget.wait(total, () => {
      this.#cancelWait = undefined;
      this.#reserved = total;
      if (this.#closed || this.#closing || !this.#decoder.waiting) return this.#releaseBudget();
      this.#decoder.resume(new Uint8Array(total));
      this.#lastFragmentAt = this.#clock.now(); // the wait was ours, not the peer's stall
      this.#reservedForMessage();
      if (this.#windowDue) this.#giveWindow();
    });
    return undefined;
  }

  /**
   * ATP-4.8-7: the message in progress holds memory from now on. A message that crawls, a
   * fragment now and then so that ATP-4.8-6 never ends it, would otherwise hold memory that others
   * wait for for as long as its sender likes: while others wait, it must arrive at the minimum
   * rate on average since now, once the grace period has passed.
   */
  #reservedForMessage(): void {
    const min = this.#minRate;
    if (min === undefined) return;
    this.#reservedAt = this.#clock.now();
    this.#bytesAtReserve = this.#decoder.bufferedBytes;
    this.#rateTimer?.cancel();
    this.#rateTimer = this.#clock.setTimer(min.graceMs, this.#checkRate);
  }

  readonly #checkRate = (): void => {
    this.#rateTimer = undefined;
    const min = this.#minRate!;
    if (this.#closed || this.#reserved === 0 || !this.#decoder.inMessage) return;
    const seconds = (this.#clock.now() - this.#reservedAt) / 1000;
    const bytes = this.#decoder.bufferedBytes - this.#bytesAtReserve;
    if (this.#budget!.waiting > 0 && bytes < min.bytesPerSecond * seconds) {
      this.fail(
        new AtpError(
          'ATP_ERR_IDLE_TIMEOUT',
          `a fragmented message of ${this.#reserved} bytes arrived at ${Math.round(bytes / seconds)} bytes/s over ${seconds.toFixed(1)} s, ` +
            `below the minimum of ${min.bytesPerSecond} bytes/s while other messages wait for memory`,
        ),
      );
      return;
    }
    // Looked at again a tenth of the grace period later (at least 100 ms), until it is complete.
    this.#rateTimer = this.#clock.setTimer(Math.max(100, min.graceMs / 10), this.#checkRate);
  };

  /** Give back the budget of the message being received, or stop waiting for it. */
  #releaseBudget(): void {
    this.#rateTimer?.cancel();
    this.#rateTimer = undefined;
    this.#cancelWait?.();
    this.#cancelWait = undefined;
    if (this.#reserved > 0) {
      const bytes = this.#reserved;
      this.#reserved = 0;
      this.#budget!.release(bytes);
    }
  }

  #giveWindow(): void {
    this.#windowDue = false;
    this.#receivedUnreturned = 0;
    // What was received, and whatever opens the window further: every window starts at 64 KiB, and
    // ours is opened to its size with the first WINDOW, and again each time it grows.
    const bytes = this.#windowSize - this.#receiveWindow;
    if (bytes <= 0 || this.#closing) return;
    this.#receiveWindow += bytes;
    this.send({ type: 'WINDOW', stream: 0, bytes });
  }

  #onWindow(msg: MessageOf<'WINDOW'>): void {
    if (!this.#agreed) throw new AtpError('ATP_ERR_PROTOCOL', 'WINDOW before WELCOME');
    if (msg.bytes === 0 || this.#sendWindow + msg.bytes > Limits.MAX_FRAGMENT_WINDOW) {
      throw new AtpError(
        'ATP_ERR_FLOW_CONTROL',
        `WINDOW of ${msg.bytes} bytes (window ${this.#sendWindow}, at most ${Limits.MAX_FRAGMENT_WINDOW})`,
      );
    }
    this.#sendWindow += msg.bytes;
    this.#pump();
  }

  /**
   * HELLO and WELCOME fix the limits of both directions (ATP_WIRE §3.2, §3.7): the sender of each
   * adds its maxMessageBytes when the owner did not, and the limits apply once WELCOME is sent
   * (coordinator) or received (client).
   */
  #sendingHandshake(msg: MessageOf<'HELLO'> | MessageOf<'WELCOME'>): Message {
    const maxMessageBytes = msg.maxMessageBytes ?? Math.max(this.#maxMessageBytes, msg.maxFrameBytes);
    if (msg.type === 'HELLO') {
      this.#hello = { maxFrameBytes: msg.maxFrameBytes, maxMessageBytes };
      return { ...msg, maxMessageBytes };
    }
    this.#decoder.maxFrameBytes = msg.maxFrameBytes;
    this.#decoder.maxMessageBytes = maxMessageBytes;
    if (this.#hello !== undefined) {
      this.#peerMaxFrameBytes = this.#hello.maxFrameBytes;
      this.#peerMaxMessageBytes = this.#hello.maxMessageBytes;
    }
    this.#agreed = true;
    return { ...msg, maxMessageBytes };
  }

  /** Returns false when the message was refused (the channel is failing). */
  #receivingHandshake(msg: MessageOf<'HELLO'> | MessageOf<'WELCOME'>): boolean {
    const maxMessageBytes = msg.maxMessageBytes ?? msg.maxFrameBytes;
    if (maxMessageBytes < msg.maxFrameBytes) {
      this.fail(new AtpError('ATP_ERR_PARAM', `maxMessageBytes ${maxMessageBytes} is below maxFrameBytes ${msg.maxFrameBytes}`));
      return false;
    }
    if (msg.type === 'HELLO') {
      this.#hello = { maxFrameBytes: msg.maxFrameBytes, maxMessageBytes };
      return true;
    }
    if (this.#hello !== undefined) {
      this.#decoder.maxFrameBytes = this.#hello.maxFrameBytes;
      this.#decoder.maxMessageBytes = this.#hello.maxMessageBytes;
    }
    this.#peerMaxFrameBytes = msg.maxFrameBytes;
    this.#peerMaxMessageBytes = maxMessageBytes;
    this.#agreed = true;
    return true;
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
    this.#releaseBudget();
    this.#events?.closed(error);
  }
}

/*
 * Two flush passes. Channels that carry a LEASE, REVOKE, SUBMIT or CANCEL are written right after
 * the current callback and its promise continuations (process.nextTick): a frame that starts or
 * stops work waits for nothing. The others are written once the I/O callbacks of this event-loop turn
 * have run (setImmediate): a coordinator that reads from many connections in one turn answers each
 * in one write, where writing after every callback cost about 1.9 writes per read under load
 * (1.3 this way). Either pass writes everything queued on a channel.
 */
let urgentFlushes: Channel[] = [];
let flushes: Channel[] = [];
let urgentPassScheduled = false;
let turnPassScheduled = false;

function scheduleFlush(ch: Channel, urgent: boolean): void {
  if (urgent) {
    urgentFlushes.push(ch);
    if (!urgentPassScheduled) {
      urgentPassScheduled = true;
      process.nextTick(urgentPass);
    }
  } else {
    flushes.push(ch);
    if (!turnPassScheduled) {
      turnPassScheduled = true;
      setImmediate(turnPass);
    }
  }
}

function urgentPass(): void {
  urgentPassScheduled = false;
  const chs = urgentFlushes;
  urgentFlushes = [];
  for (const ch of chs) ch.flush();
}

function turnPass(): void {
  turnPassScheduled = false;
  const chs = flushes;
  flushes = [];
  for (const ch of chs) ch.flush();
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
