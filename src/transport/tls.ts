/**
 * ATP over TLS (ATP_WIRE §9.2): `tls://host:port`, ALPN `atp/1`, optionally mutual TLS. The preface
 * is still sent inside TLS. A client that offers ALPN without `atp/1` fails the handshake with
 * the `no_application_protocol` alert; a client that offers no ALPN at all is accepted.
 */
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { SocketTransport } from './socket-transport.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, listenServer, settleConnect } from './tcp.js';
import type { TcpConnectOptions, TcpListenOptions } from './tcp.js';
import { hostPort, portOf, reportAcceptError, timeoutOf } from './transport-errors.js';
import type { AcceptHandler, Listener, Transport } from './transport.js';

/** The ALPN protocol id of ATP v1 (ATP_WIRE §9.2). */
export const ALPN_PROTOCOL = 'atp/1';

/** PEM text or bytes, or a list of them, as node:tls takes them. */
export type Pem = NonNullable<tls.SecureContextOptions['cert']>;

/** The server side of TLS: its identity and, for mutual TLS, whom it trusts. */
export interface TlsServerOptions {
  /** Private key of the server certificate. */
  readonly key: NonNullable<tls.SecureContextOptions['key']>;
  /** Server certificate chain. */
  readonly cert: Pem;
  /** CAs that client certificates must chain to (mutual TLS). */
  readonly ca?: Pem | undefined;
  /** Ask clients for a certificate (mutual TLS). Default false. */
  readonly requestCert?: boolean | undefined;
  /** With requestCert, refuse clients whose certificate is missing or untrusted. Default true. */
  readonly rejectUnauthorized?: boolean | undefined;
  /** Abort handshakes that take longer (default 10 s). */
  readonly handshakeTimeoutMs?: number | undefined;
}

/** The client side of TLS: whom it trusts and, for mutual TLS, its identity. */
export interface TlsClientOptions {
  /** CAs the server certificate must chain to (default: the system store). */
  readonly ca?: Pem | undefined;
  /** Client certificate chain (mutual TLS). */
  readonly cert?: Pem | undefined;
  /** Private key of the client certificate. */
  readonly key?: tls.SecureContextOptions['key'];
  /** Name to verify the server certificate against when it differs from the host. */
  readonly servername?: string | undefined;
  /** Refuse a server whose certificate does not verify. Default true. */
  readonly rejectUnauthorized?: boolean | undefined;
}

/** Where and how to listen for TLS connections. */
export interface TlsListenOptions extends TcpListenOptions, TlsServerOptions {}

/** Where and how to connect over TLS. */
export interface TlsConnectOptions extends TcpConnectOptions, TlsClientOptions {}

/** Listens for TLS connections; each one is handed to `onAccept` once its handshake succeeded. */
export function listenTls(options: TlsListenOptions, onAccept: AcceptHandler): Promise<Listener> {
  const transportOptions = { highWaterMarkBytes: options.highWaterMarkBytes, closeTimeoutMs: options.closeTimeoutMs };
  const requestCert = options.requestCert ?? false;
  const server = tls.createServer(
    {
      key: options.key,
      cert: options.cert,
      ca: options.ca,
      requestCert,
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      ALPNProtocols: [ALPN_PROTOCOL],
      handshakeTimeout: timeoutOf(options.handshakeTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    },
    (socket) => {
      onAccept(new SocketTransport(socket, 'tls', transportOptions));
    },
  );
  server.on('connection', (socket: Socket) => {
    socket.setNoDelay(true);
  });
  return listenServer(server, 'tls', options.host, options.port, options.backlog).then((listener) => {
    server.on('tlsClientError', (error: Error) => {
      reportAcceptError(
        listener.url,
        new Error(`TLS handshake with a client of ${listener.url} failed: ${error.message}`, { cause: error }),
        options.onAcceptError,
      );
    });
    server.on('error', (error: Error) => reportAcceptError(listener.url, error, options.onAcceptError));
    return listener;
  });
}

/** Opens a TLS connection offering ALPN `atp/1`; rejects with an error naming the address when it cannot. */
export function connectTls(options: TlsConnectOptions): Promise<Transport> {
  const url = `tls://${hostPort(options.host, options.port)}`;
  const timeoutMs = timeoutOf(options.timeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
  const socket = tls.connect({
    host: options.host,
    port: portOf(options.port),
    ALPNProtocols: [ALPN_PROTOCOL],
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(options.servername === undefined ? {} : { servername: options.servername }),
  });
  return settleConnect(socket, url, timeoutMs, 'secureConnect', () => {
    // A server without ALPN (false) is tolerated: the preface still guards the protocol.
    if (typeof socket.alpnProtocol === 'string' && socket.alpnProtocol !== ALPN_PROTOCOL) {
      throw new Error(`cannot connect to ${url}: the server selected ALPN protocol '${socket.alpnProtocol}', not '${ALPN_PROTOCOL}'`);
    }
    return new SocketTransport(socket, 'tls', options);
  });
}
