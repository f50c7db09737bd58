/**
 * A Transport over an open WebSocket (ATP_WIRE §9.3): message-framed, one ATP frame per binary
 * message, no preface. Text messages are refused with close code 1003.
 */
import WebSocket from 'ws';
import { BaseTransport, highWaterMarkOf } from './base-transport.js';

/** The WebSocket subprotocol of ATP v1 (ATP_WIRE §9.3). */
export const WS_SUBPROTOCOL = 'atp.1';

/** RFC 6455 §5.5.1: a close frame's reason is at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;

/** The connection was closed by the peer with a close code other than a normal closure. */
export class WebSocketCloseError extends Error {
  /** The close code the peer sent (1006 when the connection dropped without a close frame). */
  readonly closeCode: number;
  /** The close reason the peer sent. */
  readonly closeReason: string;

  constructor(closeCode: number, closeReason: string) {
    super(`WebSocket closed with code ${closeCode}${closeReason === '' ? '' : `: ${closeReason}`}`);
    this.name = 'WebSocketCloseError';
    this.closeCode = closeCode;
    this.closeReason = closeReason;
  }
}

/** Options of a WebSocket transport. */
export interface WsTransportOptions {
  /** write() returns false while more than this many bytes are queued (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
}

/** Whether `code` may be sent in a close frame (RFC 6455 §7.4). */
export function isSendableCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999))
  );
}

/** Cuts `reason` to at most 123 bytes of UTF-8 without splitting a character. */
export function truncateCloseReason(reason: string): string {
  const encoder = new TextEncoder();
  if (encoder.encode(reason).byteLength <= MAX_CLOSE_REASON_BYTES) return reason;
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const size = encoder.encode(char).byteLength;
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break;
    bytes += size;
    end += char.length;
  }
  return reason.slice(0, end);
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** One WebSocket connection, already open with subprotocol `atp.1`. */
export class WsTransport extends BaseTransport {
  readonly kind = 'ws';
  readonly framed = true;
  readonly remote: string;
  readonly #ws: WebSocket;
  readonly #highWaterMarkBytes: number;
  #needDrain = false;
  #ended = false;
  #error: Error | undefined;

  constructor(ws: WebSocket, remote: string, options: WsTransportOptions = {}) {
    super();
    this.#ws = ws;
    this.remote = remote;
    this.#highWaterMarkBytes = highWaterMarkOf(options.highWaterMarkBytes);
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('error', (error: Error) => {
      this.#error ??= error;
    });
    ws.on('close', (code: number, reason: Buffer) => this.finish(this.#closeError(code, reason.toString())));
    this.start();
  }

  get bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  write(bytes: Uint8Array, written?: () => void): boolean {
    if (this.#ended || this.finished || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(
      bytes,
      { binary: true, compress: false, fin: true },
      written === undefined
        ? this.#afterSend
        : (err?: Error) => {
            this.#afterSend();
            if (err === undefined || err === null) written();
          },
    );
    if (this.#ws.bufferedAmount < this.#highWaterMarkBytes) return true;
    this.#needDrain = true;
    return false;
  }

  /** Sends a close frame after the queued messages; `code` defaults to 1000, `reason` is cut to 123 bytes. */
  end(code?: number, reason?: string): void {
    const closeCode = code ?? 1000;
    if (!isSendableCloseCode(closeCode)) throw new RangeError(`${closeCode} is not a WebSocket close code that may be sent`);
    if (this.#ended || this.finished) return;
    this.#ended = true;
    this.#ws.close(closeCode, truncateCloseReason(reason ?? ''));
    // Keep reading so that the closing handshake completes; messages until then are held if paused.
    this.#ws.resume();
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    this.finish(error, true);
    this.#ws.terminate();
  }

  protected pauseSource(): void {
    if (!this.#ended) this.#ws.pause();
  }

  protected resumeSource(): void {
    this.#ws.resume();
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#error !== undefined) return;
    if (!isBinary) {
      // ATP_WIRE §9.3: only binary messages carry frames.
      this.#error = new Error(`${this.remote} sent a text WebSocket message; ATP uses binary messages only`);
      this.#ws.close(1003, 'ATP uses binary messages only');
      this.#ws.resume();
      return;
    }
    this.push(toBytes(data));
  }

  #closeError(code: number, reason: string): Error | undefined {
    if (this.#error !== undefined) return this.#error;
    if (this.#ended || code === 1000 || code === 1001 || code === 1005) return undefined;
    return new WebSocketCloseError(code, reason);
  }

  // ws calls back after the socket write completed, when bufferedAmount has already dropped.
  readonly #afterSend = (): void => {
    if (this.#needDrain && this.#ws.bufferedAmount < this.#highWaterMarkBytes) {
      this.#needDrain = false;
      this.emitDrain();
    }
  };
}
