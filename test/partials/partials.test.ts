/**
 * Partial results and checkpoints (ATP_SPEC §9, §12.3) with real processes over loopback TCP: a
 * coordinator in this process, worker processes (test/fixtures/p4-worker.ts, kind `p4.units`) that
 * are SIGKILLed mid-lease, and a producer following the artifact through the Client SDK.
 *
 * `p4.units` works through units 1..n: one partial `{ unit, acc }` per unit past ctx.lastPartialSeq,
 * a checkpoint `{ next, acc }` every `cpEvery` units, resuming from ctx.checkpointData; `acc` is the
 * sum of unit² so far. With `stopAfter`, the first attempt stops after that unit and hangs (or fails).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { ArtifactEvent } from '../../src/client/handle.js';
import { World, randomHexId, record, recordWatch, within } from '../fixtures/p4-harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const dec = new TextDecoder();
const text = (b: Uint8Array) => dec.decode(b);
// A killed worker's lease ends with the resume window (200 ms) after its connection drops; the ttl
// is longer so that a live worker's lease survives a stall of this (shared, busy) machine.
const COORDINATOR = { leaseTtlMs: 1_000, resumeWindowMs: 200 };
const sumSquares = (from: number, to: number) => {
  let s = 0;
  for (let i = from; i <= to; i++) s += i * i;
  return s;
};
type Partial = Extract<ArtifactEvent, { type: 'partial' }>;
const isPartial = <E extends ArtifactEvent>(e: E): e is E & Partial => e.type === 'partial';

interface UnitsResult {
  acc: number;
  resumedFrom: number | null;
  unitsDone: number;
  lastPartialSeqAtStart: number;
  label: string;
}

void describe('partial results across a lease loss (ATP_SPEC §9.1, §9.4, §12.3)', () => {
  void it(
    'delivers seq 1..n to the producer exactly once, in order, although the first worker was SIGKILLed after partial k and the next lease resumed from lastPartialSeq and the checkpoint [ATP-9.1-1] [ATP-9.1-2] [ATP-9.2-1] [ATP-9.4-1] [ATP-9.4-2] [ATP-12.3-1]',
    { timeout: 60_000 },
    async () => {
      world = new World();
      const w = world;
      await w.coordinator(COORDINATOR);
      const producer = await w.client();
      const n = 12;
      const k = 5;
      // Checkpoints at units 2 and 4: partial 5 is accepted past the last checkpoint, so the next
      // lease redoes unit 5 from the checkpoint without reporting it again.
      const handle = await producer.submit({
        kind: 'p4.units',
        payload: JSON.stringify({ n, cpEvery: 2, stopAfter: k, then: 'hang', nonce: randomHexId() }),
        follow: 'all',
      });
      const events = record(handle);
      const watch = producer.watch({ artifact: handle.id }, { partials: true });
      const wire = recordWatch(watch);

      const a = await w.worker({ label: 'A', kinds: ['p4.units'] });
      const stopped = await a.next('stopped');
      assert.equal(stopped.unit, k);
      assert.equal(stopped.checkpoint, JSON.stringify({ next: 5, acc: sumSquares(1, 4) }));
      // Partial k reached the producer: it was accepted before the worker died.
      await events.until((e) => isPartial(e) && e.seq === k, `partial ${k} at the producer`);
      await a.kill();

      const b = await w.worker({ label: 'B', kinds: ['p4.units'] });
      const start = await b.next('start');
      assert.equal(start.epoch, 2);
      assert.equal(start.lastPartialSeq, k, 'LEASE.lastPartialSeq is the last accepted partial [ATP-9.4-1]');
      assert.equal(start.checkpoint, stopped.checkpoint, 'LEASE.checkpoint is the last stored checkpoint [ATP-9.4-1]');

      const outcome = await within(handle.result(), 'RESULT');
      assert.equal(outcome.state, 'COMPLETED');
      const result = JSON.parse(text(outcome.result)) as UnitsResult;
      assert.deepEqual(result, { acc: sumSquares(1, n), resumedFrom: 5, unitsDone: n - 4, lastPartialSeqAtStart: k, label: 'B' });

      // handle.events() is read asynchronously: it may still be behind handle.result().
      await events.until((e) => e.type === 'result', 'the result event');
      // handle.events(): every seq once, in order, with the data of that unit and the epoch of the lease that sent it.
      const partials = events.all.filter(isPartial);
      assert.deepEqual(
        partials.map((p) => p.seq),
        Array.from({ length: n }, (_, i) => i + 1),
      );
      for (const p of partials) {
        assert.deepEqual(JSON.parse(text(p.data)), { unit: p.seq, acc: sumSquares(1, p.seq) });
        assert.equal(p.epoch, p.seq <= k ? 1 : 2);
      }
      assert.equal(
        events.all.at(-1)?.type,
        'result',
        `the result comes after every partial; the last events: ${JSON.stringify(events.all.slice(-4).map((e) => ('state' in e ? [e.type, e.state] : [e.type])))}`,
      );

      // What the coordinator sent on a plain watch (the handle drops duplicates; this does not).
      await wire.until((e) => e.type === 'result', 'RESULT on the watch');
      watch.stop();
      assert.deepEqual(
        wire.all.filter(isPartial).map((p) => p.seq),
        Array.from({ length: n }, (_, i) => i + 1),
        'PARTIAL_RESULT seq 1..n with no gap and no duplicate on the wire',
      );
    },
  );
});

void describe('checkpoints (ATP_SPEC §9.3, §9.4)', () => {
  void it(
    'keeps a checkpoint through a SIGKILL of its worker; the next lease resumes from it (ctx.checkpointData) and its result proves it [ATP-9.3-1] [ATP-9.4-1] [ATP-9.4-2]',
    { timeout: 60_000 },
    async () => {
      world = new World();
      const w = world;
      const { diag } = await w.coordinator(COORDINATOR);
      const producer = await w.client();
      const n = 20;
      const handle = await producer.submit({
        kind: 'p4.units',
        payload: JSON.stringify({ n, cpEvery: 5, stopAfter: 12, then: 'hang', nonce: randomHexId() }),
      });
      const a = await w.worker({ label: 'A', kinds: ['p4.units'] });
      const first = await a.next('start');
      assert.equal(first.checkpoint, null, 'the first lease has no checkpoint');
      const stopped = await a.next('stopped');
      // The last checkpoint acknowledged before the kill was taken after unit 10.
      assert.equal(stopped.checkpoint, JSON.stringify({ next: 11, acc: sumSquares(1, 10) }));
      await a.kill();
      // The lease is lost (resume window) and the artifact re-issued, not restarted from scratch.
      await diag.until((e) => e.event === 'lease-lost' && e.leaseId === first.leaseId, 'the lost lease');

      const b = await w.worker({ label: 'B', kinds: ['p4.units'] });
      const second = await b.next('start');
      assert.equal(second.checkpoint, stopped.checkpoint);
      assert.equal(second.attempt, 2);
      const outcome = await within(handle.result(), 'RESULT');
      assert.equal(outcome.state, 'COMPLETED');
      const result = JSON.parse(text(outcome.result)) as UnitsResult;
      // Resumed at unit 11 with the checkpoint's counter, so only 10 units were redone. (Partials 11
      // and 12 may or may not have left the killed process: nothing acknowledged them.)
      assert.deepEqual(result, {
        acc: sumSquares(1, n),
        resumedFrom: 11,
        unitsDone: 10,
        lastPartialSeqAtStart: second.lastPartialSeq,
        label: 'B',
      });
      assert.ok(second.lastPartialSeq >= 10 && second.lastPartialSeq <= 12, `lastPartialSeq ${second.lastPartialSeq}`);
      assert.equal(outcome.digest !== null && outcome.digest.length, 64);
      assert.equal(
        text(outcome.checkpoint),
        JSON.stringify({ next: 21, acc: sumSquares(1, 20) }),
        'RESULT carries the last checkpoint [ATP-6.6-1]',
      );
    },
  );
});

void describe('unfinished artifacts yield their last partial and checkpoint (ATP_SPEC §9.5)', () => {
  const cases = [
    {
      name: 'cancelled',
      payload: { n: 10, cpEvery: 2, stopAfter: 3, then: 'hang' },
      submit: {},
      act: async (h: { cancel(o: { reason: string }): Promise<unknown> }) => {
        await h.cancel({ reason: 'p4: enough' });
      },
      state: 'CANCELLED',
      code: 'ATP_ERR_CANCELLED',
      abort: 'ATP_ERR_CANCELLED',
      last: 3,
      checkpointNext: 3,
    },
    {
      name: 'failed',
      payload: { n: 10, cpEvery: 2, stopAfter: 4, then: 'fail' },
      submit: {},
      act: () => Promise.resolve(),
      state: 'FAILED',
      code: 'ATP_ERR_HANDLER_FATAL',
      abort: undefined,
      last: 4,
      checkpointNext: 5,
    },
    {
      name: 'expired',
      payload: { n: 10, cpEvery: 1, stopAfter: 2, then: 'hang' },
      submit: { deadlineMs: 2_000 },
      act: () => Promise.resolve(),
      state: 'EXPIRED',
      code: 'ATP_ERR_EXPIRED',
      abort: 'ATP_ERR_EXPIRED',
      last: 2,
      checkpointNext: 3,
    },
  ] as const;

  for (const c of cases) {
    void it(
      `a ${c.name} artifact's RESULT carries its last partial result and its checkpoint [ATP-9.5-1] [ATP-6.6-1] [ATP-9.1-4]`,
      { timeout: 60_000 },
      async () => {
        world = new World();
        const w = world;
        await w.coordinator(COORDINATOR);
        const producer = await w.client();
        const handle = await producer.submit({
          kind: 'p4.units',
          payload: JSON.stringify({ ...c.payload, nonce: randomHexId() }),
          follow: 'all',
          ...c.submit,
        });
        const events = record(handle);
        const worker = await w.worker({ label: c.name, kinds: ['p4.units'] });
        const stopped = await worker.next('stopped');
        await events.until((e) => isPartial(e) && e.seq === c.last, `partial ${c.last} at the producer`);
        await c.act(handle);
        const outcome = await within(handle.result(), 'RESULT');
        assert.equal(outcome.state, c.state);
        assert.equal(outcome.code, c.code);
        assert.equal(outcome.digest, null);
        assert.equal(text(outcome.result), JSON.stringify({ unit: c.last, acc: sumSquares(1, c.last) }), 'the last partial result');
        assert.equal(
          text(outcome.checkpoint),
          JSON.stringify({ next: c.checkpointNext, acc: sumSquares(1, c.checkpointNext - 1) }),
          'the last checkpoint',
        );
        assert.equal(text(outcome.checkpoint), stopped.checkpoint);
        if (c.abort !== undefined) assert.equal((await worker.next('abort')).code, c.abort, 'the running handler was stopped');
        // The same RESULT, asked again later [ATP-6.6-2].
        const again = await producer.outcome(handle.id);
        assert.deepEqual(again, outcome);
      },
    );
  }
});
