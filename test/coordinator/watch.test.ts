/**
 * WATCH, UNWATCH, SUBMIT watch bits and QUERY (ATP_SPEC §7): events by artifact, subtree and tag,
 * partial results in order, replay of the current state, and queries.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { toHex } from '../../src/internal/ids.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { ArtifactRecord } from '../../src/store/memory-store.js';
import type { Message } from '../../src/wire/index.js';
import { producer, query, settle, startCoordinator, submit, submitOne, text, worker } from './harness.js';
import type { Peer, TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});
const enc = new TextEncoder();

function eventsOn(p: Peer, stream: number): Message[] {
  return p.log.filter((m) => m.stream === stream);
}

function describeEvent(m: Message): string {
  switch (m.type) {
    case 'STATE':
      return `STATE ${toHex(m.artifactId).slice(0, 4)} ${m.state}`;
    case 'RESULT':
      return `RESULT ${toHex(m.artifactId).slice(0, 4)} ${m.state}`;
    case 'PARTIAL_RESULT':
      return `PARTIAL ${toHex(m.artifactId).slice(0, 4)} ${m.seq}`;
    default:
      return m.type;
  }
}

void describe('WATCH (ATP_SPEC §7.1, §7.2)', () => {
  void it('an artifact watch gets ACK, every state change, partial results in order, then RESULT, and nothing after', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'watched');
    const id = acc.id.slice(0, 4);
    p.send({ type: 'WATCH', stream: 101, scope: 1, flags: 1, artifactId: acc.artifactId, tag: '' });
    const ack = await p.next('ACK', (m) => m.stream === 101);
    assert.equal(ack.ackedType, 0x0014);
    assert.deepEqual(ack.subject, acc.artifactId);
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    for (let seq = 1; seq <= 3; seq++)
      w.send({ type: 'PARTIAL', stream: 0, leaseId: l.leaseId, epoch: 1, seq, data: enc.encode(`p${seq}`) });
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: enc.encode('final') });
    await p.next('RESULT', (m) => m.stream === 101);
    await settle();
    assert.deepEqual(eventsOn(p, 101).map(describeEvent), [
      'ACK',
      `STATE ${id} 2`,
      `PARTIAL ${id} 1`,
      `PARTIAL ${id} 2`,
      `PARTIAL ${id} 3`,
      `STATE ${id} 3`,
      `RESULT ${id} 3`,
    ]);
    const partials = eventsOn(p, 101).filter((m) => m.type === 'PARTIAL_RESULT');
    assert.deepEqual(
      partials.map((m) => (m.type === 'PARTIAL_RESULT' ? `${text(m.data)}@${m.epoch}` : '')),
      ['p1@1', 'p2@1', 'p3@1'],
    );
    const r = eventsOn(p, 101).find((m) => m.type === 'RESULT');
    assert.equal(r?.type === 'RESULT' && text(r.result), 'final');
    p.close();
    w.close();
  });

  void it('a watch without the partials flag gets no PARTIAL_RESULT', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'quiet');
    p.send({ type: 'WATCH', stream: 11, scope: 1, flags: 0, artifactId: acc.artifactId, tag: '' });
    await p.next('ACK', (m) => m.stream === 11);
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    w.send({ type: 'PARTIAL', stream: 0, leaseId: l.leaseId, epoch: 1, seq: 1, data: enc.encode('x') });
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: new Uint8Array(0) });
    await p.next('RESULT', (m) => m.stream === 11);
    assert.equal(eventsOn(p, 11).filter((m) => m.type === 'PARTIAL_RESULT').length, 0);
    p.close();
    w.close();
  });

  void it('a subtree watch sees the creation and every change of descendants, including ones submitted later', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const root = await submitOne(p, 'k', 'root');
    const child = await submitOne(p, 'other', 'child', { parentId: root.artifactId });
    p.send({ type: 'WATCH', stream: 21, scope: 2, flags: 0, artifactId: root.artifactId, tag: '' });
    await p.next('ACK', (m) => m.stream === 21);
    const grandchild = await submitOne(p, 'other', 'grandchild', { parentId: child.artifactId });
    const unrelated = await submitOne(p, 'other', 'unrelated');
    p.send({ type: 'CANCEL', stream: 23, artifactId: root.artifactId, subtree: 1, reason: 'enough' });
    await p.next('CANCEL_RESULT', (m) => m.stream === 23);
    await settle();
    const ev = eventsOn(p, 21).map(describeEvent);
    const [r, c, g] = [root.id, child.id, grandchild.id].map((x) => x.slice(0, 4));
    assert.deepEqual(ev.slice(0, 2), ['ACK', `STATE ${g} 1`]);
    for (const x of [r, c, g]) {
      assert.ok(ev.indexOf(`STATE ${x} 5`) > 0, `cancel of ${x} seen`);
      assert.ok(ev.indexOf(`RESULT ${x} 5`) > ev.indexOf(`STATE ${x} 5`), `RESULT after STATE for ${x}`);
    }
    assert.ok(!ev.some((e) => e.includes(unrelated.id.slice(0, 4))));
    p.close();
  });

  void it('a tag watch sees only artifacts carrying the tag', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    p.send({ type: 'WATCH', stream: 31, scope: 3, flags: 0, artifactId: new Uint8Array(16), tag: 'batch-7' });
    await p.next('ACK', (m) => m.stream === 31);
    const tagged = await submitOne(p, 'k', 'tagged', { tags: ['x', 'batch-7'] });
    await submitOne(p, 'k', 'untagged', { tags: ['batch-8'] });
    const w = await worker(tc.url, ['k'], 2);
    const leases = [await w.next('LEASE'), await w.next('LEASE')];
    for (const [i, l] of leases.entries())
      w.send({ type: 'COMPLETE', stream: 1 + 2 * i, leaseId: l.leaseId, epoch: 1, result: enc.encode(text(l.payload)) });
    await p.next('RESULT', (m) => m.stream === 31);
    await settle();
    const t = tagged.id.slice(0, 4);
    assert.deepEqual(eventsOn(p, 31).map(describeEvent), ['ACK', `STATE ${t} 1`, `STATE ${t} 2`, `STATE ${t} 3`, `RESULT ${t} 3`]);
    p.close();
    w.close();
  });

  void it('replay sends, after the ACK, the current STATE of each matching artifact and the RESULT of finished ones (ATP_SPEC §7.3)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const root = await submitOne(p, 'k', 'root');
    const done = await submitOne(p, 'done', 'finished child', { parentId: root.artifactId });
    const w = await worker(tc.url, ['done'], 1);
    const l = await w.next('LEASE');
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: enc.encode('ok') });
    await w.next('ACK');
    p.send({ type: 'WATCH', stream: 41, scope: 2, flags: 2, artifactId: root.artifactId, tag: '' });
    await p.next('RESULT', (m) => m.stream === 41);
    await settle();
    const ev = eventsOn(p, 41).map(describeEvent);
    assert.equal(ev[0], 'ACK');
    assert.deepEqual(
      new Set(ev.slice(1)),
      new Set([`STATE ${root.id.slice(0, 4)} 1`, `STATE ${done.id.slice(0, 4)} 3`, `RESULT ${done.id.slice(0, 4)} 3`]),
    );
    assert.equal(ev.length, 4);
    // Live events continue after the replay.
    p.send({ type: 'CANCEL', stream: 43, artifactId: root.artifactId, subtree: 0, reason: '' });
    await p.next('RESULT', (m) => m.stream === 41 && toHex(m.artifactId) === root.id);
    p.close();
    w.close();
  });

  void it('UNWATCH is acknowledged and no event of that watch follows (ATP_SPEC §7.5)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    p.send({ type: 'WATCH', stream: 51, scope: 3, flags: 0, artifactId: new Uint8Array(16), tag: 't' });
    await p.next('ACK', (m) => m.stream === 51);
    await submitOne(p, 'k', 'one', { tags: ['t'] });
    await p.next('STATE', (m) => m.stream === 51);
    p.send({ type: 'UNWATCH', stream: 53, watchStream: 51 });
    const ack = await p.next('ACK', (m) => m.stream === 53);
    assert.equal(ack.ackedType, 0x0015);
    await submitOne(p, 'k', 'two', { tags: ['t'] });
    await settle();
    assert.equal(eventsOn(p, 51).filter((m) => m.type === 'STATE').length, 1);
    // UNWATCH of a stream without a watch is acknowledged too.
    p.send({ type: 'UNWATCH', stream: 55, watchStream: 999 });
    await p.next('ACK', (m) => m.stream === 55);
    p.close();
  });

  void it('SUBMIT watch bits open a watch on the SUBMIT stream: states (2), partials (4) and the result (1) (ATP_SPEC §7.4)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    p.send(submit(61, 'k', 'all events', { watch: 7 }));
    p.send(submit(63, 'k', 'result only', { watch: 1 }));
    await p.next('ACCEPTED', (m) => m.stream === 61);
    await p.next('ACCEPTED', (m) => m.stream === 63);
    const w = await worker(tc.url, ['k'], 2);
    const leases = [await w.next('LEASE'), await w.next('LEASE')];
    for (const [i, l] of leases.entries()) {
      w.send({ type: 'PARTIAL', stream: 0, leaseId: l.leaseId, epoch: 1, seq: 1, data: enc.encode('half') });
      w.send({ type: 'COMPLETE', stream: 1 + 2 * i, leaseId: l.leaseId, epoch: 1, result: enc.encode('r') });
    }
    await p.next('RESULT', (m) => m.stream === 61);
    await p.next('RESULT', (m) => m.stream === 63);
    await settle();
    const all = eventsOn(p, 61).map((m) => (m.type === 'STATE' ? `STATE ${m.state}` : m.type));
    assert.deepEqual(all, ['ACCEPTED', 'STATE 1', 'STATE 2', 'PARTIAL_RESULT', 'STATE 3', 'RESULT']);
    assert.deepEqual(
      eventsOn(p, 63).map((m) => m.type),
      ['ACCEPTED', 'RESULT'],
    );
    p.close();
    w.close();
  });
});

void describe('QUERY (ATP_SPEC §7.6)', () => {
  void it('answers an unknown id with STATE UNKNOWN, a pending one with its STATE, and a terminal one with STATE then RESULT', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const unknown = await query(p, Buffer.alloc(16, 0x33));
    assert.equal(unknown.state, 0);
    assert.deepEqual(Buffer.from(unknown.artifactId), Buffer.alloc(16, 0x33));
    const pending = await submitOne(p, 'k', 'pending');
    p.send({ type: 'QUERY', stream: 71, artifactId: pending.artifactId, withResult: 1 });
    const st = await p.next('STATE', (m) => m.stream === 71);
    assert.equal(st.state, 1);
    assert.equal(st.kind, 'k');
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    w.send({ type: 'CHECKPOINT', stream: 1, leaseId: l.leaseId, epoch: 1, data: enc.encode('cp') });
    w.send({ type: 'COMPLETE', stream: 3, leaseId: l.leaseId, epoch: 1, result: enc.encode('res') });
    await w.next('ACK', (m) => m.stream === 3);
    p.send({ type: 'QUERY', stream: 73, artifactId: pending.artifactId, withResult: 1 });
    const st2 = await p.next('STATE', (m) => m.stream === 73);
    const r = await p.next('RESULT', (m) => m.stream === 73);
    assert.equal(st2.state, 3);
    assert.equal(st2.epoch, 1);
    assert.equal(st2.attempts, 1);
    assert.equal(r.state, 3);
    assert.equal(text(r.result), 'res');
    assert.equal(text(r.checkpoint), 'cp');
    assert.equal(r.digest.alg, 1);
    await settle();
    assert.equal(eventsOn(p, 71).filter((m) => m.type === 'RESULT').length, 0, 'no RESULT for a pending artifact');
    p.close();
    w.close();
  });
});

/** A memory store whose transitions become durable a little later, like a store with group commit. */
class SlowCommitStore extends MemoryStore {
  protected override commit<T>(value: T, changed: readonly ArtifactRecord[]): Promise<T> {
    if (changed.length === 0) return Promise.resolve(value);
    return new Promise((resolve) => setTimeout(() => resolve(value), 20));
  }
}

void describe('watches on a store with group commit', () => {
  void it('a WATCH with replay opened while a result is being made durable sees that RESULT exactly once (ATP-7.2-5, ATP-7.3-2)', async () => {
    tc = await startCoordinator({ store: new SlowCommitStore() });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'racing');
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: enc.encode('done') });
    await settle(); // the COMPLETE is decided, not yet durable
    p.send({ type: 'WATCH', stream: 81, scope: 1, flags: 2, artifactId: acc.artifactId, tag: '' });
    await w.next('ACK', (m) => m.stream === 1);
    await p.next('RESULT', (m) => m.stream === 81);
    await new Promise((r) => setTimeout(r, 100));
    await settle();
    assert.equal(eventsOn(p, 81).filter((m) => m.type === 'RESULT').length, 1, 'one RESULT on the watch');
    assert.equal(eventsOn(p, 81).filter((m) => m.type === 'STATE' && m.state === 3).length, 1, 'one terminal STATE on the watch');
    p.close();
    w.close();
  });
});
