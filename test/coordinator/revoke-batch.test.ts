/**
 * The capability revoke-batch (ATP_SPEC §8.3-7, ATP_WIRE §6.31, §6.32), against a raw worker peer:
 * it is agreed only when listed, one REVOKE then names many leases, one REVOKE_ACK acknowledges many,
 * each entry on its own terms, and a malformed entry list closes the connection.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { afterEach, describe, it } from 'node:test';
import { randomId, toHex } from '../../src/internal/ids.js';
import { Capability, REVOKE_ACK_ENTRY_BYTES, REVOKE_ENTRY_BYTES } from '../../src/wire/index.js';
import type { MessageOf } from '../../src/wire/index.js';
import { code, producer, query, settle, startCoordinator, submitOne, worker } from './harness.js';
import { Peer } from './harness.js';
import type { TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});

interface Named {
  leaseId: string;
  epoch: number;
  artifactId: string;
}

/** Every lease a REVOKE names: its own fields, then each `more` entry. */
function named(rv: MessageOf<'REVOKE'>): Named[] {
  const out: Named[] = [{ leaseId: toHex(rv.leaseId), epoch: rv.epoch, artifactId: toHex(rv.artifactId) }];
  const more = rv.more ?? new Uint8Array(0);
  assert.equal(more.length % REVOKE_ENTRY_BYTES, 0);
  const view = new DataView(more.buffer, more.byteOffset, more.byteLength);
  for (let off = 0; off < more.length; off += REVOKE_ENTRY_BYTES) {
    out.push({
      leaseId: toHex(more.subarray(off, off + 16)),
      epoch: view.getUint32(off + 16),
      artifactId: toHex(more.subarray(off + 20, off + 36)),
    });
  }
  return out;
}

