/**
 * The receive window grown to the link (ATP_WIRE §3.8): over a link with a long round trip the
 * coordinator's window grows past its first 128 KiB, over loopback TCP it stays near it, and a client
 * keeps a fixed window unless asked. Assertions are on window sizes and bytes, never on time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { systemClock } from '../../src/internal/clock.js';
import { Channel } from '../../src/protocol/channel.js';
import type { ChannelOptions } from '../../src/protocol/channel.js';
import { memoryPair } from '../../src/transport/memory.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import type { Message, MessageOf } from '../../src/wire/index.js';
import { hello, submit as submitMessage, welcome } from '../coordinator/harness.js';
import { tcpTransports } from '../transport/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const id = (n: number): Uint8Array => new Uint8Array(16).fill(n);

/** A transport whose bytes reach the peer `delayMs` after they are written, in order: a long link. */
class SlowLink implements Transport {
  readonly kind = 'memory' as const;
  readonly framed = false;
  readonly remote = 'slow-link';
  constructor(
    readonly inner: Transport,
    readonly delayMs: number,
  ) {}
  get bufferedBytes(): number {
    return this.inner.bufferedBytes;
  }
  setHandlers(h: TransportHandlers): void {
    this.inner.setHandlers(h);
  }
  write(bytes: Uint8Array, written?: () => void): boolean {
    // Taken at once, as a socket's kernel buffer takes them; delivered after the link's delay.
    const copy = bytes.slice();
    setTimeout(() => this.inner.write(copy), this.delayMs);
    if (written !== undefined) queueMicrotask(written);
    return true;
  }
  pause(): void {
    this.inner.pause();
  }
  resume(): void {
    this.inner.resume();
  }
  end(): void {
    setTimeout(() => this.inner.end(), this.delayMs);
  }
  destroy(error?: Error): void {
    this.inner.destroy(error);
  }
}

function patterned(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
  return b;
}

/** A SUBMIT of `payload`, kind `k`. */
const submit = (payload: Uint8Array) => submitMessage(1, 'k', payload, { artifactId: id(1) });

interface End {
  ch: Channel;
  got: Message[];
  pings: number;
  next(type: Message['type']): Promise<Message>;
}

function end(t: Transport, side: 'client' | 'coordinator', options: Partial<ChannelOptions> = {}): End {
  const ch = new Channel(t, { side, clock: systemClock, ...options });
  const waiters: Array<{ type: string; resolve: (m: Message) => void }> = [];
  const e: End = {
    ch,
    got: [],
    pings: 0,
    next: (type) => {
      const found = e.got.find((m) => m.type === type);
      return found !== undefined ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ type, resolve }));
    },
  };
  ch.start({
    message: (m) => {
      e.got.push(m);
      if (m.type === 'PING') {
        e.pings++;
        ch.send({ type: 'PONG', stream: m.stream, nonce: m.nonce });
      }
      if (m.type === 'HELLO') ch.send(welcome());
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.type === m.type) waiters.splice(i, 1)[0]!.resolve(m);
    },
    closed: () => undefined,
  });
  return e;
}

async function handshake(client: End): Promise<void> {
  client.ch.send(hello({ roles: 3 }));
  await client.next('WELCOME');
}

/** A coordinator end and a client end joined by a link with `oneWayMs` of delay each way. */
async function slowPair(oneWayMs: number, clientOptions: Partial<ChannelOptions> = {}): Promise<{ client: End; server: End }> {
  const [a, b] = memoryPair({ highWaterMarkBytes: 64 * MiB });
  const server = end(new SlowLink(b, oneWayMs), 'coordinator');
  const client = end(new SlowLink(a, oneWayMs), 'client', clientOptions);
  await handshake(client);
  return { client, server };
}

async function tcpPair(t: TestContext): Promise<{ client: End; server: End }> {
  const [c, s] = await tcpTransports(t);
  const server = end(s, 'coordinator');
  const client = end(c, 'client');
  await handshake(client);
  return { client, server };
}

void describe('the receive window grown to the link (ATP_WIRE §3.8)', () => {
  void it('grows to 512 KiB or more on a link with a 40 ms round trip, and the message arrives whole', { timeout: 60_000 }, async () => {
    const { client, server } = await slowPair(20);
    // Long enough for several probes (one per 250 ms, three before the first growth) on a busy machine.
    const payload = patterned(32 * MiB);
    client.ch.send(submit(payload));
    const got = (await server.next('SUBMIT')) as MessageOf<'SUBMIT'>;
    assert.equal(Buffer.compare(got.payload, payload), 0);
    const w = server.ch.stats.receiveWindowBytes;
    assert.ok(w >= 512 * KiB, `the window grew to ${w} bytes`);
    assert.ok(w <= 16 * MiB, 'and no further than its ceiling');
    assert.ok(client.pings > 0, 'it was measured with PINGs');
  });

  void it(
    'stays near its first 128 KiB over loopback TCP, where the round trip is the queue of fragments',
    { timeout: 60_000 },
    async (t) => {
      const { client, server } = await tcpPair(t);
      const payload = patterned(32 * MiB);
      client.ch.send(submit(payload));
      const got = (await server.next('SUBMIT')) as MessageOf<'SUBMIT'>;
      assert.equal(Buffer.compare(got.payload, payload), 0);
      const w = server.ch.stats.receiveWindowBytes;
      // Without the least-round-trip guards it reached 0.6-1.2 MiB here.
      assert.ok(w <= 512 * KiB, `the window is ${w} bytes`);
      assert.ok(client.pings > 0, 'it was measured');
    },
  );

  void it('a client keeps a fixed window and sends no probes unless maxReceiveWindowBytes is set', { timeout: 60_000 }, async () => {
    for (const maxReceiveWindowBytes of [undefined, 16 * MiB]) {
      const { client, server } = await slowPair(20, maxReceiveWindowBytes === undefined ? {} : { maxReceiveWindowBytes });
      const payload = patterned(8 * MiB);
      server.ch.send({
        type: 'LEASE',
        stream: 0,
        leaseId: id(2),
        artifactId: id(1),
        epoch: 1,
        attempt: 1,
        ttlMs: 30_000,
        maxDurationMs: 0,
        deadlineMs: 0,
        lastPartialSeq: 0,
        kind: 'k',
        parentId: new Uint8Array(16),
        digest: { alg: 1, value: new Uint8Array(32) },
        checkpoint: new Uint8Array(0),
        payload,
      });
      const got = (await client.next('LEASE')) as MessageOf<'LEASE'>;
      assert.equal(Buffer.compare(got.payload, payload), 0);
      const w = client.ch.stats.receiveWindowBytes;
      if (maxReceiveWindowBytes === undefined) {
        assert.equal(w, 128 * KiB, 'fixed');
        assert.equal(server.pings, 0, 'no PING from the client');
      } else {
        assert.ok(w > 128 * KiB, `opted in: the window grew to ${w} bytes`);
        assert.ok(server.pings > 0);
      }
    }
  });
});
