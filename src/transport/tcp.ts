/**
 * ATP over plain TCP (ATP_WIRE §9.1): `tcp://host:port`. Nagle is off so that small frames leave at
 * once; the preface and framing are the caller's business.
 */
import net from 'node:net';
import { SocketTransport } from './socket-transport.js';
import { connectError, connectTimeoutError, hostPort, listenError, portOf, reportAcceptError, timeoutOf } from './transport-errors.js';
import type { AcceptErrorHandler } from './transport-errors.js';
import type { AcceptHandler, Listener, Transport } from './transport.js';

/** Default time allowed for a TCP or TLS connect. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Where and how to listen for TCP connections. */
export interface TcpListenOptions {
  readonly host: string;
  /** 0 picks a free port; Listener.url shows it. */
  readonly port: number;
  /** Per-connection outbound high-water mark (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** After end(), how long the peer has to close its side before the socket is destroyed (default 30 s). */
  readonly closeTimeoutMs?: number | undefined;
  /** Pending-connection queue length given to listen(2). */
  readonly backlog?: number | undefined;
  /** Told about server errors after listening (also published on `atp:transport:accept-error`). */
  readonly onAcceptError?: AcceptErrorHandler | undefined;
}

/** Where and how to connect over TCP. */
export interface TcpConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number | undefined;
  /** Outbound high-water mark (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** After end(), how long the peer has to close its side before the socket is destroyed (default 30 s). */
  readonly closeTimeoutMs?: number | undefined;
}

/** Listens on a net.Server already configured by the caller and resolves once bound. */
export function listenServer(
  server: net.Server,
  scheme: string,
  host: string,
  port: number,
  backlog: number | undefined,
): Promise<Listener> {
  const wanted = `${scheme}://${hostPort(host, port)}`;
  portOf(port);
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(listenError(wanted, error));
    server.once('error', onError);
    server.listen({ host, port, ...(backlog === undefined ? {} : { backlog }) }, () => {
      server.off('error', onError);
      const address = server.address();
      const boundPort = typeof address === 'object' && address !== null ? address.port : port;
      const url = `${scheme}://${hostPort(host, boundPort)}`;
      resolve({ url, close: () => closeServer(server) });
    });
  });
}

/**
 * Stops accepting. net.Server.close() stops listening at once but calls back only after every
 * connection ended; those belong to their owners, so this resolves as soon as the port is released.
 */
export function closeServer(server: net.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.close();
  return new Promise((resolve) => setImmediate(resolve));
}

/** Listens for TCP connections; each accepted connection is handed to `onAccept`. */
export function listenTcp(options: TcpListenOptions, onAccept: AcceptHandler): Promise<Listener> {
  const transportOptions = { highWaterMarkBytes: options.highWaterMarkBytes, closeTimeoutMs: options.closeTimeoutMs };
  const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
    onAccept(new SocketTransport(socket, 'tcp', transportOptions));
  });
  return listenServer(server, 'tcp', options.host, options.port, options.backlog).then((listener) => {
    // Errors after listening (e.g. EMFILE on accept) are reported; accepting goes on.
    server.on('error', (error: Error) => reportAcceptError(listener.url, error, options.onAcceptError));
    return listener;
  });
}

/** Opens a TCP connection; rejects with an error naming the address when it cannot. */
export function connectTcp(options: TcpConnectOptions): Promise<Transport> {
  const url = `tcp://${hostPort(options.host, options.port)}`;
  const timeoutMs = timeoutOf(options.timeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
  const socket = net.connect({ host: options.host, port: portOf(options.port), noDelay: true });
  return settleConnect(socket, url, timeoutMs, 'connect', () => new SocketTransport(socket, 'tcp', options));
}

/**
 * Waits for `readyEvent` on a connecting socket, with a timeout; on failure destroys the socket and
 * rejects with a worded error. Shared with tls.ts.
 */
export function settleConnect(
  socket: net.Socket,
  url: string,
  timeoutMs: number,
  readyEvent: 'connect' | 'secureConnect',
  ready: () => Transport,
): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onError = (error: Error): void => fail(connectError(url, error));
    const onClose = (): void => fail(connectError(url, new Error('connection closed during the handshake')));
    const timer = setTimeout(() => fail(connectTimeoutError(url, timeoutMs)), timeoutMs);
    const onReady = (): void => {
      cleanup();
      try {
        resolve(ready());
      } catch (error) {
        socket.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off(readyEvent, onReady);
    };
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on(readyEvent, onReady);
  });
}