/** REVOKE_ACK.more for (leaseId, epoch) pairs. */
function ackEntries(entries: ReadonlyArray<{ leaseId: Uint8Array; epoch: number }>): Uint8Array {
  const out = new Uint8Array(entries.length * REVOKE_ACK_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  entries.forEach((e, i) => {
    out.set(e.leaseId, i * REVOKE_ACK_ENTRY_BYTES);
    view.setUint32(i * REVOKE_ACK_ENTRY_BYTES + 16, e.epoch);
  });
  return out;
}

/** A root and `n` children of kind k, all leased by `w` (which has `n` + 1 credits). */
async function leasedTree(p: Peer, w: Peer, n: number) {
  const root = await submitOne(p, 'k', 'root');
  const children = [];
  for (let i = 0; i < n; i++) children.push(await submitOne(p, 'k', `child-${i}`, { parentId: root.artifactId }));
  const leases: Array<MessageOf<'LEASE'>> = [];
  while (leases.length < n + 1) leases.push(await w.next('LEASE'));
  return { root, children, leases };
}

void describe('revoke-batch (ATP_SPEC §8.3-7)', () => {
  void it('is agreed only when the client lists it; unknown and GREASE names are never echoed [ATP-4.4-1] [ATP-4.4-3]', async () => {
    tc = await startCoordinator();
    const a = await worker(tc.url, ['k'], 1, { capabilities: [Capability.REVOKE_BATCH, 'grease.x7', 'blobs-unknown'] });
    assert.deepEqual(a.welcome?.capabilities, [Capability.REVOKE_BATCH]);
    const b = await worker(tc.url, ['k'], 1, { capabilities: ['grease.x7'] });
    assert.deepEqual(b.welcome?.capabilities, []);
    a.close();
    b.close();
  });

  void it('one REVOKE names every lease a subtree cancel stops; one REVOKE_ACK acknowledges them, each on its own terms [ATP-8.3-7] [ATP-8.3-3] [ATP-8.3-4]', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const w = await worker(tc.url, ['k'], 6, { capabilities: [Capability.REVOKE_BATCH] });
    const { root, leases } = await leasedTree(p, w, 5);
    p.send({ type: 'CANCEL', stream: 31, artifactId: root.artifactId, subtree: 1, reason: 'pruned' });
    const cr = await p.next('CANCEL_RESULT', (m) => m.stream === 31);
    assert.deepEqual([cr.cancelled, cr.stopping], [6, 6]);
    const revokes = await w.take('REVOKE');
    assert.equal(revokes.length, 1, 'one frame for the six leases');
    const rv = revokes[0]!;
    assert.equal(rv.code, code('ATP_ERR_CANCELLED'));
    assert.equal(rv.reason, 'pruned');
    const got = named(rv);
    const want = leases.map((l) => ({ leaseId: toHex(l.leaseId), epoch: l.epoch, artifactId: toHex(l.artifactId) }));
    const byLease = (x: Named, y: Named) => x.leaseId.localeCompare(y.leaseId);
    assert.deepEqual([...got].sort(byLease), [...want].sort(byLease));

    // Acknowledge four in one frame, one of them twice and one with a wrong epoch: those two get
    // LEASE_LOST, the others are acknowledged; the sixth is left to the deadline.
    const [l0, l1, l2, l3, , l5] = leases;
    w.send({
      type: 'REVOKE_ACK',
      stream: 41,
      leaseId: l0!.leaseId,
      epoch: l0!.epoch,
      more: ackEntries([l1!, l2!, l1!, { leaseId: l3!.leaseId, epoch: l3!.epoch + 7 }, l5!]),
    });
    const lost = [await w.next('LEASE_LOST', (m) => m.stream === 41), await w.next('LEASE_LOST', (m) => m.stream === 41)];
    assert.deepEqual(lost.map((m) => toHex(m.leaseId)).sort(), [toHex(l1!.leaseId), toHex(l3!.leaseId)].sort());
    await settle();
    const acked = tc.events.filter((e) => e.event === 'revoke-ack').map((e) => e['leaseId']);
    assert.deepEqual([...acked].sort(), [l0!, l1!, l2!, l5!].map((l) => toHex(l.leaseId)).sort());
    // The unacknowledged ones are fenced at the deadline, each reported.
    tc.clock.advance(5_000);
    await settle();
    const timedOut = tc.events.filter((e) => e.event === 'revoke-timeout').map((e) => e['leaseId']);
    assert.deepEqual([...timedOut].sort(), [leases[3]!, leases[4]!].map((l) => toHex(l.leaseId)).sort());
    assert.equal((await query(p, root.artifactId)).state, 5);
    p.close();
    w.close();
  });

  void it('revokes decided while the worker was detached are sent again in one batched REVOKE when it resumes [ATP-8.3-5]', async () => {
    tc = await startCoordinator({ resumeWindowMs: 5_000 });
    const p = await producer(tc.url);
    const nodeId = Buffer.alloc(16, 9);
    const w = await worker(tc.url, ['k'], 4, { nodeId, capabilities: [Capability.REVOKE_BATCH] });
    const { root, leases } = await leasedTree(p, w, 3);
    w.close();
    await settle();
    p.send({ type: 'CANCEL', stream: 31, artifactId: root.artifactId, subtree: 1, reason: 'while away' });
    assert.equal((await p.next('CANCEL_RESULT', (m) => m.stream === 31)).stopping, 4);
    const back = await Peer.open(tc.url);
    const welcome = await back.hello({
      roles: 1,
      kinds: ['k'],
      credits: 0,
      nodeId,
      resumeSessionId: w.welcome!.sessionId,
      resumeToken: w.welcome!.resumeToken,
      capabilities: [Capability.REVOKE_BATCH],
    });
    assert.equal(welcome.resumed, 1);
    const revokes = await back.take('REVOKE');
    assert.equal(revokes.length, 1);
    assert.deepEqual(
      named(revokes[0]!)
        .map((n) => n.leaseId)
        .sort(),
      leases.map((l) => toHex(l.leaseId)).sort(),
    );
    back.send({ type: 'REVOKE_ACK', stream: 0, leaseId: leases[0]!.leaseId, epoch: 1, more: ackEntries(leases.slice(1)) });
    await settle();
    assert.equal(tc.events.filter((e) => e.event === 'revoke-ack').length, 4);
    p.close();
    back.close();
  });

  void it('any split of the acknowledgements into REVOKE_ACKs, with repeats, wrong epochs and unknown ids mixed in, acknowledges each revoked lease exactly once and answers every other entry with LEASE_LOST', async () => {
    // An entry: a revoked lease by index, the same with a wrong epoch, or an id nobody holds.
    const entryArb = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('lease' as const), i: fc.nat(4) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('epoch' as const), i: fc.nat(4) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'unknown' as const, i: 0 }) },
    );
    const framesArb = fc.array(fc.array(entryArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 });
    await fc.assert(
      fc.asyncProperty(framesArb, async (frames) => {
        const t = await startCoordinator();
        try {
          const p = await producer(t.url);
          const w = await worker(t.url, ['k'], 5, { capabilities: [Capability.REVOKE_BATCH] });
          const { root, leases } = await leasedTree(p, w, 4);
          p.send({ type: 'CANCEL', stream: 31, artifactId: root.artifactId, subtree: 1, reason: '' });
          await p.next('CANCEL_RESULT', (m) => m.stream === 31);
          await w.take('REVOKE');
          const acked = new Set<string>();
          let lost = 0;
          let stream = 101;
          for (const f of frames) {
            const entries = f.map((e) =>
              e.kind === 'unknown'
                ? { leaseId: randomId(16), epoch: 1 }
                : { leaseId: leases[e.i]!.leaseId, epoch: leases[e.i]!.epoch + (e.kind === 'epoch' ? 5 : 0) },
            );
            for (const e of entries) {
              const hex = toHex(e.leaseId);
              if (e.epoch === 1 && leases.some((l) => toHex(l.leaseId) === hex) && !acked.has(hex)) acked.add(hex);
              else lost++;
            }
            const [first, ...rest] = entries;
            w.send({
              type: 'REVOKE_ACK',
              stream,
              leaseId: first!.leaseId,
              epoch: first!.epoch,
              ...(rest.length > 0 ? { more: ackEntries(rest) } : {}),
            });
            stream += 2;
          }
          for (let i = 0; i < lost; i++) await w.next('LEASE_LOST');
          await settle();
          const events = t.events.filter((e) => e.event === 'revoke-ack').map((e) => e['leaseId'] as string);
          assert.deepEqual([...events].sort(), [...acked].sort());
          assert.equal(w.log.filter((m) => m.type === 'LEASE_LOST').length, lost);
          p.close();
          w.close();
        } finally {
          await t.close();
        }
      }),
      { numRuns: Number(process.env.ATP_FC_RUNS ?? 25) },
    );
  });

  void it('without the capability, every lease gets a REVOKE of its own and no frame carries `more`', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const w = await worker(tc.url, ['k'], 4);
    const { root, leases } = await leasedTree(p, w, 3);
    p.send({ type: 'CANCEL', stream: 31, artifactId: root.artifactId, subtree: 1, reason: '' });
    await p.next('CANCEL_RESULT', (m) => m.stream === 31);
    const revokes = await w.take('REVOKE');
    assert.equal(revokes.length, 4);
    assert.ok(revokes.every((r) => r.more === undefined));
    assert.deepEqual(revokes.map((r) => toHex(r.leaseId)).sort(), leases.map((l) => toHex(l.leaseId)).sort());
    p.close();
    w.close();
  });

  void it('a REVOKE_ACK whose `more` is not a whole number of entries closes the connection with ATP_ERR_PROTOCOL', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const w = await worker(tc.url, ['k'], 1, { capabilities: [Capability.REVOKE_BATCH] });
    const acc = await submitOne(p, 'k', 'x');
    const l = await w.next('LEASE');
    p.send({ type: 'CANCEL', stream: 31, artifactId: acc.artifactId, subtree: 0, reason: '' });
    await w.next('REVOKE');
    w.send({ type: 'REVOKE_ACK', stream: 0, leaseId: l.leaseId, epoch: l.epoch, more: new Uint8Array(REVOKE_ACK_ENTRY_BYTES + 1) });
    const g = await w.goaway();
    assert.equal(g.code, code('ATP_ERR_PROTOCOL'));
    assert.match(g.reason, /REVOKE_ACK\.more is 21 bytes/);
    // Nothing was acknowledged by the refused frame; other sessions are untouched.
    await settle();
    assert.ok(!tc.events.some((e) => e.event === 'revoke-ack'));
    assert.equal((await query(p, acc.artifactId)).state, 5);
    p.close();
  });
});
