/**
 * The Transport contract: one bidirectional byte connection. Transports move bytes with
 * backpressure and know no ATP message (ATP_WIRE §9). Implementations: tcp, tls, websocket and an
 * in-process pair for tests.
 */

/** Callbacks a transport delivers to its single consumer. */
export interface TransportHandlers {
  /** Bytes arrived. On a message transport (`framed`), each call carries exactly one WebSocket message. */
  data(chunk: Uint8Array): void;
  /** The outbound buffer fell below the high-water mark after write() returned false. */
  drain(): void;
  /** The connection ended; `error` when it ended abnormally. Called exactly once. */
  close(error?: Error): void;
}

/** One connection. */
export interface Transport {
  /** `tcp`, `tls`, `ws` or `memory`. */
  readonly kind: 'tcp' | 'tls' | 'ws' | 'memory';
  /** True when the transport preserves message boundaries (WebSocket): no preface, one frame per message. */
  readonly framed: boolean;
  /** Peer address for diagnostics, e.g. `127.0.0.1:53122`. */
  readonly remote: string;
  /** Bytes accepted by write() and not yet handed to the operating system. */
  readonly bufferedBytes: number;
  /** Install the handlers; bytes that arrive before this are held, not lost. */
  setHandlers(handlers: TransportHandlers): void;
  /**
   * Queue bytes. Returns false when the buffer is above its high-water mark: wait for drain().
   * After end(), destroy() or the close, the bytes are dropped and false is returned.
   * `written`, when given, is called once these bytes have left the buffer (handed to the operating
   * system, or taken by the in-process peer), so that a writer can keep `bufferedBytes` under a mark
   * of its own, lower than the high-water mark; it is not called for bytes that are dropped.
   */
  write(bytes: Uint8Array, written?: () => void): boolean;
  /** Stop delivering data (inbound backpressure) until resume(). */
  pause(): void;
  resume(): void;
  /** Flush what is queued, then close. `code`/`reason` become the WebSocket close code and reason. */
  end(code?: number, reason?: string): void;
  /** Close at once, dropping queued bytes. */
  destroy(error?: Error): void;
}

/** A listening endpoint. */
export interface Listener {
  /** The URL peers connect to, with the bound port (e.g. `tcp://127.0.0.1:7400`). */
  readonly url: string;
  /** Stop accepting; existing connections are left to their owners. */
  close(): Promise<void>;
}

/** Called for each accepted connection. */
export type AcceptHandler = (transport: Transport) => void;
