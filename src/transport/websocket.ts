/**
 * ATP over WebSocket (ATP_WIRE §9.3): `ws://host:port/path` and `wss://…`. The upgrade is refused
 * unless the client offers subprotocol `atp.1`; permessage-deflate is off; a message may carry at
 * most one frame (12 header bytes + the maximum frame payload).
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { closeServer, DEFAULT_CONNECT_TIMEOUT_MS, listenServer } from './tcp.js';
import type { TlsClientOptions, TlsServerOptions } from './tls.js';
import { connectError, connectTimeoutError, hostPort, reportAcceptError, timeoutOf } from './transport-errors.js';
import type { AcceptErrorHandler } from './transport-errors.js';
import type { AcceptHandler, Listener, Transport } from './transport.js';
import { WS_SUBPROTOCOL, WsTransport } from './ws-transport.js';

/** The default path of the WebSocket endpoint. */
export const DEFAULT_WS_PATH = '/atp';
/** ATP_WIRE §3: the frame header that precedes each payload inside a message. */
const FRAME_HEADER_BYTES = 12;
/** ATP_WIRE §8: the default maximum frame payload. */
const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** Where and how to accept WebSocket connections. */
export interface WsListenOptions {
  /** Interface to bind when this listener owns its HTTP server. Default `127.0.0.1`. */
  readonly host?: string | undefined;
  /** Port to bind when this listener owns its HTTP server; 0 picks one. Default 0. */
  readonly port?: number | undefined;
  /** Upgrade requests for other paths are refused with 404. Default `/atp`. */
  readonly path?: string | undefined;
  /** Attach to this HTTP(S) server instead of creating one; it is neither listened on nor closed here. */
  readonly server?: http.Server | https.Server | undefined;
  /** Serve `wss://` from a server created here. */
  readonly tls?: TlsServerOptions | undefined;
  /** Largest frame payload accepted; a message may be 12 bytes longer (default 1 MiB). Larger: close 1009. */
  readonly maxFrameBytes?: number | undefined;
  /** Per-connection outbound high-water mark (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** Return false to refuse an upgrade (403) from this Origin; `undefined` when the header is absent. */
  readonly verifyOrigin?: ((origin: string | undefined) => boolean) | undefined;
  /** Told about refused upgrades (also published on `atp:transport:accept-error`). */
  readonly onAcceptError?: AcceptErrorHandler | undefined;
}

/** How to connect over WebSocket. */
export interface WsConnectOptions extends TlsClientOptions {
  /** Give up when the opening handshake takes longer (default 10 s). */
  readonly timeoutMs?: number | undefined;
  /** Largest frame payload accepted from the server (default 1 MiB). Larger: close 1009. */
  readonly maxFrameBytes?: number | undefined;
  /** Outbound high-water mark (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** Origin header to send (browsers send one; Node clients need not). */
  readonly origin?: string | undefined;
}

function maxPayloadOf(maxFrameBytes: number | undefined): number {
  const frameBytes = maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(frameBytes) || frameBytes <= 0) {
    throw new RangeError(`maxFrameBytes must be a positive integer, got ${String(maxFrameBytes)}`);
  }
  return FRAME_HEADER_BYTES + frameBytes;
}

function offeredProtocols(request: IncomingMessage): string[] {
  const header = request.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  return header.split(',').map((protocol) => protocol.trim());
}

/** Answers an upgrade request with a plain HTTP error and closes the socket. */
function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Accepts ATP WebSocket connections on `path`, on a server of its own or on `options.server`.
 * Throws at once on bad options; rejects when binding fails.
 */
