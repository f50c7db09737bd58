/**
 * Addresses as URLs: `tcp://host:port`, `tls://host:port`, `ws://host:port/path`, `wss://…` and
 * `memory://name`. listen() and connect() dispatch on the scheme, so callers need not know which
 * transport they get.
 */
import type http from 'node:http';
import type https from 'node:https';
import { connectMemory, listenMemory } from './memory.js';
import type { MemoryPairOptions } from './memory.js';
import { connectTcp, listenTcp } from './tcp.js';
import { connectTls, listenTls } from './tls.js';
import type { TlsClientOptions, TlsServerOptions } from './tls.js';
import type { AcceptErrorHandler } from './transport-errors.js';
import type { AcceptHandler, Listener, Transport } from './transport.js';
import { connectWs, DEFAULT_WS_PATH, listenWs } from './websocket.js';

/** A parsed address. */
export type Address =
  | { readonly scheme: 'tcp' | 'tls'; readonly host: string; readonly port: number }
  | { readonly scheme: 'ws' | 'wss'; readonly host: string; readonly port: number; readonly path: string }
  | { readonly scheme: 'memory'; readonly name: string };

/** Options for listen(); each transport uses those that concern it. */
export interface ListenOptions {
  /** Per-connection outbound high-water mark (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** WebSocket: largest frame payload a message may carry (default 1 MiB). */
  readonly maxFrameBytes?: number | undefined;
  /** tls:// and wss://: the server identity, and the client CAs for mutual TLS. */
  readonly tls?: TlsServerOptions | undefined;
  /** ws:// and wss://: attach to this HTTP(S) server instead of creating one. */
  readonly server?: http.Server | https.Server | undefined;
  /** ws:// and wss://: refuse upgrades from Origins for which this returns false. */
  readonly verifyOrigin?: ((origin: string | undefined) => boolean) | undefined;
  /** memory://: preserve write boundaries like WebSocket. */
  readonly framed?: boolean | undefined;
  /** Told about connections that failed before being accepted (TLS handshakes, refused upgrades). */
  readonly onAcceptError?: AcceptErrorHandler | undefined;
}

/** Options for connect(); each transport uses those that concern it. */
export interface ConnectOptions {
  /**
   * Give up connecting after this long (default 10 s). The SDKs apply it twice: to the connection,
   * and then to the ATP handshake, from HELLO sent to WELCOME received (ATP_SPEC ATP-4.1-7).
   */
  readonly timeoutMs?: number | undefined;
  /** Outbound high-water mark (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** WebSocket: largest frame payload a message may carry (default 1 MiB). */
  readonly maxFrameBytes?: number | undefined;
  /** tls:// and wss://: CAs to trust, and a client certificate for mutual TLS. */
  readonly tls?: TlsClientOptions | undefined;
}

const SCHEMES = 'tcp://, tls://, ws://, wss:// or memory://';

function hostOf(url: URL): string {
  // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** Parses an address. Throws a TypeError naming the problem when it is malformed or unsupported. */
export function parseAddress(address: string): Address {
  const malformed = new TypeError(`invalid address '${address}': expected a URL such as tcp://127.0.0.1:7400 (${SCHEMES})`);
  // `localhost:7400` would parse as scheme `localhost:`; say what is missing instead.
  if (!address.includes('://')) throw malformed;
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw malformed;
  }
  switch (url.protocol) {
    case 'tcp:':
    case 'tls:': {
      const scheme = url.protocol === 'tcp:' ? 'tcp' : 'tls';
      if (url.hostname === '') throw new TypeError(`address ${address} has no host; write ${scheme}://HOST:PORT`);
      if (url.port === '') throw new TypeError(`address ${address} has no port; write ${scheme}://${url.hostname}:PORT`);
      if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
        throw new TypeError(`address ${address} has a path; ${scheme}:// addresses are just ${scheme}://HOST:PORT`);
      }
      return { scheme, host: hostOf(url), port: Number(url.port) };
    }
    case 'ws:':
    case 'wss:': {
      const scheme = url.protocol === 'ws:' ? 'ws' : 'wss';
      if (url.hostname === '') throw new TypeError(`address ${address} has no host; write ${scheme}://HOST:PORT${DEFAULT_WS_PATH}`);
      const port = url.port === '' ? (scheme === 'ws' ? 80 : 443) : Number(url.port);
      const path = url.pathname === '' || url.pathname === '/' ? DEFAULT_WS_PATH : url.pathname;
      return { scheme, host: hostOf(url), port, path };
    }
    case 'memory:': {
      const name = url.host;
      if (name === '' || (url.pathname !== '' && url.pathname !== '/')) {
        throw new TypeError(`address ${address} is not a valid memory address; write memory://NAME`);
      }
      return { scheme: 'memory', name };
    }
    default:
      throw new TypeError(`unsupported address scheme '${url.protocol}' in ${address}; use ${SCHEMES}`);
  }
}

/**
 * Listens on `address`. Port 0 picks a free port; the Listener's url shows the bound one. Throws a
 * TypeError at once for a malformed address or missing TLS identity; rejects when binding fails.
 */
export function listen(address: string, options: ListenOptions, onAccept: AcceptHandler): Promise<Listener> {
  const parsed = parseAddress(address);
  const common = { highWaterMarkBytes: options.highWaterMarkBytes, onAcceptError: options.onAcceptError };
  switch (parsed.scheme) {
    case 'tcp':
      return listenTcp({ host: parsed.host, port: parsed.port, ...common }, onAccept);
    case 'tls':
      if (options.tls === undefined) throw new TypeError(`listening on ${address} needs options.tls with key and cert`);
      return listenTls({ host: parsed.host, port: parsed.port, ...common, ...options.tls }, onAccept);
    case 'ws':
    case 'wss':
      if (parsed.scheme === 'wss' && options.tls === undefined && options.server === undefined) {
        throw new TypeError(`listening on ${address} needs options.tls with key and cert`);
      }
      return listenWs(
        {
          host: parsed.host,
          port: parsed.port,
          path: parsed.path,
          server: options.server,
          tls: parsed.scheme === 'wss' ? options.tls : undefined,
          maxFrameBytes: options.maxFrameBytes,
          verifyOrigin: options.verifyOrigin,
          ...common,
        },
        onAccept,
      );
    case 'memory': {
      const memoryOptions: MemoryPairOptions = { highWaterMarkBytes: options.highWaterMarkBytes, framed: options.framed };
      return listenMemory(parsed.name, onAccept, memoryOptions);
    }
  }
}

/** Connects to `address`. Throws a TypeError at once for a malformed address; rejects when connecting fails. */
export function connect(address: string, options: ConnectOptions = {}): Promise<Transport> {
  const parsed = parseAddress(address);
  const common = { timeoutMs: options.timeoutMs, highWaterMarkBytes: options.highWaterMarkBytes };
  switch (parsed.scheme) {
    case 'tcp':
      return connectTcp({ host: parsed.host, port: parsed.port, ...common });
    case 'tls':
      return connectTls({ host: parsed.host, port: parsed.port, ...common, ...options.tls });
    case 'ws':
    case 'wss': {
      const target = new URL(address);
      target.pathname = parsed.path;
      return connectWs(target.href, { ...common, maxFrameBytes: options.maxFrameBytes, ...(parsed.scheme === 'wss' ? options.tls : {}) });
    }
    case 'memory':
      return connectMemory(parsed.name);
  }
}
