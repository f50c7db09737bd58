/**
 * Retention (ATP_SPEC §3.11): a terminal artifact is remembered for the coordinator's retainMs after
 * it ended (memoization, QUERY), then forgotten by the coordinator's sweep; its id is free again.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { DEFAULT_RETAIN_MS } from '../../src/coordinator/options.js';
import { code, producer, query, settle, startCoordinator, submit, submitOne, text, worker } from './harness.js';
import type { Peer, TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});
const enc = new TextEncoder();

/** Move the fake clock a second at a time, letting each sweep finish (it runs once per second here). */
async function advance(t: TestCoordinator, ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 1_000) {
    t.clock.advance(Math.min(1_000, left));
    await settle();
  }
}

/** The worker takes one LEASE and completes it with `result`. */
async function completeNext(w: Peer, result: string): Promise<void> {
  const l = await w.next('LEASE');
  const s = w.stream();
  w.send({ type: 'COMPLETE', stream: s, leaseId: l.leaseId, epoch: l.epoch, result: enc.encode(result) });
  await w.next('ACK', (m) => m.stream === s);
}

void describe('retention of terminal artifacts (ATP_SPEC §3.11)', () => {
  void it('memoizes within the retention, forgets after it, and then runs the same content again', async () => {
    tc = await startCoordinator({ retainMs: 5_000 });
    const p = await producer(tc.url);
    const w = await worker(tc.url, ['k'], 1);
    const first = await submitOne(p, 'k', 'work');
    await completeNext(w, 'done');

    await advance(tc, 4_000);
    const s1 = p.stream();
    p.send(submit(s1, 'k', 'work', { watch: 1 }));
    const dup = await p.next('ACCEPTED', (m) => m.stream === s1);
    assert.deepEqual([dup.duplicate, dup.state], [1, 3], 'remembered: a duplicate of a COMPLETED artifact');
    assert.equal(text((await p.next('RESULT', (m) => m.stream === s1)).result), 'done');
    assert.equal(tc.coord.forgotten, 0);

    await advance(tc, 2_000);
    assert.equal(tc.coord.forgotten, 1);
    assert.ok(tc.events.some((e) => e.event === 'forgotten' && e['artifacts'] === 1));
    const st = await query(p, first.artifactId);
    assert.deepEqual([st.state, st.code], [0, code('ATP_ERR_NOT_FOUND')], 'QUERY answers as for an id that never existed');
    assert.equal((await tc.coord.store.counts()).COMPLETED, 0);

    const again = await submitOne(p, 'k', 'work');
    assert.deepEqual([again.id, again.duplicate, again.state], [first.id, 0, 1], 'a new artifact under the same id');
    w.send({ type: 'CREDIT', stream: 0, credits: 1 });
    await completeNext(w, 'done again');
    p.close();
    w.close();
  });

  void it('keeps a parent while a child is remembered, and refuses a child of a forgotten parent', async () => {
    tc = await startCoordinator({ retainMs: 5_000 });
    const first = await producer(tc.url);
    const root = await submitOne(first, 'root', 'r');
    const child = await submitOne(first, 'k', 'c', { parentId: root.artifactId });
    const cancel = first.stream();
    first.send({ type: 'CANCEL', stream: cancel, artifactId: root.artifactId, subtree: 0, reason: 'root only' });
    await first.next('CANCEL_RESULT', (m) => m.stream === cancel);
    first.close();
    await advance(tc, 60_000);
    // A new session: the first one went silent for longer than the idle timeout.
    const p = await producer(tc.url);
    assert.equal((await query(p, root.artifactId)).state, 5, 'CANCELLED, kept: its child is PENDING');

    const w = await worker(tc.url, ['k'], 1);
    await completeNext(w, 'child done');
    await advance(tc, 6_000);
    assert.equal(tc.coord.forgotten, 2, 'the child, then its parent');
    assert.equal((await query(p, child.artifactId)).state, 0);
    const s = p.stream();
    p.send(submit(s, 'k', 'late child', { parentId: root.artifactId }));
    assert.equal((await p.next('ERROR', (m) => m.stream === s)).code, code('ATP_ERR_NOT_FOUND'));
    p.close();
    w.close();
  });

  void it('remembers every artifact with retainMs Infinity; the default is 24 hours; a bad value is refused', async () => {
    assert.equal(new Coordinator().options.retainMs, DEFAULT_RETAIN_MS);
    assert.equal(DEFAULT_RETAIN_MS, 86_400_000);
    assert.throws(() => new Coordinator({ retainMs: 0 }), /retainMs must be a positive integer or Infinity/);
    assert.throws(() => new Coordinator({ retainMs: 1.5 }), /retainMs/);
    tc = await startCoordinator({ retainMs: Infinity });
    const first = await producer(tc.url);
    const w = await worker(tc.url, ['k'], 1);
    const a = await submitOne(first, 'k', 'kept');
    await completeNext(w, 'r');
    first.close();
    w.close();
    // No sweep runs at all: one step is enough.
    tc.clock.advance(365 * DEFAULT_RETAIN_MS);
    await settle();
    const p = await producer(tc.url);
    assert.equal((await query(p, a.artifactId)).state, 3);
    assert.equal(tc.coord.forgotten, 0);
    p.close();
  });
});
