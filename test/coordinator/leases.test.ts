/**
 * Leases (ATP_SPEC §5, §6): credits, session-level renewal, expiry and re-issue, maximum duration,
 * fencing of every worker frame, cancellation and revoke.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { randomId, toHex } from '../../src/internal/ids.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { ArtifactRecord } from '../../src/store/memory-store.js';
import type { Message } from '../../src/wire/index.js';
import { code, producer, query, queryResult, settle, startCoordinator, submitOne, text, worker } from './harness.js';
import type { Peer, TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});
const enc = new TextEncoder();

async function submitMany(p: Peer, n: number, fields: Parameters<typeof submitOne>[3] = {}, prefix = 'a'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await submitOne(p, 'k', `${prefix}${i}`, fields)).id);
  return ids;
}

void describe('credits (ATP_SPEC §5.2)', () => {
  void it('never sends more LEASEs than credits, and each CREDIT adds to the balance', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitMany(p, 10);
    const w = await worker(tc.url, ['k'], 2);
    assert.equal((await w.take('LEASE')).length, 2);
    w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    assert.equal((await w.take('LEASE')).length, 1);
    w.send({ type: 'CREDIT', stream: 0, credits: 3 });
    assert.equal((await w.take('LEASE')).length, 3);
    w.send({ type: 'CREDIT', stream: 0, credits: 100 });
    assert.equal((await w.take('LEASE')).length, 4, 'the rest, and no more');
    // Credits left over are used by later submissions.
    await submitMany(p, 3, {}, 'later');
    assert.equal((await w.take('LEASE')).length, 3);
    p.close();
    w.close();
  });

  void it('sends no LEASE to a worker with zero credits', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitMany(p, 2);
    const w = await worker(tc.url, ['k'], 0);
    assert.equal((await w.take('LEASE')).length, 0);
    w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    assert.equal((await w.take('LEASE')).length, 1);
    p.close();
    w.close();
  });

  void it('closes with ATP_ERR_FLOW_CONTROL a session whose credits exceed 1,048,576 (ATP-5.2-3)', async () => {
    tc = await startCoordinator();
    const w = await worker(tc.url, ['k'], 1_000_000);
    w.send({ type: 'CREDIT', stream: 0, credits: 48_576 });
    await settle();
    assert.equal(w.isClosed, false);
    w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    assert.equal((await w.goaway()).code, code('ATP_ERR_FLOW_CONTROL'));
  });

  void it('fills a LEASE with the artifact, epoch 1, attempt 1, ttl, deadline and digest (ATP_SPEC §5.1)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'payload bytes', { leaseTtlMs: 4_000, maxDurationMs: 9_000, deadlineMs: 60_000 });
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    assert.equal(l.stream, 0);
    assert.deepEqual(l.artifactId, acc.artifactId);
    assert.equal(l.epoch, 1);
    assert.equal(l.attempt, 1);
    assert.equal(l.ttlMs, 4_000);
    assert.equal(l.maxDurationMs, 9_000);
    assert.equal(l.deadlineMs, 60_000);
    assert.equal(l.kind, 'k');
    assert.equal(text(l.payload), 'payload bytes');
    assert.deepEqual(l.digest, acc.digest);
    assert.equal(l.lastPartialSeq, 0);
    assert.equal(l.checkpoint.length, 0);
    assert.equal(l.leaseId.length, 16);
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 2);
    assert.equal(st.epoch, 1);
    p.close();
    w.close();
  });
});

void describe('renewal and expiry (ATP_SPEC §5.3, §5.4, §5.6)', () => {
  void it('keeps every lease of a session alive past its ttl with an empty RENEW, and loses them all when renewals stop', async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    await submitMany(p, 3);
    const w = await worker(tc.url, ['k'], 3);
    const leases = [await w.next('LEASE'), await w.next('LEASE'), await w.next('LEASE')];
    for (let i = 0; i < 5; i++) {
      tc.clock.advance(900);
      const s = w.stream();
      w.send({ type: 'RENEW', stream: s, leaseIds: [] });
      const r = await w.next('RENEWED', (m) => m.stream === s);
      assert.equal(r.renewed, 3);
      assert.equal(r.ttlMs, 1_000);
    }
    assert.equal((await w.take('LEASE_LOST')).length, 0, 'renewed leases survive 4.5 s with a 1 s ttl');
    tc.clock.advance(1_000);
    await settle();
    assert.equal((await w.take('LEASE_LOST')).length, 0, 'not expired at exactly renewedAt + ttl (ATP-5.3-6)');
    tc.clock.advance(1);
    const lost = await w.take('LEASE_LOST');
    assert.equal(lost.length, 3);
    for (const m of lost) {
      assert.equal(m.code, code('ATP_ERR_LEASE_EXPIRED'));
      assert.equal(m.stream, 0);
      assert.ok(
        leases.some((l) => toHex(l.leaseId) === toHex(m.leaseId) && l.epoch === m.epoch && toHex(l.artifactId) === toHex(m.artifactId)),
      );
    }
    p.close();
    w.close();
  });

  void it("answers a RENEW that lists a stale id with LEASE_LOST on its stream, and that id extends nothing, not even another session's lease (ATP-5.4-3)", async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    await submitMany(p, 1);
    const holder = await worker(tc.url, ['k'], 1);
    const l = await holder.next('LEASE');
    const other = await worker(tc.url, ['k'], 0);
    tc.clock.advance(800);
    const bogus = randomId(16);
    other.send({ type: 'RENEW', stream: 5, leaseIds: [l.leaseId, bogus] });
    const stale = [await other.next('LEASE_LOST', (m) => m.stream === 5), await other.next('LEASE_LOST', (m) => m.stream === 5)];
    assert.deepEqual(new Set(stale.map((m) => toHex(m.leaseId))), new Set([toHex(l.leaseId), toHex(bogus)]));
    for (const m of stale) assert.equal(m.code, code('ATP_ERR_STALE_LEASE'));
    const r = await other.next('RENEWED', (m) => m.stream === 5);
    assert.equal(r.renewed, 0);
    // The holder never renewed: its lease ends at grant + ttl, not later.
    tc.clock.advance(201);
    const lost = await holder.next('LEASE_LOST');
    assert.equal(lost.code, code('ATP_ERR_LEASE_EXPIRED'));
    p.close();
    holder.close();
    other.close();
  });

  void it('renews exactly the listed leases of the session', async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    await submitMany(p, 2);
    const w = await worker(tc.url, ['k'], 2);
    const [a, b] = [await w.next('LEASE'), await w.next('LEASE')];
    tc.clock.advance(800);
    w.send({ type: 'RENEW', stream: 3, leaseIds: [a.leaseId] });
    assert.equal((await w.next('RENEWED', (m) => m.stream === 3)).renewed, 1);
    tc.clock.advance(201);
    const lost = await w.next('LEASE_LOST');
    assert.deepEqual(lost.leaseId, b.leaseId);
    await settle();
    assert.equal((await w.take('LEASE_LOST')).length, 0, 'the listed lease is still held');
    w.send({ type: 'COMPLETE', stream: 7, leaseId: a.leaseId, epoch: a.epoch, result: new Uint8Array(0) });
    await w.next('ACK', (m) => m.stream === 7);
    p.close();
    w.close();
  });

  void it("returns an expired lease's artifact to PENDING and re-issues it at epoch + 1 with a new lease id (ATP-5.6-1, ATP-5.6-3)", async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'x');
    const a = await worker(tc.url, ['k'], 1);
    const l1 = await a.next('LEASE');
    tc.clock.advance(1_001);
    await a.next('LEASE_LOST');
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 1);
    assert.equal(st.epoch, 1);
    const b = await worker(tc.url, ['k'], 1);
    const l2 = await b.next('LEASE');
    assert.equal(l2.epoch, 2);
    assert.equal(l2.attempt, 2);
    assert.notDeepEqual(l2.leaseId, l1.leaseId);
    b.send({ type: 'COMPLETE', stream: 1, leaseId: l2.leaseId, epoch: 2, result: enc.encode('b') });
    await b.next('ACK');
    assert.equal(text((await queryResult(p, acc.artifactId)).result), 'b');
    p.close();
    a.close();
    b.close();
  });

  void it('ends a lease at its maximum duration whatever its renewals (ATP_SPEC §5.5)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'bounded', { leaseTtlMs: 1_000, maxDurationMs: 2_500 });
    const w = await worker(tc.url, ['k'], 1);
    await w.next('LEASE');
    for (let i = 0; i < 4; i++) {
      tc.clock.advance(600);
      w.send({ type: 'RENEW', stream: 1 + 2 * i, leaseIds: [] });
      await w.next('RENEWED');
    }
    assert.equal((await w.take('LEASE_LOST')).length, 0);
    tc.clock.advance(101); // 2 501 ms since the grant
    assert.equal((await w.next('LEASE_LOST')).code, code('ATP_ERR_LEASE_EXPIRED'));
    p.close();
    w.close();
  });
});

void describe('fencing (ATP_SPEC §5.7)', () => {
  /** One artifact whose first lease (held by `old`) expired and whose second lease is held by `cur`. */
  async function reissued() {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'fenced');
    const old = await worker(tc.url, ['k'], 1);
    const l1 = await old.next('LEASE');
    old.send({ type: 'CHECKPOINT', stream: 1, leaseId: l1.leaseId, epoch: 1, data: enc.encode('cp-1') });
    await old.next('ACK', (m) => m.stream === 1);
    old.send({ type: 'PARTIAL', stream: 0, leaseId: l1.leaseId, epoch: 1, seq: 1, data: enc.encode('p1') });
    await settle();
    tc.clock.advance(1_001);
    await old.next('LEASE_LOST', (m) => m.stream === 0);
    const cur = await worker(tc.url, ['k'], 1);
    const l2 = await cur.next('LEASE');
    assert.equal(l2.epoch, 2);
    assert.equal(text(l2.checkpoint), 'cp-1');
    assert.equal(l2.lastPartialSeq, 1);
    return { p, acc, old, l1, cur, l2 };
  }

  const frames = (l: { leaseId: Uint8Array; epoch: number }, s: number): Message[] => [
    { type: 'RENEW', stream: s, leaseIds: [l.leaseId] },
    { type: 'PARTIAL', stream: s + 2, leaseId: l.leaseId, epoch: l.epoch, seq: 2, data: enc.encode('stale partial') },
    { type: 'CHECKPOINT', stream: s + 4, leaseId: l.leaseId, epoch: l.epoch, data: enc.encode('stale checkpoint') },
    { type: 'COMPLETE', stream: s + 6, leaseId: l.leaseId, epoch: l.epoch, result: enc.encode('stale result') },
    { type: 'FAIL', stream: s + 8, leaseId: l.leaseId, epoch: l.epoch, code: 0, retryable: 0, message: 'stale fail' },
    {
      type: 'RELEASE',
      stream: s + 10,
      leaseId: l.leaseId,
      epoch: l.epoch,
      hasCheckpoint: 1,
      checkpoint: enc.encode('stale release'),
      reason: '',
    },
  ];

  void it('answers every frame under an expired lease with an immediate LEASE_LOST (ATP_ERR_LEASE_EXPIRED) on its stream and changes nothing', async () => {
    const { p, acc, old, l1, cur, l2 } = await reissued();
    for (const f of frames(l1, 101)) {
      old.send(f);
      const lost = await old.next('LEASE_LOST', (m) => m.stream === f.stream);
      assert.equal(lost.code, code('ATP_ERR_LEASE_EXPIRED'), f.type);
      assert.deepEqual(lost.leaseId, l1.leaseId, f.type);
      if (f.type !== 'RENEW') {
        assert.equal(lost.epoch, 1);
        assert.deepEqual(lost.artifactId, acc.artifactId, f.type);
      }
    }
    await settle();
    assert.equal(
      old.log.filter((m) => m.type === 'ACK' || m.type === 'RENEWED' || m.type === 'ERROR').filter((m) => m.stream > 100).length,
      1,
      'only RENEWED (renewed 0) besides LEASE_LOST',
    );
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 2);
    assert.equal(st.epoch, 2);
    assert.equal(st.lastPartialSeq, 1);
    // The current holder is untouched: its result is the one accepted, with the checkpoint of lease 1.
    cur.send({ type: 'COMPLETE', stream: 1, leaseId: l2.leaseId, epoch: 2, result: enc.encode('current') });
    await cur.next('ACK', (m) => m.stream === 1);
    const r = await queryResult(p, acc.artifactId);
    assert.equal(text(r.result), 'current');
    assert.equal(text(r.checkpoint), 'cp-1');
    p.close();
    old.close();
    cur.close();
  });

  void it('answers frames naming the current lease id with a wrong epoch, or sent by another session, with ATP_ERR_STALE_LEASE and changes nothing', async () => {
    const { p, acc, old, cur, l2 } = await reissued();
    for (const f of frames({ leaseId: l2.leaseId, epoch: 1 }, 201)) {
      if (f.type === 'RENEW') continue; // RENEW names lease ids only
      cur.send(f);
      assert.equal((await cur.next('LEASE_LOST', (m) => m.stream === f.stream)).code, code('ATP_ERR_STALE_LEASE'), f.type);
    }
    for (const f of frames(l2, 301)) {
      if (f.type === 'RENEW') continue;
      old.send(f);
      assert.equal(
        (await old.next('LEASE_LOST', (m) => m.stream === f.stream)).code,
        code('ATP_ERR_STALE_LEASE'),
        `${f.type} from another session`,
      );
    }
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 2);
    assert.equal(st.lastPartialSeq, 1);
    // The holder still holds the lease: it keeps renewing it, and it expires when it stops.
    const s = cur.stream();
    cur.send({ type: 'RENEW', stream: s, leaseIds: [] });
    assert.equal((await cur.next('RENEWED', (m) => m.stream === s)).renewed, 1);
    tc!.clock.advance(1_001);
    const lost = await cur.next('LEASE_LOST', (m) => m.stream === 0);
    assert.deepEqual(lost.leaseId, l2.leaseId);
    assert.equal((await query(p, acc.artifactId)).state, 1, 'back to PENDING after the expiry');
    p.close();
    old.close();
    cur.close();
  });

  void it('accepts a result exactly once: a second COMPLETE under the same lease gets LEASE_LOST and the stored result stays (ATP-6.1-2)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'once');
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    w.sendAll([
      { type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: enc.encode('first') },
      { type: 'COMPLETE', stream: 3, leaseId: l.leaseId, epoch: 1, result: enc.encode('second') },
      { type: 'FAIL', stream: 5, leaseId: l.leaseId, epoch: 1, code: 0, retryable: 0, message: '' },
    ]);
    await w.next('ACK', (m) => m.stream === 1 && m.ackedType === 0x0027);
    assert.equal((await w.next('LEASE_LOST', (m) => m.stream === 3)).code, code('ATP_ERR_STALE_LEASE'));
    await w.next('LEASE_LOST', (m) => m.stream === 5);
    const r = await queryResult(p, acc.artifactId);
    assert.equal(r.state, 3);
    assert.equal(text(r.result), 'first');
    assert.equal(r.digest.alg, 1);
    p.close();
    w.close();
  });

  void it('ignores a resent partial and refuses a gap with ATP_ERR_INVALID_ARGUMENT (ATP_SPEC §9.1)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'partials');
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    const part = (stream: number, seq: number) => ({
      type: 'PARTIAL' as const,
      stream,
      leaseId: l.leaseId,
      epoch: 1,
      seq,
      data: enc.encode(`p${seq}`),
    });
    w.sendAll([part(0, 1), part(0, 2), part(9, 2), part(11, 4)]);
    const e = await w.next('ERROR', (m) => m.stream === 11);
    assert.equal(e.code, code('ATP_ERR_INVALID_ARGUMENT'));
    await settle();
    assert.equal(w.log.filter((m) => m.type === 'ERROR' || m.type === 'LEASE_LOST').length, 1);
    assert.equal((await query(p, acc.artifactId)).lastPartialSeq, 2);
    p.close();
    w.close();
  });
});