export function listenWs(options: WsListenOptions, onAccept: AcceptHandler): Promise<Listener> {
  const path = options.path ?? DEFAULT_WS_PATH;
  if (!path.startsWith('/')) throw new TypeError(`WebSocket path must start with '/', got '${path}'`);
  const scheme = options.tls !== undefined || options.server instanceof https.Server ? 'wss' : 'ws';
  const transportOptions = { highWaterMarkBytes: options.highWaterMarkBytes };
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: maxPayloadOf(options.maxFrameBytes),
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });

  const owned = options.server === undefined;
  const server = options.server ?? (options.tls === undefined ? http.createServer() : https.createServer(options.tls));
  let url = `${scheme}://${hostPort(options.host ?? '127.0.0.1', options.port ?? 0)}${path}`;
  const refuse = (socket: Duplex, status: number, message: string): void => {
    reportAcceptError(url, new Error(`refused a WebSocket upgrade on ${url}: ${message}`), options.onAcceptError);
    refuseUpgrade(socket, status, message);
  };

  wss.on('wsClientError', (error: Error, socket: Duplex) => refuse(socket, 400, error.message));
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const pathname = new URL(request.url ?? '/', 'http://host').pathname;
    if (pathname !== path) {
      // On a shared server another upgrade listener may own this path.
      if (owned || server.listenerCount('upgrade') === 1) refuse(socket, 404, `no ATP endpoint at ${pathname}; use ${path}`);
      return;
    }
    if (!offeredProtocols(request).includes(WS_SUBPROTOCOL)) {
      refuse(socket, 400, `ATP requires the WebSocket subprotocol '${WS_SUBPROTOCOL}'`);
      return;
    }
    if (options.verifyOrigin !== undefined && !options.verifyOrigin(request.headers.origin)) {
      refuse(socket, 403, `origin ${request.headers.origin ?? '(none)'} is not allowed`);
      return;
    }
    const remote = hostPort(request.socket.remoteAddress ?? 'unknown', request.socket.remotePort ?? 0);
    wss.handleUpgrade(request, socket, head, (ws) => onAccept(new WsTransport(ws, remote, transportOptions)));
  };
  server.on('upgrade', onUpgrade);

  if (owned) {
    server.on('request', (_request: IncomingMessage, response: http.ServerResponse) => {
      response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'Upgrade' });
      response.end(`This is an ATP endpoint: open a WebSocket to ${path} with subprotocol ${WS_SUBPROTOCOL}.\n`);
    });
    return listenServer(server, scheme, options.host ?? '127.0.0.1', options.port ?? 0, undefined).then((bound) => {
      url = `${bound.url}${path}`;
      server.on('error', (error: Error) => reportAcceptError(url, error, options.onAcceptError));
      return { url, close: () => closeServer(server) };
    });
  }
  const address = server.address();
  if (typeof address === 'object' && address !== null)
    url = `${scheme}://${hostPort(options.host ?? address.address, address.port)}${path}`;
  return Promise.resolve({
    url,
    close: () => {
      server.off('upgrade', onUpgrade);
      return Promise.resolve();
    },
  });
}

/** Reads at most 1 KiB of a refused upgrade's response body, for the error message. */
function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (body.length < 1024) body += chunk;
    });
    response.on('end', () => resolve(body.trim().slice(0, 1024)));
    response.on('error', () => resolve(body.trim()));
  });
}

function noSubprotocolError(url: string, cause: Error | undefined): Error {
  const message = `cannot connect to ${url}: the server did not select the WebSocket subprotocol '${WS_SUBPROTOCOL}' (is it an ATP endpoint?)`;
  return cause === undefined ? new Error(message) : new Error(message, { cause });
}

/** Opens a WebSocket with subprotocol `atp.1`; rejects with an error naming the URL when it cannot. */
export function connectWs(url: string, options: WsConnectOptions = {}): Promise<Transport> {
  const timeoutMs = timeoutOf(options.timeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
  const ws = new WebSocket(url, [WS_SUBPROTOCOL], {
    perMessageDeflate: false,
    maxPayload: maxPayloadOf(options.maxFrameBytes),
    handshakeTimeout: timeoutMs,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(options.servername === undefined ? {} : { servername: options.servername }),
    ...(options.origin === undefined ? {} : { origin: options.origin }),
  });
  const { host } = new URL(url);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(error);
    };
    ws.on('error', (error: Error) => {
      if (/handshake has timed out/.test(error.message)) fail(connectTimeoutError(url, timeoutMs));
      else if (/subprotocol/i.test(error.message)) fail(noSubprotocolError(url, error));
      else fail(connectError(url, error));
    });
    ws.on('unexpected-response', (request, response) => {
      void readBody(response).then((body) => {
        request.destroy();
        const detail = body === '' ? '' : `: ${body}`;
        fail(new Error(`cannot connect to ${url}: the server refused the WebSocket upgrade (HTTP ${response.statusCode ?? '?'}${detail})`));
      });
    });
    ws.once('open', () => {
      if (settled) return;
      if (ws.protocol !== WS_SUBPROTOCOL) {
        fail(noSubprotocolError(url, undefined));
        return;
      }
      settled = true;
      ws.removeAllListeners('error');
      ws.removeAllListeners('unexpected-response');
      resolve(new WsTransport(ws, host, options));
    });
  });
}
