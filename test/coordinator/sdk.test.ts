/**
 * The worker and client SDKs against a coordinator on a fake clock (ATP_SPEC §6, §8, §9, §10): what a
 * handler sees and how its outcome travels, revoke and abort, retries, partials across leases, late
 * results and quorum, and a producer that reconnects.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { AtpError } from '../../src/errors.js';
import { NonRetryableError, Worker } from '../../src/worker/worker.js';
import type { Handler } from '../../src/worker/worker.js';
import { code, producer, settle, startCoordinator, submitOne, worker } from './harness.js';
import type { TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers = [];
  await tc?.close();
  tc = undefined;
});
const dec = new TextDecoder();
const enc = new TextEncoder();

async function startWorker(handlers: Record<string, Handler>, concurrency = 1, nodeId?: Uint8Array): Promise<Worker> {
  const w = new Worker({ url: tc!.url, clock: tc!.clock, concurrency, ...(nodeId !== undefined ? { nodeId } : {}) });
  for (const [k, h] of Object.entries(handlers)) w.handle(k, h);
  await w.start();
  closers.push(() => w.close());
  return w;
}

async function startClient(): Promise<Client> {
  const c = await Client.connect(tc!.url, { clock: tc!.clock });
  closers.push(() => c.close());
  return c;
}

void describe('worker SDK', () => {
  void it('retries a handler that throws, fails at once on NonRetryableError, and reports a kind it has no handler for', async () => {
    tc = await startCoordinator();
    let tries = 0;
    await startWorker({
      flaky: (a) => {
        tries++;
        return a.attempt < 3 ? Promise.reject(new Error(`attempt ${a.attempt} failed`)) : Promise.resolve(`ok on attempt ${a.attempt}`);
      },
      fatal: () => Promise.reject(new NonRetryableError('bad input')),
    });
    const c = await startClient();
    const flaky = await c.submit({ kind: 'flaky', payload: '1', maxAttempts: 5 });
    const fatal = await c.submit({ kind: 'fatal', payload: '2', maxAttempts: 5 });
    const r1 = await flaky.result();
    assert.equal(r1.state, 'COMPLETED');
    assert.equal(dec.decode(r1.result), 'ok on attempt 3');
    assert.equal(tries, 3);
    const r2 = await fatal.result();
    assert.equal(r2.state, 'FAILED');
    assert.equal(r2.code, 'ATP_ERR_HANDLER_FATAL');
    assert.equal(r2.message, 'bad input');
  });

  void it('a cancel aborts ctx.signal with ATP_ERR_CANCELLED and the SDK answers REVOKE_ACK once the handler stopped', async () => {
    tc = await startCoordinator();
    let reason: unknown;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    await startWorker({
      slow: async (_a, ctx) => {
        started();
        await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r()));
        reason = ctx.signal.reason;
        return 'ignored';
      },
    });
    const c = await startClient();
    const h = await c.submit({ kind: 'slow', payload: 'x' });
    await running;
    const summary = await h.cancel({ reason: 'user asked' });
    assert.equal(summary.stopping, 1);
    const out = await h.result();
    assert.equal(out.state, 'CANCELLED');
    assert.equal(out.message, 'user asked');
    await settle();
    assert.equal((reason as { code?: string }).code, 'ATP_ERR_CANCELLED');
    assert.ok(tc.events.some((e) => e.event === 'revoke-ack'));
  });

  void it('a lease lost by expiry aborts the handler at once and its result is never sent; the re-issue carries the checkpoint and continues the partial numbering', async () => {
    tc = await startCoordinator();
    const seen: Array<{ attempt: number; checkpoint: string | undefined; lastPartialSeq: number }> = [];
    let firstAborted: unknown;
    await startWorker(
      {
        job: async (a, ctx) => {
          seen.push({
            attempt: a.attempt,
            checkpoint: ctx.checkpointData && dec.decode(ctx.checkpointData),
            lastPartialSeq: ctx.lastPartialSeq,
          });
          if (a.attempt === 1) {
            ctx.partial('one');
            ctx.partial('two');
            await ctx.checkpoint('after two');
            // Stop renewing: the lease runs out while this handler still holds it.
            await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r()));
            firstAborted = ctx.signal.reason;
            return 'late result';
          }
          ctx.partial('three');
          return 'second result';
        },
      },
      2,
    );
    const c = await startClient();
    const h = await c.submit({ kind: 'job', payload: 'p', leaseTtlMs: 1_000, follow: 'all' });
    await settle(30);
    // One jump of the clock past the ttl: the worker's renewals are due in between but cannot reach
    // the coordinator before its expiry check runs, as with a frozen worker.
    tc.clock.advance(1_001);
    await settle(30);
    const out = await h.result();
    assert.equal(dec.decode(out.result), 'second result');
    assert.equal((firstAborted as { code?: string }).code, 'ATP_ERR_LEASE_EXPIRED', 'the abort reason says why');
    assert.deepEqual(seen, [
      { attempt: 1, checkpoint: undefined, lastPartialSeq: 0 },
      { attempt: 2, checkpoint: 'after two', lastPartialSeq: 2 },
    ]);
    const partials: string[] = [];
    for await (const ev of h.events()) if (ev.type === 'partial') partials.push(`${ev.seq}:${dec.decode(ev.data)}`);
    assert.deepEqual(partials, ['1:one', '2:two', '3:three']);
  });

  void it('renews every lease with one RENEW per heartbeat, so short-ttl leases outlive many ttls', async () => {
    tc = await startCoordinator();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await startWorker({ k: async () => gate.then(() => 'done') }, 4);
    const c = await startClient();
    const hs = await c.submitMany([0, 1, 2, 3].map((i) => ({ kind: 'k', payload: `${i}`, leaseTtlMs: 300 })));
    await settle(30);
    for (let i = 0; i < 40; i++) {
      tc.clock.advance(50);
      await settle();
    }
    release();
    for (const h of hs) assert.equal((await h.result()).state, 'COMPLETED');
    assert.equal(tc.events.filter((e) => e.event === 'lease-lost').length, 0);
  });
});

void describe('late results and quorum (ATP_SPEC §10)', () => {
  void it('ACCEPT_IF_UNRESOLVED takes the late result of an expired lease and revokes the current holder', async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'late', { latePolicy: 1 });
    const a = await worker(tc.url, ['k'], 1);
    const l1 = await a.next('LEASE');
    tc.clock.advance(1_001);
    await a.next('LEASE_LOST');
    const b = await worker(tc.url, ['k'], 1);
    const l2 = await b.next('LEASE');
    a.send({ type: 'COMPLETE', stream: 1, leaseId: l1.leaseId, epoch: 1, result: enc.encode('late but fine') });
    await a.next('ACK', (m) => m.stream === 1);
    const rv = await b.next('REVOKE');
    assert.deepEqual(rv.leaseId, l2.leaseId);
    assert.equal(rv.code, code('ATP_ERR_STALE_LEASE'));
    b.send({ type: 'COMPLETE', stream: 1, leaseId: l2.leaseId, epoch: 2, result: enc.encode('current') });
    await b.next('LEASE_LOST', (m) => m.stream === 1);
    p.send({ type: 'QUERY', stream: 9, artifactId: acc.artifactId, withResult: 1 });
    const r = await p.next('RESULT', (m) => m.stream === 9);
    assert.equal(dec.decode(r.result), 'late but fine');
    for (const x of [p, a, b]) x.close();
  });

  void it('REJECT refuses the late result of an expired lease', async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'strict');
    const a = await worker(tc.url, ['k'], 1);
    const l1 = await a.next('LEASE');
    tc.clock.advance(1_001);
    await a.next('LEASE_LOST');
    a.send({ type: 'COMPLETE', stream: 1, leaseId: l1.leaseId, epoch: 1, result: enc.encode('late') });
    assert.equal((await a.next('LEASE_LOST', (m) => m.stream === 1)).code, code('ATP_ERR_LEASE_EXPIRED'));
    p.close();
    a.close();
  });

  void it('QUORUM 2 of 3 leases on three distinct nodes, completes when two results agree and revokes the third', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'vote', { latePolicy: 2, quorumK: 2, quorumN: 3 });
    const ws = [1, 2, 3].map((n) => worker(tc!.url, ['k'], 2, { nodeId: Buffer.alloc(16, n) }));
    const peers = await Promise.all(ws);
    const leases = await Promise.all(peers.map((w) => w.next('LEASE')));
    assert.equal(new Set(leases.map((l) => l.epoch)).size, 3, 'three leases, three epochs');
    await settle();
    for (const w of peers) assert.equal((await w.take('LEASE')).length, 0, 'one lease per node');
    peers[0]!.send({ type: 'COMPLETE', stream: 1, leaseId: leases[0]!.leaseId, epoch: leases[0]!.epoch, result: enc.encode('42') });
    await peers[0]!.next('ACK');
    peers[1]!.send({ type: 'COMPLETE', stream: 1, leaseId: leases[1]!.leaseId, epoch: leases[1]!.epoch, result: enc.encode('42') });
    await peers[1]!.next('ACK');
    const rv = await peers[2]!.next('REVOKE');
    assert.equal(rv.code, code('ATP_ERR_STALE_LEASE'));
    p.send({ type: 'QUERY', stream: 9, artifactId: acc.artifactId, withResult: 1 });
    const r = await p.next('RESULT', (m) => m.stream === 9);
    assert.equal(r.state, 3);
    assert.equal(dec.decode(r.result), '42');
    for (const x of [p, ...peers]) x.close();
  });

  void it('QUORUM fails with ATP_ERR_QUORUM_DISAGREEMENT when no k results can agree', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'split', { latePolicy: 2, quorumK: 2, quorumN: 2 });
    const peers = await Promise.all([1, 2].map((n) => worker(tc!.url, ['k'], 1, { nodeId: Buffer.alloc(16, n) })));
    const leases = await Promise.all(peers.map((w) => w.next('LEASE')));
    for (const [i, w] of peers.entries()) {
      w.send({ type: 'COMPLETE', stream: 1, leaseId: leases[i]!.leaseId, epoch: leases[i]!.epoch, result: enc.encode(`answer ${i}`) });
      await w.next('ACK');
    }
    p.send({ type: 'QUERY', stream: 9, artifactId: acc.artifactId, withResult: 1 });
    const r = await p.next('RESULT', (m) => m.stream === 9);
    assert.equal(r.state, 4);
    assert.equal(r.code, code('ATP_ERR_QUORUM_DISAGREEMENT'));
    for (const x of [p, ...peers]) x.close();
  });
});

void describe('client SDK', () => {
  void it('a producer that loses its connection reconnects and still gets every result', async () => {
    tc = await startCoordinator();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await startWorker({ k: async (a) => gate.then(() => `r-${dec.decode(a.payload)}`) }, 16);
    const c = await startClient();
    const hs = await c.submitMany(Array.from({ length: 20 }, (_, i) => ({ kind: 'k', payload: `${i}` })));
    c.connection.destroyConnection();
    await settle(30);
    release();
    const outs = await Promise.all(hs.map((h) => h.result()));
    outs.forEach((o, i) => assert.equal(dec.decode(o.result), `r-${i}`));
  });

  void it(
    'after a reconnect, a handle whose artifact the coordinator no longer knows rejects with ATP_ERR_NOT_FOUND instead of waiting for ever',
    { timeout: 20_000 },
    async () => {
      // A coordinator that keeps nothing across a restart (the memory store); retention (ATP_SPEC
      // §3.11) leads to the same answer, an artifact the coordinator does not know.
      tc = await startCoordinator();
      const url = tc.url;
      const clock = tc.clock;
      const c = await startClient();
      const lost = await c.submit({ kind: 'nobody', payload: 'lost with the coordinator' });
      const followed = c.follow('00112233445566778899aabbccddeeff');
      await tc.close();
      tc = undefined;
      await settle();
      const next = new Coordinator({ clock });
      await next.listen(url);
      closers.push(() => next.close());
      for (let i = 0; i < 20 && !c.connection.connected; i++) {
        clock.advance(1_000);
        await settle();
      }
      await assert.rejects(lost.result(), (err: AtpError) => err.code === 'ATP_ERR_NOT_FOUND' && err.message.includes(lost.id));
      // A handle that follows an id this client never saw accepted keeps waiting: it may be submitted yet (ATP-7.1-1).
      const h = await c.submit({ kind: 'nobody', payload: 'followed', id: '00112233445566778899aabbccddeeff' });
      assert.equal(h.id, followed.id);
      const cancelled = await c.cancel(h.id);
      assert.equal(cancelled.cancelled, 1);
      assert.equal((await followed.result()).state, 'CANCELLED');
    },
  );

  void it('follows an artifact submitted elsewhere, and reads the outcome of a finished one', async () => {
    tc = await startCoordinator();
    await startWorker({ k: (a) => Promise.resolve(`r-${dec.decode(a.payload)}`) });
    const c1 = await startClient();
    const c2 = await startClient();
    const h = await c1.submit({ kind: 'k', payload: 'shared', follow: 'none' });
    const followed = c2.follow(h.id);
    assert.equal(dec.decode((await followed.result()).result), 'r-shared');
    const o = await c1.outcome(h.id);
    assert.equal(o?.state, 'COMPLETED');
    assert.equal(await c1.outcome('00112233445566778899aabbccddeeff'), undefined);
  });

  void it('cancels a whole subtree, present and future', async () => {
    tc = await startCoordinator();
    const c = await startClient();
    const root = await c.submit({ kind: 'none', payload: 'root' });
    const child = await c.submit({ kind: 'none', payload: 'child', parentId: root.id });
    const summary = await root.cancel({ subtree: true });
    assert.deepEqual(summary, { cancelled: 2, alreadyFinished: 0, stopping: 0 });
    assert.equal((await child.result()).state, 'CANCELLED');
    const late = await c.submit({ kind: 'none', payload: 'late child', parentId: child.id });
    assert.equal(late.acceptedState, 'CANCELLED');
    assert.equal((await late.result()).state, 'CANCELLED');
  });
});
