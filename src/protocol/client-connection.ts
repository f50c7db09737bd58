/**
 * The client end of a session, shared by the worker and client SDKs: connect, HELLO/WELCOME,
 * request streams, keepalive, and reconnection that resumes the session within the resume window
 * (ATP_SPEC §4, §11.4).
 */
import { AtpError, codeOfWire } from '../errors.js';
import type { Clock, Timer } from '../internal/clock.js';
import { systemClock } from '../internal/clock.js';
import { randomId } from '../internal/ids.js';
import { connect } from '../transport/url.js';
import type { ConnectOptions } from '../transport/url.js';
import type { Transport } from '../transport/transport.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../transport/tcp.js';
import { timeoutOf } from '../transport/transport-errors.js';
import { Limits, PROTOCOL_VERSION } from '../wire/index.js';
import type { Message, MessageOf } from '../wire/index.js';
import { Channel } from './channel.js';
import type { ChannelOptions } from './channel.js';

/** Options of a client connection. */
export interface ClientConnectionOptions {
  url: string;
  /** Role bits: 1 worker, 2 producer, 4 observer. */
  roles: number;
  nodeId?: Uint8Array;
  kinds?: readonly string[];
  /** Credits to announce in each HELLO (a worker's free slots at that moment). */
  credits?: () => number;
  authToken?: string;
  tenant?: string;
  clock?: Clock;
  /** Reconnect (and resume) after a dropped connection. Default true. */
  reconnect?: boolean;
  /** Give up reconnecting after this long. Default 30 s. */
  reconnectForMs?: number;
  /** Other coordinators sharing the store, tried in turn when `url` does not answer (ATP_SPEC §11.8). */
  fallbackUrls?: readonly string[];
  /** Transport options (TLS material, timeouts). */
  transport?: ConnectOptions;
  /** Framing options: the message size this side accepts, the fragment size and the receive window. */
  channel?: Pick<ChannelOptions, 'maxMessageBytes' | 'fragmentBytes' | 'receiveWindowBytes' | 'maxReceiveWindowBytes'>;
  agent?: string;
  /** Optional features to offer in HELLO (ATP_REGISTRY §5); on when WELCOME lists them too. */
  capabilities?: readonly string[];
}

/** Handlers of a client connection's owner. */
export interface ClientConnectionEvents {
  /** An unsolicited frame (stream 0) or one on a stream nobody waits on. */
  push(msg: Message): void;
  /** Connected (first time or again); `resumed` says whether the session and its leases survived. */
  up(welcome: MessageOf<'WELCOME'>, resumed: boolean): void;
  /** The connection dropped; reconnection follows when enabled. */
  down(error: AtpError | undefined): void;
  /** Gave up for good (closed, or reconnection failed). */
  closed(error: AtpError | undefined): void;
}

/** One logical session that survives reconnects. */
export class ClientConnection {
  readonly options: ClientConnectionOptions;
  readonly nodeId: Uint8Array;
  readonly #clock: Clock;
  #events: ClientConnectionEvents | undefined;
  #channel: Channel | undefined;
  #welcome: MessageOf<'WELCOME'> | undefined;
  #streams = new Map<number, (msg: Message) => void>();
  #nextStream = 1;
  #closing = false;
  #keepalive: Timer | undefined;
  #heartbeat: (() => void) | undefined;
  /** Interval set by setHeartbeatInterval(), kept across reconnects; else WELCOME.heartbeatMs. */
  #heartbeatMs: number | undefined;
  #lastSentAt = 0;

  constructor(options: ClientConnectionOptions) {
    this.options = options;
    this.nodeId = options.nodeId ?? randomId(16);
    this.#clock = options.clock ?? systemClock;
  }

  /** The WELCOME of the current connection. */
  get welcome(): MessageOf<'WELCOME'> | undefined {
    return this.#welcome;
  }

  /** Large messages still being sent in fragments on the current connection (ATP_WIRE §3.7). */
  get bulkQueued(): number {
    return this.#channel?.stats.bulkQueued ?? 0;
  }

  /** True while connected and welcomed. */
  get connected(): boolean {
    return this.#channel !== undefined && !this.#channel.closed && this.#welcome !== undefined;
  }

  /**
   * Connect and complete the handshake, trying `url` and then each fallback once, in turn (ATP_SPEC
   * ATP-11.8-5); rejects with the AtpError of the last address tried, or at once with one of class 3
   * (authentication, authorization), which another coordinator of the same deployment would repeat.
   */
  async start(events: ClientConnectionEvents): Promise<MessageOf<'WELCOME'>> {
    this.#events = events;
    const addresses = 1 + (this.options.fallbackUrls?.length ?? 0);
    for (let tried = 1; ; tried++) {
      try {
        return await this.#connectOnce();
      } catch (err) {
        if (tried >= addresses || !(err instanceof AtpError) || err.errorClass === 3) throw err;
        this.#urlIndex++;
      }
    }
  }