void describe('cancel and revoke (ATP_SPEC §8)', () => {
  void it('cancels pending and leased artifacts at once, revokes the leases, and fences the cancelled lease with ATP_ERR_CANCELLED', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const root = await submitOne(p, 'k', 'root');
    const child = await submitOne(p, 'other', 'child', { parentId: root.artifactId });
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    assert.deepEqual(l.artifactId, root.artifactId);
    p.send({ type: 'CANCEL', stream: 31, artifactId: root.artifactId, subtree: 1, reason: 'no longer needed' });
    const cr = await p.next('CANCEL_RESULT', (m) => m.stream === 31);
    assert.equal(cr.cancelled, 2);
    assert.equal(cr.alreadyFinished, 0);
    assert.equal(cr.stopping, 1);
    const rv = await w.next('REVOKE');
    assert.equal(rv.code, code('ATP_ERR_CANCELLED'));
    assert.equal(rv.reason, 'no longer needed');
    assert.equal(rv.deadlineMs, 5_000);
    for (const id of [root.artifactId, child.artifactId]) {
      const r = await queryResult(p, id);
      assert.equal(r.state, 5);
      assert.equal(r.code, code('ATP_ERR_CANCELLED'));
    }
    w.send({ type: 'PARTIAL', stream: 3, leaseId: l.leaseId, epoch: 1, seq: 1, data: enc.encode('x') });
    assert.equal((await w.next('LEASE_LOST', (m) => m.stream === 3)).code, code('ATP_ERR_CANCELLED'));
    w.send({ type: 'RENEW', stream: 5, leaseIds: [l.leaseId] });
    assert.equal((await w.next('LEASE_LOST', (m) => m.stream === 5)).code, code('ATP_ERR_CANCELLED'));
    // Cancelling again counts both as finished.
    p.send({ type: 'CANCEL', stream: 33, artifactId: root.artifactId, subtree: 1, reason: '' });
    const again = await p.next('CANCEL_RESULT', (m) => m.stream === 33);
    assert.deepEqual([again.cancelled, again.alreadyFinished, again.stopping], [0, 2, 0]);
    p.close();
    w.close();
  });

  void it('reports a revoke that is not acknowledged within the cancel deadline, and still fences the lease', async () => {
    tc = await startCoordinator({ cancelDeadlineMs: 1_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'stubborn');
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    p.send({ type: 'CANCEL', stream: 1, artifactId: acc.artifactId, subtree: 0, reason: '' });
    await w.next('REVOKE');
    tc.clock.advance(1_000);
    await settle();
    assert.ok(tc.events.some((e) => e.event === 'revoke-timeout' && e['leaseId'] === toHex(l.leaseId)));
    w.send({ type: 'COMPLETE', stream: 3, leaseId: l.leaseId, epoch: 1, result: new Uint8Array(0) });
    assert.ok([code('ATP_ERR_CANCELLED'), code('ATP_ERR_STALE_LEASE')].includes((await w.next('LEASE_LOST', (m) => m.stream === 3)).code));
    assert.equal((await query(p, acc.artifactId)).state, 5);
    p.close();
    w.close();
  });
});

