/**
 * A Transport over a connected node:net or node:tls socket: a byte stream with no message
 * boundaries (ATP_WIRE §9.1, §9.2). Shared by tcp.ts and tls.ts.
 */
import type { Socket } from 'node:net';
import { BaseTransport, highWaterMarkOf } from './base-transport.js';
import { hostPort, timeoutOf } from './transport-errors.js';

/** Options of a socket transport. */
export interface SocketTransportOptions {
  /** write() returns false while more than this many bytes are queued (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** After end(), destroy the socket if the peer has not closed its side within this long (default 30 s). */
  readonly closeTimeoutMs?: number | undefined;
}

/** Default time a peer is given to close its side after end(), like ws's closing handshake timeout. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** One TCP or TLS connection. */
export class SocketTransport extends BaseTransport {
  readonly kind: 'tcp' | 'tls';
  readonly framed = false;
  readonly remote: string;
  readonly #socket: Socket;
  readonly #highWaterMarkBytes: number;
  readonly #closeTimeoutMs: number;
  #closeTimer: NodeJS.Timeout | undefined;
  #needDrain = false;
  #ended = false;
  #error: Error | undefined;

  /** Takes over a connected socket; it must not have a 'data' listener yet. */
  constructor(socket: Socket, kind: 'tcp' | 'tls', options: SocketTransportOptions = {}) {
    super();
    this.kind = kind;
    this.#socket = socket;
    this.#highWaterMarkBytes = highWaterMarkOf(options.highWaterMarkBytes);
    this.#closeTimeoutMs = timeoutOf(options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 'closeTimeoutMs');
    this.remote = hostPort(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
    socket.setNoDelay(true);
    // Paused before the first 'data' listener so that nothing flows until handlers are installed.
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('error', (error: Error) => {
      this.#error ??= error;
    });
    socket.on('close', () => {
      clearTimeout(this.#closeTimer);
      this.finish(this.#error);
    });
    this.start();
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  write(bytes: Uint8Array, written?: () => void): boolean {
    // After either side ended, bytes cannot arrive: drop them rather than fail the connection.
    if (this.#ended || this.finished || this.#socket.destroyed || this.#socket.writableEnded) return false;
    this.#socket.write(
      bytes,
      written === undefined
        ? this.#afterWrite
        : (err?: Error | null) => {
            this.#afterWrite();
            if (err === undefined || err === null) written();
          },
    );
    if (this.#socket.writableLength < this.#highWaterMarkBytes) return true;
    this.#needDrain = true;
    return false;
  }

  end(_code?: number, _reason?: string): void {
    if (this.#ended || this.finished) return;
    this.#ended = true;
    // net.Socket.end() sends FIN after the queued bytes; with allowHalfOpen off the peer ends too.
    this.#socket.end();
    // A peer that keeps its half open (allowHalfOpen) must not hold the socket forever.
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), this.#closeTimeoutMs);
  }

  destroy(error?: Error): void {
    if (this.finished) return;
    this.finish(error, true);
    if (this.kind === 'tcp' && !this.#socket.destroyed) {
      // An abortive close (RST) so that the peer sees a reset, not a clean end of stream.
      this.#socket.resetAndDestroy();
    } else {
      this.#socket.destroy();
    }
  }

  protected pauseSource(): void {
    this.#socket.pause();
  }

  protected resumeSource(): void {
    this.#socket.resume();
  }

  // Writable decrements writableLength before it calls a write's callback.
  readonly #afterWrite = (): void => {
    if (this.#needDrain && this.#socket.writableLength < this.#highWaterMarkBytes) {
      this.#needDrain = false;
      this.emitDrain();
    }
  };
}
