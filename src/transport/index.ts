/** Transports: byte connections with backpressure over TCP, TLS, WebSocket and in-process pairs. */
export type { AcceptHandler, Listener, Transport, TransportHandlers } from './transport.js';
export { BaseTransport, DEFAULT_HIGH_WATER_MARK_BYTES } from './base-transport.js';
export { acceptErrorChannel } from './transport-errors.js';
export type { AcceptErrorHandler } from './transport-errors.js';
export { SocketTransport } from './socket-transport.js';
export type { SocketTransportOptions } from './socket-transport.js';
export { connectTcp, DEFAULT_CONNECT_TIMEOUT_MS, listenTcp } from './tcp.js';
export type { TcpConnectOptions, TcpListenOptions } from './tcp.js';
export { ALPN_PROTOCOL, connectTls, listenTls } from './tls.js';
export type { Pem, TlsClientOptions, TlsConnectOptions, TlsListenOptions, TlsServerOptions } from './tls.js';
export { WebSocketCloseError, WS_SUBPROTOCOL, WsTransport } from './ws-transport.js';
export type { WsTransportOptions } from './ws-transport.js';
export { connectWs, DEFAULT_WS_PATH, listenWs } from './websocket.js';
export type { WsConnectOptions, WsListenOptions } from './websocket.js';
export { connectMemory, listenMemory, memoryPair } from './memory.js';
export type { MemoryPairOptions } from './memory.js';
export { connect, listen, parseAddress } from './url.js';
export type { Address, ConnectOptions, ListenOptions } from './url.js';
