/**
 * The memory budget for fragmented messages being received across connections (ATP-4.5-10,
 * ATP_WIRE §3.8): the budget itself, the decoder holding a message's bytes while it waits, and
 * channels sharing one budget, driven by raw peers that send exactly the fragments a test says.
 * No assertion depends on wall-clock time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AtpError } from '../../src/errors.js';
import { FakeClock, systemClock } from '../../src/internal/clock.js';
import type { Clock } from '../../src/internal/clock.js';
import { Channel } from '../../src/protocol/channel.js';
import type { MessageRate } from '../../src/protocol/channel.js';
import { MessageBudget } from '../../src/protocol/message-budget.js';
import { memoryPair } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import { FrameDecoder, Limits, decodeBody, encodeFragments, encodeFrame } from '../../src/wire/index.js';
import type { Message, MessageOf, RawFrame } from '../../src/wire/index.js';
import { submit as submitMessage, welcome } from '../coordinator/harness.js';
import { bodyLength, rawPeer, sendWithinWindow } from './raw-peer.js';
import type { RawPeer } from './raw-peer.js';

const KiB = 1024;
const id = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const settled = async (): Promise<void> => {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
};

/** The SUBMIT of kind `k` with a given id. */
const submit = (stream: number, artifactId: Uint8Array, payload: Uint8Array) => submitMessage(stream, 'k', payload, { artifactId });