/** A memory store whose commits wait until the test opens the gate (a slow durable write). */
class GatedStore extends MemoryStore {
  gated = false;
  #waiting: Array<() => void> = [];
  protected override commit<T>(value: T, changed: readonly ArtifactRecord[]): Promise<T> {
    if (!this.gated || changed.length === 0) return Promise.resolve(value);
    return new Promise((resolve) => this.#waiting.push(() => resolve(value)));
  }
  open_(): void {
    this.gated = false;
    for (const f of this.#waiting.splice(0)) f();
  }
}

void describe('expiry racing a result that is being made durable', () => {
  void it('a COMPLETE decided before the ttl ran out is acknowledged, and the lease is not reported lost', async () => {
    const store = new GatedStore();
    tc = await startCoordinator({ store, leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'slow write');
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    store.gated = true;
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: enc.encode('kept') });
    await settle();
    tc.clock.advance(1_001); // the expiry check runs while the result is not yet durable
    await settle();
    store.open_();
    await w.next('ACK', (m) => m.stream === 1);
    await settle();
    assert.equal((await w.take('LEASE_LOST')).length, 0, 'no LEASE_LOST for a lease whose result was accepted');
    assert.equal(text((await queryResult(p, acc.artifactId)).result), 'kept');
    assert.equal(tc.events.filter((e) => e.event === 'lease-lost').length, 0);
    p.close();
    w.close();
  });
});
