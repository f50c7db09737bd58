/**
 * Subtree cancellation at scale (ATP_SPEC §8), with real processes over loopback TCP: a coordinator
 * in this process, worker processes running test/fixtures/p4-worker.ts through the worker SDK, and
 * producers through the Client SDK.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { ArtifactHandle } from '../../src/client/handle.js';
import type { SubmitSpec } from '../../src/client/client.js';
import { World, randomHexId, within } from '../fixtures/p4-harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const SPIN_WORKERS = 3;
const SPIN_SLOTS = 6;
const CHILDREN = 99;
const GRANDCHILDREN_EACH = 100;
const SUBTREE = 1 + CHILDREN + CHILDREN * GRANDCHILDREN_EACH; // 10,000

/** Query many artifacts, a few thousand requests in flight at a time. */
async function queryAll(client: Awaited<ReturnType<World['client']>>, ids: readonly string[]) {
  const out = [];
  for (let i = 0; i < ids.length; i += 2_000) out.push(...(await Promise.all(ids.slice(i, i + 2_000).map((id) => client.query(id)))));
  return out;
}

void describe('CANCEL with subtree over a 10,000-artifact tree (ATP_SPEC §8)', () => {
  void it(
    'cancels every pending and leased artifact in one CANCEL, revokes and hears every REVOKE_ACK, and lets no concurrently submitted child escape [ATP-8.1-3] [ATP-8.1-5] [ATP-8.2-1] [ATP-8.2-2] [ATP-8.2-3] [ATP-8.3-1] [ATP-8.3-3] [ATP-8.4-1] [ATP-8.4-2]',
    { timeout: 120_000 },
    async (t) => {
      world = new World();
      const w = world;
      const { diag } = await w.coordinator({ leaseTtlMs: 10_000, cancelDeadlineMs: 5_000 });
      const run = randomHexId().slice(0, 8);

      // 3 processes run handlers that only stop when cancelled; a 4th completes quick children.
      const spinners = await Promise.all(
        Array.from({ length: SPIN_WORKERS }, (_, i) => w.worker({ label: `spin${i}`, kinds: ['p4.spin'], concurrency: SPIN_SLOTS })),
      );
      const quick = await w.worker({ label: 'quick', kinds: ['p4.quick'], concurrency: 4 });
      const producer = await w.client();

      // Root, 99 children, 9,900 grandchildren.
      const spin = (payload: string, parentId?: string): SubmitSpec => ({
        kind: 'p4.spin',
        payload: `${run}/${payload}`,
        follow: 'none',
        ...(parentId !== undefined ? { parentId } : {}),
      });
      const root = (await producer.submit(spin('root'))).id;
      const children = (await producer.submitMany(Array.from({ length: CHILDREN }, (_, i) => spin(`c${i}`, root)))).map((h) => h.id);
      const grandchildren: string[] = [];
      for (let i = 0; i < CHILDREN; i += 10) {
        const specs = children
          .slice(i, i + 10)
          .flatMap((c, j) => Array.from({ length: GRANDCHILDREN_EACH }, (_, k) => spin(`g${i + j}.${k}`, c)));
        grandchildren.push(...(await producer.submitMany(specs)).map((h) => h.id));
      }
      const tree = [root, ...children, ...grandchildren];
      assert.equal(new Set(tree).size, SUBTREE);

      // A mix of leased (every spin slot busy) and pending (the rest).
      const spinStarts = () => spinners.flatMap((s) => s.starts('p4.spin'));
      await within(
        Promise.all(spinners.map((s) => s.reports.count((r) => r.ev === 'start', SPIN_SLOTS, `${s.label} holding ${SPIN_SLOTS} leases`))),
        'every spin slot leased',
      );
      const leasedBefore = spinStarts();
      assert.equal(leasedBefore.length, SPIN_WORKERS * SPIN_SLOTS);

      // Another producer keeps submitting children (quick ones, which would complete if they
      // escaped) of random subtree members, its own new children included, across the cancel.
      const submitter = await w.client();
      const members = [...tree];
      const born: Array<{ handle: ArtifactHandle; sentAfterAnswer: boolean }> = [];
      let answered = false;
      let batchesAfter = 0;
      const loop = (async () => {
        while (batchesAfter < 10) {
          const sentAfterAnswer = answered;
          const specs: SubmitSpec[] = Array.from({ length: 16 }, (_, i) => ({
            kind: 'p4.quick',
            id: randomHexId(),
            // Most complete at once; some hold their lease until revoked.
            payload: JSON.stringify({ holdMs: i % 4 === 0 ? 30_000 : 5 }),
            parentId: members[Math.floor(Math.random() * members.length)]!,
            follow: 'none',
          }));
          for (const h of await submitter.submitMany(specs)) {
            born.push({ handle: h, sentAfterAnswer });
            members.push(h.id);
          }
          if (sentAfterAnswer) batchesAfter++;
        }
      })();
      await within(
        (async () => {
          while (born.length < 160 || quick.starts().length < 8) await new Promise((r) => setTimeout(r, 5));
        })(),
        'children submitted and leased before the cancel',
      );

      const summary = await within(producer.cancel(root, { subtree: true, reason: 'p4: cancel the whole tree' }), 'CANCEL_RESULT');
      answered = true;
      await within(loop, 'the concurrent submitter');

      // Children decided before the cancel are in the subtree it covered; those decided after are born CANCELLED.
      const coveredChildren = born.filter((b) => b.handle.acceptedState !== 'CANCELLED');
      for (const b of born)
        assert.ok(['PENDING', 'CANCELLED'].includes(b.handle.acceptedState), `child accepted as ${b.handle.acceptedState}`);
      const sentAfter = born.filter((b) => b.sentAfterAnswer);
      assert.ok(sentAfter.length >= 160);
      for (const b of sentAfter)
        assert.equal(b.handle.acceptedState, 'CANCELLED', 'a child submitted after CANCEL_RESULT is born CANCELLED [ATP-8.2-2]');
      assert.ok(coveredChildren.length >= 160, 'children submitted before the cancel were covered by it');

      // CANCEL_RESULT counts add up [ATP-8.1-5].
      assert.equal(summary.cancelled + summary.alreadyFinished, SUBTREE + coveredChildren.length, JSON.stringify(summary));

      // Every running handler saw its signal abort (with the cancel's code) and the coordinator heard
      // a REVOKE_ACK for each revoked lease, none timed out [ATP-8.3-3] [ATP-8.4-1] [ATP-8.4-2].
      await within(
        Promise.all(spinners.map((s) => s.reports.count((r) => r.ev === 'abort', SPIN_SLOTS, `${s.label}: every handler aborted`))),
        'spin handlers aborted',
      );
      await diag.count((e) => e.event === 'revoke-ack', summary.stopping, `${summary.stopping} REVOKE_ACKs`);
      const spinAborts = spinners.flatMap((s) => s.aborts('p4.spin'));
      assert.deepEqual(
        new Set(spinAborts.map((a) => a.leaseId)),
        new Set(leasedBefore.map((s) => s.leaseId)),
        'every leased spin handler, and only those, aborted',
      );
      for (const a of spinAborts) assert.equal(a.code, 'ATP_ERR_CANCELLED');
      assert.equal(spinStarts().length, leasedBefore.length, 'no cancelled artifact was leased again');
      const acked = new Set(diag.filter((e) => e.event === 'revoke-ack').map((e) => e.leaseId as string));
      for (const s of leasedBefore) assert.ok(acked.has(s.leaseId), `REVOKE_ACK for lease ${s.leaseId}`);
      assert.equal(diag.filter((e) => e.event === 'revoke-timeout').length, 0);
      assert.equal(diag.filter((e) => e.event === 'lease-lost').length, 0);

      // stopping = leases held at the decision: the spin ones, plus quick ones that were revoked
      // while running (their handler aborted) or with their COMPLETE in flight (refused, CANCELLED).
      const quickAborted = quick.aborts('p4.quick').filter((a) => a.code === 'ATP_ERR_CANCELLED');
      const refusedCompletes = diag.filter((e) => e.event === 'stale' && e.frame !== 'REVOKE_ACK' && e.code === 'ATP_ERR_CANCELLED');
      assert.equal(summary.stopping, leasedBefore.length + quickAborted.length + refusedCompletes.length, JSON.stringify(summary));
      assert.equal(acked.size, summary.stopping);
      t.diagnostic(
        `cancel: ${JSON.stringify(summary)}; children ${born.length} (covered ${coveredChildren.length}); quick aborted ${quickAborted.length}, refused COMPLETEs ${refusedCompletes.length}`,
      );

      // Every artifact ends CANCELLED; the only COMPLETED ones had finished before the cancel
      // decided (they are its alreadyFinished): none completed after it [ATP-8.1-3] [ATP-8.2-3].
      const states = await queryAll(producer, [...tree, ...born.map((b) => b.handle.id)]);
      const byState = new Map<string, number>();
      for (const s of states) byState.set(s.state, (byState.get(s.state) ?? 0) + 1);
      for (const s of states.slice(0, SUBTREE)) {
        assert.equal(s.state, 'CANCELLED', `${s.id} is ${s.state}`);
        assert.equal(s.code, 'ATP_ERR_CANCELLED');
      }
      assert.deepEqual(
        [...byState.keys()].filter((k) => k !== 'CANCELLED' && k !== 'COMPLETED'),
        [],
      );
      assert.equal(byState.get('COMPLETED') ?? 0, summary.alreadyFinished, `states ${JSON.stringify([...byState])}`);
      assert.equal(byState.get('CANCELLED'), SUBTREE + born.length - summary.alreadyFinished);

      // Idempotent: a second CANCEL changes nothing and counts everything as finished [ATP-8.1-6].
      const again = await producer.cancel(root, { subtree: true });
      assert.deepEqual(again, { cancelled: 0, alreadyFinished: SUBTREE + born.length, stopping: 0 });
    },
  );
});