/** A payload whose bytes say where they are, so that a misplaced piece shows. */
function patterned(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

void describe('MessageBudget', () => {
  void it('reserves what fits, queues the rest first come first served, and grants in a microtask', async () => {
    const b = new MessageBudget(100);
    assert.ok(b.tryReserve(60));
    assert.ok(!b.tryReserve(50), 'does not fit');
    const order: string[] = [];
    b.wait(50, () => order.push('a'));
    b.wait(10, () => order.push('b'));
    assert.ok(!b.tryReserve(10), 'fits, but others wait before it');
    assert.equal(b.waiting, 2);
    b.release(60);
    assert.deepEqual(order, [], 'granted after the release returns, not inside it');
    await Promise.resolve();
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(b.usedBytes, 60);
    assert.equal(b.peakBytes, 60);
    assert.equal(b.waited, 2);
    b.release(60);
    assert.equal(b.usedBytes, 0);
  });

  void it('a cancelled wait at the head of the line lets the next one in', async () => {
    const b = new MessageBudget(100);
    assert.ok(b.tryReserve(80));
    let big = false;
    let small = false;
    const cancelBig = b.wait(90, () => (big = true));
    b.wait(20, () => (small = true));
    cancelBig();
    await Promise.resolve();
    assert.ok(!big);
    assert.ok(small, 'the 20 bytes fit once the 90 no longer wait before them');
    assert.equal(b.usedBytes, 100);
  });

  void it('refuses a wait that could never be granted and a release of more than is reserved', () => {
    const b = new MessageBudget(100);
    assert.throws(() => b.wait(101, () => undefined), /can never fit/);
    assert.throws(() => b.release(1), /released 1 bytes/);
    assert.throws(() => new MessageBudget(0), RangeError);
  });
});

void describe('FrameDecoder: a message that waits for memory', () => {
  void it('holds the bytes that arrive, then takes the buffer and decodes the same message, for any cuts', () => {
    const payload = patterned(40 * KiB, 1);
    const msg = submit(3, id(3), payload);
    fc.assert(
      fc.property(
        fc.integer({ min: 600, max: 9000 }),
        fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 12 }),
        fc.nat(50),
        (fragmentBytes, cuts, resumeAfter) => {
          const bytes = Buffer.concat(encodeFragments(msg, fragmentBytes));
          const d = new FrameDecoder(Limits.DEFAULT_MAX_FRAME_BYTES, 1 << 20);
          let total = 0;
          d.allocate = (n) => {
            total = n;
            return undefined;
          };
          const got: RawFrame[] = [];
          let off = 0;
          let chunks = 0;
          for (let i = 0; off < bytes.length; i++) {
            const next = Math.min(bytes.length, off + cuts[i % cuts.length]!);
            d.push(bytes.subarray(off, next), (f) => got.push(f));
            off = next;
            chunks++;
            if (chunks === resumeAfter && d.waiting) d.resume(new Uint8Array(total));
          }
          assert.equal(got.length, 1);
          assert.equal(d.waiting, false);
          assert.equal(d.inMessage, false);
          const m = decodeBody(got[0]!.code, got[0]!.stream, got[0]!.payload) as MessageOf<'SUBMIT'>;
          assert.equal(Buffer.compare(m.payload, payload), 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  void it('keeps copies, not views into the read chunks it was given', () => {
    const msg = submit(3, id(3), patterned(20 * KiB, 2));
    const frames = encodeFragments(msg, 8 * KiB);
    const d = new FrameDecoder(Limits.DEFAULT_MAX_FRAME_BYTES, 1 << 20);
    d.allocate = () => undefined;
    const chunk = Buffer.from(frames[0]!);
    d.push(chunk, () => assert.fail('not complete'));
    assert.ok(d.waiting);
    assert.equal(d.bufferedBytes, 8 * KiB - 4, 'the first fragment carries the 4-byte message length');
    chunk.fill(0); // the transport reuses its read buffer
    d.resume(new Uint8Array(bodyLength(frames)));
    let got: RawFrame | undefined;
    for (const f of frames.slice(1)) d.push(f, (x) => (got = x));
    const m = decodeBody(got!.code, got!.stream, got!.payload) as MessageOf<'SUBMIT'>;
    assert.equal(Buffer.compare(m.payload, msg.payload), 0);
  });
});

interface Server {
  ch: Channel;
  got: Message[];
  closed: Promise<AtpError | undefined>;
}

/** A coordinator-side channel that answers HELLO and PING, and keeps what it receives. */
function server(
  t: Transport,
  budget: MessageBudget,
  maxMessageBytes: number,
  clock: Clock = systemClock,
  minMessageRate?: MessageRate,
): Server {
  const ch = new Channel(t, {
    side: 'coordinator',
    clock,
    budget,
    maxMessageBytes,
    ...(minMessageRate !== undefined ? { minMessageRate } : {}),
  });
  const got: Message[] = [];
  let closed!: (e: AtpError | undefined) => void;
  const s: Server = { ch, got, closed: new Promise((r) => (closed = r)) };
  ch.start({
    message: (m) => {
      got.push(m);
      if (m.type === 'HELLO') ch.send(welcome({ roles: 2 }));
      else if (m.type === 'PING') ch.send({ type: 'PONG', stream: m.stream, nonce: m.nonce });
    },
    closed: (e) => closed(e),
  });
  return s;
}

async function connected(
  budget: MessageBudget,
  maxMessageBytes: number,
  clock?: Clock,
  minMessageRate?: MessageRate,
): Promise<{ peer: RawPeer; srv: Server }> {
  const [a, b] = memoryPair();
  const srv = server(b, budget, maxMessageBytes, clock, minMessageRate);
  const peer = await rawPeer(a);
  return { peer, srv };
}

const submitted = (s: Server): MessageOf<'SUBMIT'> | undefined => s.got.find((m): m is MessageOf<'SUBMIT'> => m.type === 'SUBMIT');

/**
 * Two connections sharing a budget that fits one 900 KiB message, each with a 1 s idle timeout: A
 * has started its SUBMIT (16 KiB fragments) and holds the memory, B has started its own and waits.
 */
async function oneWaitsForAnother(rate?: MessageRate) {
  const clock = new FakeClock();
  const budget = new MessageBudget(1024 * KiB);
  const A = await connected(budget, 1024 * KiB, clock, rate);
  const B = await connected(budget, 1024 * KiB, clock, rate);
  A.srv.ch.setIdleTimeout(1000);
  B.srv.ch.setIdleTimeout(1000);
  const fragsA = encodeFragments(submit(1, id(1), patterned(900 * KiB, 1)), 16 * KiB);
  const fragsB = encodeFragments(submit(1, id(2), patterned(900 * KiB, 2)), 16 * KiB);
  A.peer.send(fragsA[0]!);
  await settled();
  B.peer.send(fragsB[0]!);
  await settled();
  assert.equal(budget.waiting, 1, 'B waits for memory');
  return { clock, budget, A, B, fragsA, fragsB };
}

void describe('Channels sharing a message budget (ATP-4.5-10)', () => {
  void it('a message that does not fit waits with its window closed, control frames still answered, and goes on when memory frees', async () => {
    const budget = new MessageBudget(1024 * KiB);
    const A = await connected(budget, 1024 * KiB);
    const B = await connected(budget, 1024 * KiB);
    const payloadA = patterned(900 * KiB, 1);
    const payloadB = patterned(900 * KiB, 2);
    const fragsA = encodeFragments(submit(1, id(1), payloadA), 32 * KiB);
    const fragsB = encodeFragments(submit(1, id(2), payloadB), 32 * KiB);
    const bodyA = bodyLength(fragsA);
    const bodyB = bodyLength(fragsB);

    // A starts its message: the budget gives it its whole body.
    A.peer.send(fragsA[0]!);
    await settled();
    assert.equal(budget.usedBytes, bodyA);

    // B starts its own: it does not fit, so B's bytes are held and no WINDOW comes back.
    B.peer.send(fragsB[0]!);
    B.peer.send(fragsB[1]!);
    await settled();
    assert.equal(budget.waiting, 1);
    assert.equal(budget.usedBytes, bodyA, 'nothing allocated for B');
    assert.equal(B.peer.windows(), 0, 'B is given no window while its message waits');
    assert.ok(B.peer.window() < 32 * KiB, 'so B cannot send another fragment');

    // Control frames on B's connection are read and answered meanwhile.
    B.peer.send(encodeFrame({ type: 'PING', stream: 5, nonce: 42 }));
    const pong = await B.peer.next((m) => m.type === 'PONG');
    assert.equal((pong as MessageOf<'PONG'>).nonce, 42);

    // A finishes: its memory is no longer the budget's, and B is let in.
    await sendWithinWindow(A.peer, fragsA.slice(1));
    await settled();
    assert.equal(Buffer.compare(submitted(A.srv)!.payload, payloadA), 0);
    assert.equal(budget.waiting, 0);
    assert.equal(budget.usedBytes, bodyB);
    assert.ok(B.peer.windows() > 0, 'B gets the window back once it has memory');

    await sendWithinWindow(B.peer, fragsB.slice(2));
    await settled();
    assert.equal(Buffer.compare(submitted(B.srv)!.payload, payloadB), 0, 'B arrives whole, held bytes first');
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.peakBytes, bodyA > bodyB ? bodyA : bodyB, 'never both at once');
    assert.equal(budget.waited, 1);
  });

  void it('a message that arrives whole while it waits is delivered; it never held more than a window', async () => {
    const budget = new MessageBudget(100 * KiB);
    const A = await connected(budget, 100 * KiB);
    const B = await connected(budget, 100 * KiB);
    const fragsA = encodeFragments(submit(1, id(1), patterned(90 * KiB, 1)), 32 * KiB);
    A.peer.send(fragsA[0]!);
    await settled();
    // 40 KiB: within B's first 64 KiB of window.
    const payloadB = patterned(40 * KiB, 3);
    for (const f of encodeFragments(submit(1, id(2), payloadB), 16 * KiB)) B.peer.send(f);
    await settled();
    assert.equal(Buffer.compare(submitted(B.srv)!.payload, payloadB), 0);
    assert.equal(budget.waiting, 0, 'its wait was given up');
    assert.equal(budget.usedBytes, bodyLength(fragsA), 'only A holds the budget');
    assert.ok(B.peer.windows() > 0, 'and B got its window back');
  });

  void it('a connection that closes gives back what it held and gives up its wait', async () => {
    const budget = new MessageBudget(1024 * KiB);
    const A = await connected(budget, 1024 * KiB);
    const B = await connected(budget, 1024 * KiB);
    const C = await connected(budget, 1024 * KiB);
    A.peer.send(encodeFragments(submit(1, id(1), patterned(900 * KiB, 1)), 32 * KiB)[0]!);
    await settled();
    B.peer.send(encodeFragments(submit(1, id(2), patterned(900 * KiB, 2)), 32 * KiB)[0]!);
    const fragsC = encodeFragments(submit(1, id(3), patterned(600 * KiB, 3)), 32 * KiB);
    C.peer.send(fragsC[0]!);
    await settled();
    assert.equal(budget.waiting, 2);

    B.srv.ch.destroy();
    await settled();
    assert.equal(budget.waiting, 1, "B's wait is given up");
    A.srv.ch.destroy();
    await settled();
    assert.equal(budget.waiting, 0);
    assert.equal(budget.usedBytes, bodyLength(fragsC), "A's bytes are back; C holds its own");
    await sendWithinWindow(C.peer, fragsC.slice(1));
    await settled();
    assert.ok(submitted(C.srv) !== undefined);
    assert.equal(budget.usedBytes, 0);
  });

  void it('messages of an unregistered type are skipped and take nothing from the budget', async () => {
    const budget = new MessageBudget(64 * KiB);
    const A = await connected(budget, 1024 * KiB);
    // A GREASE type (0x?a?a pattern) of 100 KiB, fragmented by hand.
    const body = new Uint8Array(100 * KiB);
    const first = new Uint8Array(12 + 4 + 32 * KiB);
    const v = new DataView(first.buffer);
    v.setUint32(0, 4 + 32 * KiB);
    v.setUint16(4, 0x0a0a);
    v.setUint8(6, 0x01);
    v.setUint32(12, body.length);
    A.peer.send(first);
    await settled();
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.waiting, 0);
    assert.equal(await Promise.race([A.srv.closed, settled().then(() => 'open')]), 'open');
  });
});

void describe('a fragmented message that stops making progress (ATP-4.8-6)', () => {
  void it('closes the connection with ATP_ERR_IDLE_TIMEOUT although PINGs keep it alive, and gives its memory back', async () => {
    const clock = new FakeClock();
    const budget = new MessageBudget(1024 * KiB);
    const A = await connected(budget, 1024 * KiB, clock);
    A.srv.ch.setIdleTimeout(1000);
    const frames = encodeFragments(submit(1, id(1), patterned(900 * KiB, 1)), 32 * KiB);
    A.peer.send(frames[0]!);
    await settled();
    assert.equal(budget.usedBytes, bodyLength(frames));
    for (let i = 0; i < 4; i++) {
      clock.advance(300);
      A.peer.send(encodeFrame({ type: 'PING', stream: 0, nonce: i }));
      await settled();
    }
    assert.equal(A.srv.ch.closed, true, 'closed after 1 s without a fragment');
    const err = await A.srv.closed;
    assert.equal(err?.code, 'ATP_ERR_IDLE_TIMEOUT');
    assert.match(err.message, /received no fragment for 1\d\d\d ms/);
    assert.equal(budget.usedBytes, 0, 'its memory is back');
  });

  void it('leaves alone a message that keeps arriving, and one that waits for memory', async () => {
    const { clock, A, B, fragsA, fragsB } = await oneWaitsForAnother();
    // A goes on slowly, a fragment every 400 ms; B only PINGs: 4 s in all.
    for (let i = 1; i <= 10; i++) {
      clock.advance(400);
      await sendWithinWindow(A.peer, [fragsA[i]!]);
      B.peer.send(encodeFrame({ type: 'PING', stream: 0, nonce: i }));
      await settled();
    }
    assert.equal(A.srv.ch.closed, false, 'A made progress');
    assert.equal(B.srv.ch.closed, false, 'B waited for the coordinator, not the other way round');
    await sendWithinWindow(A.peer, fragsA.slice(11));
    await settled();
    assert.ok(submitted(A.srv) !== undefined);
    // B is let in; the time it waited does not count against it.
    clock.advance(600);
    await sendWithinWindow(B.peer, fragsB.slice(1, 3));
    await settled();
    clock.advance(600);
    await settled();
    assert.equal(B.srv.ch.closed, false);
    await sendWithinWindow(B.peer, fragsB.slice(3));
    await settled();
    assert.ok(submitted(B.srv) !== undefined);
  });
});

void describe('a fragmented message that crawls while others wait for memory (ATP-4.8-7)', () => {
  // 16 KiB every 400 ms is 40 KiB/s: below a minimum of 64 KiB/s, and never a stall (ATP-4.8-6).
  const rate: MessageRate = { bytesPerSecond: 64 * KiB, graceMs: 2000 };

  void it('ends the connection of the slow message once its grace has passed, and the waiting message gets the memory', async () => {
    const { clock, budget, A, B, fragsA, fragsB } = await oneWaitsForAnother(rate);
    let i = 1;
    // Within the grace period A is left alone, however slow.
    for (; i <= 4; i++) {
      clock.advance(400);
      await sendWithinWindow(A.peer, [fragsA[i]!]);
      B.peer.send(encodeFrame({ type: 'PING', stream: 0, nonce: i }));
      await settled();
    }
    assert.equal(A.srv.ch.closed, false, 'within its grace period');
    for (; i <= 8 && !A.srv.ch.closed; i++) {
      clock.advance(400);
      await sendWithinWindow(A.peer, [fragsA[i]!]);
      B.peer.send(encodeFrame({ type: 'PING', stream: 0, nonce: i }));
      await settled();
    }
    assert.equal(A.srv.ch.closed, true, 'A crawled while B waited');
    const err = await A.srv.closed;
    assert.equal(err?.code, 'ATP_ERR_IDLE_TIMEOUT');
    assert.match(
      err.message,
      /arrived at \d+ bytes\/s over \d+\.\d s, below the minimum of 65536 bytes\/s while other messages wait for memory/,
    );
    // B has A's memory now, and its message goes through.
    assert.equal(budget.waiting, 0);
    await sendWithinWindow(B.peer, fragsB.slice(1));
    await settled();
    assert.equal(Buffer.compare(submitted(B.srv)!.payload, patterned(900 * KiB, 2)), 0);
    assert.equal(B.srv.ch.closed, false);
  });

  void it('leaves a slow message alone while nobody waits, and one that keeps the rate', async () => {
    const clock = new FakeClock();
    const budget = new MessageBudget(2048 * KiB);
    const slow = await connected(budget, 1024 * KiB, clock, rate);
    const fast = await connected(budget, 1024 * KiB, clock, rate);
    const fragsS = encodeFragments(submit(1, id(1), patterned(900 * KiB, 1)), 16 * KiB);
    const fragsF = encodeFragments(submit(1, id(2), patterned(900 * KiB, 2)), 16 * KiB);
    slow.peer.send(fragsS[0]!);
    fast.peer.send(fragsF[0]!);
    await settled();
    assert.equal(budget.waiting, 0, 'both fit');
    let nextF = 1;
    const step = async (i: number): Promise<void> => {
      clock.advance(400);
      await sendWithinWindow(slow.peer, [fragsS[i]!]);
      await sendWithinWindow(fast.peer, fragsF.slice(nextF, nextF + 2));
      nextF += 2;
      await settled();
    };
    // 40 KiB/s and 80 KiB/s for 6 s: nobody waits, so neither is ended.
    for (let i = 1; i <= 15; i++) await step(i);
    assert.equal(slow.srv.ch.closed, false, 'nobody waited for its memory');
    // Now a third message waits: the slow one is ended, the one at 80 KiB/s is not.
    const waiter = await connected(budget, 1024 * KiB, clock, rate);
    waiter.peer.send(encodeFragments(submit(1, id(3), patterned(900 * KiB, 3)), 16 * KiB)[0]!);
    await settled();
    assert.equal(budget.waiting, 1);
    for (let i = 16; i <= 20 && !slow.srv.ch.closed; i++) await step(i);
    assert.equal(slow.srv.ch.closed, true);
    assert.equal((await slow.srv.closed)?.code, 'ATP_ERR_IDLE_TIMEOUT');
    assert.equal(fast.srv.ch.closed, false, 'it kept the rate');
    await sendWithinWindow(fast.peer, fragsF.slice(nextF));
    await settled();
    assert.equal(Buffer.compare(submitted(fast.srv)!.payload, patterned(900 * KiB, 2)), 0);
  });
});
