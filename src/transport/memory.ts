/**
 * An in-process transport for tests: `memory://name`. Delivery is always asynchronous (never
 * re-entrant), backpressure is real (write() returns false while the peer holds more unread bytes
 * than the high-water mark; drain() follows once it has read them all), and `framed` mimics
 * WebSocket message boundaries.
 */
import { BaseTransport, highWaterMarkOf } from './base-transport.js';
import type { AcceptHandler, Listener, Transport } from './transport.js';

/** Options of an in-process pair. */
export interface MemoryPairOptions {
  /** write() returns false while the peer holds more unread bytes than this (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined;
  /** Preserve write boundaries, one data() call per write(), like WebSocket. Default false. */
  readonly framed?: boolean | undefined;
  /** The `remote` of each end: what the first end sees as its peer, then the second's. */
  readonly remotes?: readonly [string, string] | undefined;
}

/** One end of an in-process connection. */
class MemoryTransport extends BaseTransport {
  readonly kind = 'memory';
  readonly framed: boolean;
  readonly remote: string;
  /** Set right after construction by memoryPair(). */
  peer!: MemoryTransport;
  readonly #highWaterMarkBytes: number;
  /** Bytes the peer wrote that our consumer has not read yet (in flight or held). */
  #unreadBytes = 0;
  /** Bytes the peer wrote in all, and our consumer has read in all: the positions of `#written`. */
  #wroteTotal = 0;
  #readTotal = 0;
  /** Callbacks of the peer's writes, each due once our consumer has read up to its end position. */
  readonly #written: { end: number; fn: () => void }[] = [];
  #needDrain = false;
  #ended = false;

  constructor(framed: boolean, remote: string, highWaterMarkBytes: number) {
    super();
    this.framed = framed;
    this.remote = remote;
    this.#highWaterMarkBytes = highWaterMarkBytes;
    this.start();
  }

  get bufferedBytes(): number {
    return this.peer.#unreadBytes;
  }

  write(bytes: Uint8Array, written?: () => void): boolean {
    if (this.#ended || this.finished) return false;
    const peer = this.peer;
    // A copy: the caller may reuse its buffer once write() returned, as with a socket.
    const copy = bytes.slice();
    peer.#unreadBytes += copy.byteLength;
    peer.#wroteTotal += copy.byteLength;
    if (written !== undefined) peer.#written.push({ end: peer.#wroteTotal, fn: written });
    queueMicrotask(() => peer.push(copy));
    if (peer.#unreadBytes <= this.#highWaterMarkBytes) return true;
    this.#needDrain = true;
    return false;
  }

  /** Closes both ends cleanly: each delivers the bytes it already holds, then close(). */
  end(_code?: number, _reason?: string): void {
    if (this.#ended || this.finished) return;
    this.#ended = true;
    const peer = this.peer;
    // Queued after the pending deliveries, so the peer reads everything before its close.
    queueMicrotask(() => {
      peer.finish();
      this.finish();
    });
  }

  /** Closes this end at once; the peer sees a reset, as after an abortive TCP close. */
  destroy(error?: Error): void {
    if (this.finished) return;
    this.finish(error, true);
    const peer = this.peer;
    queueMicrotask(() => peer.finish(new Error(`connection reset by peer ${peer.remote}`)));
  }

  protected pauseSource(): void {}

  protected resumeSource(): void {}

  protected override consumed(bytes: number): void {
    this.#unreadBytes -= bytes;
    this.#readTotal += bytes;
    while (this.#written.length > 0 && this.#written[0]!.end <= this.#readTotal) this.#written.shift()!.fn();
    const writer = this.peer;
    if (this.#unreadBytes === 0 && writer.#needDrain) {
      writer.#needDrain = false;
      writer.emitDrain();
    }
  }
}

/** Two connected in-process transports. */
export function memoryPair(options: MemoryPairOptions = {}): [Transport, Transport] {
  const highWaterMarkBytes = highWaterMarkOf(options.highWaterMarkBytes);
  const framed = options.framed ?? false;
  const [remoteOfFirst, remoteOfSecond] = options.remotes ?? ['memory:second', 'memory:first'];
  const first = new MemoryTransport(framed, remoteOfFirst, highWaterMarkBytes);
  const second = new MemoryTransport(framed, remoteOfSecond, highWaterMarkBytes);
  first.peer = second;
  second.peer = first;
  return [first, second];
}

interface MemoryEndpoint {
  readonly onAccept: AcceptHandler;
  readonly options: MemoryPairOptions;
  connections: number;
}

/** The process-wide table of `memory://` listeners. */
const endpoints = new Map<string, MemoryEndpoint>();

function checkName(name: string): void {
  if (typeof name !== 'string' || name === '' || /[/\s]/.test(name)) {
    throw new TypeError(`a memory:// name must be non-empty without slashes or spaces, got '${String(name)}'`);
  }
}

/** Listens on `memory://name` in this process; `options` (framing, high-water mark) apply to each connection. */
export function listenMemory(name: string, onAccept: AcceptHandler, options: MemoryPairOptions = {}): Promise<Listener> {
  checkName(name);
  const url = `memory://${name}`;
  if (endpoints.has(name)) return Promise.reject(new Error(`cannot listen on ${url}: address in use`));
  const endpoint: MemoryEndpoint = { onAccept, options, connections: 0 };
  endpoints.set(name, endpoint);
  return Promise.resolve({
    url,
    close: () => {
      if (endpoints.get(name) === endpoint) endpoints.delete(name);
      return Promise.resolve();
    },
  });
}

/** Connects to `memory://name`; rejects when nothing listens there. */
export function connectMemory(name: string): Promise<Transport> {
  checkName(name);
  const url = `memory://${name}`;
  const endpoint = endpoints.get(name);
  if (endpoint === undefined)
    return Promise.reject(new Error(`cannot connect to ${url}: nothing listens there (is the coordinator running?)`));
  endpoint.connections++;
  const [client, server] = memoryPair({ ...endpoint.options, remotes: [url, `${url}#${endpoint.connections}`] });
  // Accepted asynchronously, like a socket: never inside the caller's connect().
  queueMicrotask(() => endpoint.onAccept(server));
  return Promise.resolve(client);
}
