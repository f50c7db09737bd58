/**
 * Submission (ATP_SPEC §3): acceptance, pipelining, idempotent resubmit and memoization, conflicts,
 * parents, priorities, deadlines and the attempt limit.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { artifactDigest, toHex } from '../../src/internal/ids.js';
import { code, producer, query, queryResult, settle, startCoordinator, submit, submitOne, text, worker } from './harness.js';
import type { TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});
const enc = new TextEncoder();

void describe('SUBMIT (ATP_SPEC §3.2, §3.3)', () => {
  void it('accepts an artifact as PENDING with the content digest and the content-derived id', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'resize', 'img-1');
    const digest = artifactDigest('resize', enc.encode('img-1'));
    assert.equal(acc.state, 1);
    assert.equal(acc.duplicate, 0);
    assert.equal(acc.digest.alg, 1);
    assert.deepEqual(Buffer.from(acc.digest.value), Buffer.from(digest));
    assert.equal(acc.id, toHex(digest.subarray(0, 16)));
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 1);
    assert.equal(st.kind, 'resize');
    assert.equal(st.epoch, 0);
    p.close();
  });

  void it('answers a pipelined batch of 1,000 SUBMITs in one write with 1,000 ACCEPTED on their own streams', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const msgs = Array.from({ length: 1000 }, (_, i) => submit(2 * i + 1, 'batch', `item-${i}`));
    p.sendAll(msgs);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const a = await p.next('ACCEPTED');
      assert.equal(a.state, 1);
      assert.equal(a.duplicate, 0);
      assert.deepEqual(a.artifactId, msgs[(a.stream - 1) / 2]!.artifactId);
      seen.add(a.stream);
    }
    assert.equal(seen.size, 1000);
    assert.equal((await tc.coord.store.counts()).PENDING, 1000);
    p.close();
  });

  void it('treats a resubmit of the same content as a duplicate that ignores its options, and answers RESULT at once for a finished one (ATP-3.3-2, ATP-3.3-4)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const first = await submitOne(p, 'k', 'same', { priority: 1, tags: ['t1'] });
    const dup = await submitOne(p, 'k', 'same', { priority: 200, tags: ['t2'], parentId: Buffer.alloc(16, 9) });
    assert.equal(dup.duplicate, 1);
    assert.equal(dup.state, 1);
    assert.equal(dup.id, first.id);
    assert.equal((await tc.coord.store.counts()).PENDING, 1);

    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: l.epoch, result: enc.encode('done') });
    await w.next('ACK', (m) => m.stream === 1);

    const s = p.stream();
    p.send(submit(s, 'k', 'same', { watch: 1 }));
    const acc = await p.next('ACCEPTED', (m) => m.stream === s);
    assert.equal(acc.duplicate, 1);
    assert.equal(acc.state, 3);
    const r = await p.next('RESULT', (m) => m.stream === s);
    assert.equal(r.state, 3);
    assert.equal(text(r.result), 'done');
    assert.equal((await w.take('LEASE')).length, 0, 'a duplicate is not leased again');
    p.close();
    w.close();
  });

  void it('refuses the same id with other content with ATP_ERR_CONFLICT and keeps the stored artifact (ATP-3.3-3)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const id = Buffer.alloc(16, 0xab);
    await submitOne(p, 'k', 'one', { artifactId: id });
    p.send(submit(11, 'k', 'two', { artifactId: id }));
    const e = await p.next('ERROR', (m) => m.stream === 11);
    assert.equal(e.code, code('ATP_ERR_CONFLICT'));
    assert.deepEqual(Buffer.from(e.subject), id);
    const w = await worker(tc.url, ['k'], 1);
    assert.equal(text((await w.next('LEASE')).payload), 'one');
    p.close();
    w.close();
  });

  void it('refuses a parent that does not exist with ATP_ERR_NOT_FOUND, and accepts a child of an existing parent', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    p.send(submit(3, 'k', 'orphan', { parentId: Buffer.alloc(16, 1) }));
    assert.equal((await p.next('ERROR', (m) => m.stream === 3)).code, code('ATP_ERR_NOT_FOUND'));
    const parent = await submitOne(p, 'k', 'parent');
    const child = await submitOne(p, 'k', 'child', { parentId: parent.artifactId });
    const st = await query(p, child.artifactId);
    assert.deepEqual(st.parentId, parent.artifactId);
    assert.equal((await tc.coord.store.counts()).PENDING, 2);
    p.close();
  });

  void it('refuses invalid fields with ATP_ERR_INVALID_ARGUMENT and creates nothing', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const bad = [
      submit(1, 'k', 'a', { artifactId: new Uint8Array(16) }),
      submit(3, 'bad kind!', 'a'),
      submit(5, 'k', 'b', { leaseTtlMs: 10 }),
      submit(7, 'k', 'c', { latePolicy: 9 }),
      submit(9, 'k', 'd', { latePolicy: 2, quorumK: 3, quorumN: 2 }),
    ];
    p.sendAll(bad);
    for (const m of bad) assert.equal((await p.next('ERROR', (x) => x.stream === m.stream)).code, code('ATP_ERR_INVALID_ARGUMENT'));
    const counts = await tc.coord.store.counts();
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      0,
    );
    p.close();
  });

  void it('creates a child of a subtree-cancelled parent CANCELLED (ATP-3.3-5)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const root = await submitOne(p, 'k', 'root');
    const mid = await submitOne(p, 'k', 'mid', { parentId: root.artifactId });
    p.send({ type: 'CANCEL', stream: 21, artifactId: root.artifactId, subtree: 1, reason: 'stop it all' });
    const cr = await p.next('CANCEL_RESULT', (m) => m.stream === 21);
    assert.equal(cr.cancelled, 2);
    const s = p.stream();
    p.send(submit(s, 'k', 'late child', { parentId: mid.artifactId, watch: 1 }));
    const acc = await p.next('ACCEPTED', (m) => m.stream === s);
    assert.equal(acc.state, 5);
    assert.equal(acc.duplicate, 0);
    const r = await p.next('RESULT', (m) => m.stream === s);
    assert.equal(r.state, 5);
    assert.equal(r.code, code('ATP_ERR_CANCELLED'));
    // A plain cancel marks nothing.
    const other = await submitOne(p, 'k', 'other');
    p.send({ type: 'CANCEL', stream: 23, artifactId: other.artifactId, subtree: 0, reason: '' });
    await p.next('CANCEL_RESULT', (m) => m.stream === 23);
    const child = await submitOne(p, 'k', 'child of plain', { parentId: other.artifactId });
    assert.equal(child.state, 1);
    p.close();
  });
});

void describe('scheduling order (ATP_SPEC §3.9)', () => {
  void it('leases higher priorities first and FIFO within a priority', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const order = [
      ['a', 0],
      ['b', 5],
      ['c', 0],
      ['d', 5],
      ['e', 255],
      ['f', 1],
    ] as const;
    for (const [name, priority] of order) await submitOne(p, 'k', name, { priority });
    const w = await worker(tc.url, ['k'], 1);
    const got: string[] = [];
    for (let i = 0; i < order.length; i++) {
      const l = await w.next('LEASE');
      got.push(text(l.payload));
      w.send({ type: 'COMPLETE', stream: 2 * i + 1, leaseId: l.leaseId, epoch: l.epoch, result: new Uint8Array(0) });
      w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    }
    assert.deepEqual(got, ['e', 'b', 'd', 'f', 'a', 'c']);
    p.close();
    w.close();
  });

  void it('leases only the kinds a worker listed', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitOne(p, 'other', 'x');
    const mine = await submitOne(p, 'mine', 'y');
    const w = await worker(tc.url, ['mine'], 5);
    const l = await w.next('LEASE');
    assert.deepEqual(l.artifactId, mine.artifactId);
    assert.equal((await w.take('LEASE')).length, 0);
    p.close();
    w.close();
  });
});

void describe('deadlines (ATP_SPEC §3.8)', () => {
  void it('expires a PENDING artifact at its deadline and tells its watchers', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const s = p.stream();
    p.send(submit(s, 'k', 'soon', { deadlineMs: 1_000, watch: 3 }));
    const acc = await p.next('ACCEPTED', (m) => m.stream === s);
    tc.clock.advance(999);
    await settle();
    assert.equal((await query(p, acc.artifactId)).state, 1);
    tc.clock.advance(1);
    const st = await p.next('STATE', (m) => m.stream === s && m.state === 6);
    assert.equal(st.code, code('ATP_ERR_EXPIRED'));
    const r = await p.next('RESULT', (m) => m.stream === s);
    assert.equal(r.state, 6);
    assert.equal(r.code, code('ATP_ERR_EXPIRED'));
    const w = await worker(tc.url, ['k'], 1);
    assert.equal((await w.take('LEASE')).length, 0, 'an expired artifact is never leased');
    p.close();
    w.close();
  });

  void it('expires a LEASED artifact at its deadline, revokes the lease with ATP_ERR_EXPIRED and refuses the late COMPLETE (ATP-3.8-2, ATP-3.8-4)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'leased', { deadlineMs: 2_000 });
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    assert.equal(l.deadlineMs, 2_000);
    tc.clock.advance(500);
    w.send({ type: 'RENEW', stream: 1, leaseIds: [] });
    await w.next('RENEWED');
    tc.clock.advance(1_500);
    const rv = await w.next('REVOKE');
    assert.deepEqual(rv.leaseId, l.leaseId);
    assert.equal(rv.code, code('ATP_ERR_EXPIRED'));
    assert.equal(rv.stream, 0);
    w.send({ type: 'COMPLETE', stream: 3, leaseId: l.leaseId, epoch: l.epoch, result: enc.encode('too late') });
    const lost = await w.next('LEASE_LOST', (m) => m.stream === 3);
    assert.equal(lost.code, code('ATP_ERR_EXPIRED'));
    const r = await queryResult(p, acc.artifactId);
    assert.equal(r.state, 6);
    assert.equal(text(r.result), '');
    w.send({ type: 'REVOKE_ACK', stream: 0, leaseId: l.leaseId, epoch: l.epoch });
    await settle();
    assert.ok(tc.events.some((e) => e.event === 'revoke-ack'));
    p.close();
    w.close();
  });
});

void describe('attempts (ATP_SPEC §6.2, §6.4)', () => {
  void it('returns a retryable FAIL to PENDING and re-issues it at the next epoch; fails it with ATP_ERR_ATTEMPTS_EXHAUSTED at maxAttempts', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const s = p.stream();
    p.send(submit(s, 'k', 'flaky', { maxAttempts: 2, watch: 1 }));
    const acc = await p.next('ACCEPTED', (m) => m.stream === s);
    const w = await worker(tc.url, ['k'], 1);
    const l1 = await w.next('LEASE');
    assert.equal(l1.epoch, 1);
    assert.equal(l1.attempt, 1);
    w.send({ type: 'FAIL', stream: 1, leaseId: l1.leaseId, epoch: 1, code: 0, retryable: 1, message: 'first try' });
    await w.next('ACK', (m) => m.stream === 1);
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 1);
    w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    const l2 = await w.next('LEASE');
    assert.equal(l2.epoch, 2);
    assert.equal(l2.attempt, 2);
    w.send({
      type: 'FAIL',
      stream: 3,
      leaseId: l2.leaseId,
      epoch: 2,
      code: code('ATP_ERR_TRANSIENT'),
      retryable: 1,
      message: 'second try',
    });
    await w.next('ACK', (m) => m.stream === 3);
    const r = await p.next('RESULT', (m) => m.stream === s);
    assert.equal(r.state, 4);
    assert.equal(r.code, code('ATP_ERR_ATTEMPTS_EXHAUSTED'));
    assert.match(r.message, /ATP_ERR_TRANSIENT/);
    assert.match(r.message, /second try/);
    w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    assert.equal((await w.take('LEASE')).length, 0);
    p.close();
    w.close();
  });

  void it('fails an artifact at once on a non-retryable FAIL, with the FAIL code or ATP_ERR_HANDLER_FATAL (ATP-6.2-3)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const a = await submitOne(p, 'k', 'fatal-default', { maxAttempts: 5 });
    const b = await submitOne(p, 'k', 'fatal-coded', { maxAttempts: 5 });
    const w = await worker(tc.url, ['k'], 2);
    const leases = [await w.next('LEASE'), await w.next('LEASE')];
    for (const [i, l] of leases.entries()) {
      const isA = toHex(l.artifactId) === a.id;
      w.send({
        type: 'FAIL',
        stream: 2 * i + 1,
        leaseId: l.leaseId,
        epoch: l.epoch,
        code: isA ? 0 : code('ATP_ERR_INTEGRITY'),
        retryable: 0,
        message: 'broken',
      });
      await w.next('ACK', (m) => m.stream === 2 * i + 1);
    }
    const ra = await queryResult(p, a.artifactId);
    assert.equal(ra.state, 4);
    assert.equal(ra.code, code('ATP_ERR_HANDLER_FATAL'));
    assert.equal(ra.message, 'broken');
    const rb = await queryResult(p, b.artifactId);
    assert.equal(rb.code, code('ATP_ERR_INTEGRITY'));
    p.close();
    w.close();
  });

  void it('counts a lease lost by expiry as a failed attempt', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'slow', { maxAttempts: 1, leaseTtlMs: 1_000 });
    const w = await worker(tc.url, ['k'], 1);
    await w.next('LEASE');
    tc.clock.advance(1_001);
    await w.next('LEASE_LOST');
    const r = await queryResult(p, acc.artifactId);
    assert.equal(r.state, 4);
    assert.equal(r.code, code('ATP_ERR_ATTEMPTS_EXHAUSTED'));
    p.close();
    w.close();
  });
});