  /** Replace the keepalive action (workers renew instead of pinging). */
  setHeartbeat(fn: () => void): void {
    this.#heartbeat = fn;
  }

  async #connectOnce(): Promise<MessageOf<'WELCOME'>> {
    const o = this.options;
    let transport: Transport;
    try {
      transport = await connect(this.#currentUrl(), o.transport ?? {});
    } catch (err) {
      throw new AtpError('ATP_ERR_UNAVAILABLE', err instanceof Error ? err.message : String(err));
    }
    const ch = new Channel(transport, { ...o.channel, side: 'client', clock: this.#clock });
    const prev = this.#welcome;
    const url = this.#currentUrl();
    // ATP_SPEC ATP-4.1-7: a coordinator that accepts the connection but does not answer (paused,
    // overloaded) must not hold its client: give up, and try the next address.
    const waitMs = timeoutOf(o.transport?.timeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
    return new Promise<MessageOf<'WELCOME'>>((resolve, reject) => {
      let welcomed = false;
      // Destroyed, not closed: a paused peer would never finish a clean close.
      const giveUp = this.#clock.setTimer(waitMs, () => {
        reject(new AtpError('ATP_ERR_HANDSHAKE_TIMEOUT', `no WELCOME from ${url} within ${waitMs} ms`));
        ch.destroy();
      });
      ch.start({
        message: (msg) => {
          if (!welcomed) {
            if (msg.type === 'WELCOME') {
              giveUp.cancel();
              welcomed = true;
              this.#channel = ch;
              this.#welcome = msg;
              ch.setMaxFrameBytes(Limits.DEFAULT_MAX_FRAME_BYTES);
              if (msg.idleTimeoutMs > 0) ch.setIdleTimeout(msg.idleTimeoutMs);
              this.#armKeepalive();
              resolve(msg);
              this.#events?.up(msg, msg.resumed === 1);
              return;
            }
            if (msg.type === 'GOAWAY' || msg.type === 'ERROR') {
              reject(AtpError.fromWire(msg.code, msg.type === 'GOAWAY' ? msg.reason : msg.message));
              ch.destroy();
              return;
            }
            if (msg.type === 'PONG') return;
            ch.fail(new AtpError('ATP_ERR_PROTOCOL', `${msg.type} before WELCOME`));
            return;
          }
          this.#dispatch(msg);
        },
        closed: (err) => {
          if (!welcomed) {
            giveUp.cancel();
            reject(err ?? new AtpError('ATP_ERR_UNAVAILABLE', `the coordinator at ${url} closed the connection during the handshake`));
            return;
          }
          if (this.#channel === ch) this.#onDown(err);
        },
      });
      const hello: MessageOf<'HELLO'> = {
        type: 'HELLO',
        stream: 0,
        minVersion: PROTOCOL_VERSION,
        maxVersion: PROTOCOL_VERSION,
        roles: o.roles,
        nodeId: this.nodeId,
        credits: o.credits?.() ?? 0,
        maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
        idleTimeoutMs: 0,
        agent: o.agent ?? `atp-ts/0.1 node/${process.versions.node}`,
        kinds: [...(o.kinds ?? [])],
        capabilities: [...(o.capabilities ?? [])],
      };
      if (o.authToken !== undefined) hello.authToken = new TextEncoder().encode(o.authToken);
      if (prev !== undefined) {
        hello.resumeSessionId = prev.sessionId;
        hello.resumeToken = prev.resumeToken;
      }
      if (o.tenant !== undefined) hello.tenant = o.tenant;
      ch.send(hello);
    });
  }

  #urlIndex = 0;

  /** The address to try now: `url`, then each fallback in turn after a failure. */
  #currentUrl(): string {
    const all = [this.options.url, ...(this.options.fallbackUrls ?? [])];
    return all[this.#urlIndex % all.length]!;
  }

  #dispatch(msg: Message): void {
    if (msg.type === 'PING') {
      this.send({ type: 'PONG', stream: msg.stream, nonce: msg.nonce });
      return;
    }
    const h = msg.stream === 0 ? undefined : this.#streams.get(msg.stream);
    if (h !== undefined) h(msg);
    else this.#events?.push(msg);
  }

  #armKeepalive(): void {
    this.#keepalive?.cancel();
    const hb = this.#heartbeatMs ?? this.#welcome?.heartbeatMs ?? 10_000;
    const tick = () => {
      if (!this.connected) return;
      if (this.#heartbeat !== undefined) this.#heartbeat();
      else if (this.#clock.now() - this.#lastSentAt >= hb * 0.9)
        this.send({ type: 'PING', stream: 0, nonce: (Math.random() * 0xffffffff) >>> 0 });
      this.#keepalive = this.#clock.setTimer(hb, tick);
    };
    this.#keepalive = this.#clock.setTimer(hb, tick);
  }

  /** Re-arm the keepalive at a shorter interval (a worker holding short-ttl leases). */
  setHeartbeatInterval(ms: number, fn: () => void): void {
    this.#heartbeat = fn;
    // Kept for the next connections too: a worker resumed with short-ttl leases must keep renewing them.
    this.#heartbeatMs = ms;
    this.#armKeepalive();
  }

  #onDown(err: AtpError | undefined): void {
    this.#keepalive?.cancel();
    this.#channel = undefined;
    const pending = [...this.#streams.entries()];
    this.#streams.clear();
    const lost = new AtpError('ATP_ERR_UNAVAILABLE', `connection lost${err ? `: ${err.message}` : ''}`);
    for (const [stream, h] of pending)
      h({ type: 'ERROR', stream, code: lost.wire, offendingType: 0, subject: new Uint8Array(16), message: lost.message });
    if (this.#closing || this.options.reconnect === false) {
      this.#events?.closed(err);
      return;
    }
    this.#events?.down(err);
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    const giveUpAt = this.#clock.now() + (this.options.reconnectForMs ?? 30_000);
    let delay = 20;
    while (!this.#closing) {
      try {
        await this.#connectOnce();
        return;
      } catch (err) {
        const e = err instanceof AtpError ? err : new AtpError('ATP_ERR_UNAVAILABLE', String(err));
        this.#urlIndex++;
        if (e.errorClass === 3 || this.#clock.now() >= giveUpAt) {
          this.#closing = true;
          this.#events?.closed(e);
          return;
        }
      }
      await new Promise<void>((r) => this.#clock.setTimer(delay, r));
      delay = Math.min(delay * 2, 1000);
    }
  }

  /** A new request stream id (odd, rising). */
  nextStream(): number {
    const s = this.#nextStream;
    this.#nextStream += 2;
    if (this.#nextStream > 0x7ffffff0) this.#nextStream = 1;
    return s;
  }

  /** Route every frame on `stream` to `fn` until unlisten(stream). */
  listen(stream: number, fn: (msg: Message) => void): void {
    this.#streams.set(stream, fn);
  }

  unlisten(stream: number): void {
    this.#streams.delete(stream);
  }

  /** Send a frame (dropped when not connected: callers re-send what matters after `up`). */
  send(msg: Message): boolean {
    const ch = this.#channel;
    if (ch === undefined || ch.closed) return false;
    this.#lastSentAt = this.#clock.now();
    ch.send(msg);
    return true;
  }

  /** Send a request and resolve with its first answer (ERROR rejects with the AtpError). */
  request<T extends Message>(msg: Message, accept: (m: Message) => m is T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const stream = msg.stream;
      this.listen(stream, (m) => {
        if (m.type === 'ERROR') {
          this.unlisten(stream);
          reject(new AtpError(codeOfWire(m.code), m.message, { wireCode: m.code }));
        } else if (accept(m)) {
          this.unlisten(stream);
          resolve(m);
        }
      });
      let sent: boolean;
      try {
        sent = this.send(msg);
      } catch (err) {
        // ATP_ERR_PAYLOAD_TOO_LARGE: the message is larger than the coordinator accepts; nothing was sent.
        this.unlisten(stream);
        throw err;
      }
      if (!sent) {
        this.unlisten(stream);
        reject(new AtpError('ATP_ERR_UNAVAILABLE', 'not connected'));
      }
    });
  }

  /** The peer broke a rule the channel cannot see (a malformed extension): GOAWAY(ATP_ERR_PROTOCOL) and close. */
  fail(message: string): void {
    this.#channel?.fail(new AtpError('ATP_ERR_PROTOCOL', message));
  }

  /** Drop the connection without GOAWAY (to simulate a crash in tests). */
  destroyConnection(): void {
    this.#channel?.destroy();
  }

  /** Leave: GOAWAY (mode 0) and close; no reconnection. */
  close(): Promise<void> {
    this.#closing = true;
    this.#keepalive?.cancel();
    const ch = this.#channel;
    if (ch === undefined || ch.closed) {
      this.#events?.closed(undefined);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = this.#clock.setTimer(2000, () => {
        ch.destroy();
        resolve();
      });
      const orig = this.#events;
      this.#events = {
        push: () => undefined,
        up: () => undefined,
        down: () => undefined,
        closed: (e) => {
          done.cancel();
          orig?.closed(e);
          resolve();
        },
      };
      ch.close('ATP_ERR_NONE', 'goodbye');
    });
  }
}
