/**
 * Late-result policies (ATP_SPEC §10) with real processes over loopback TCP.
 *
 * A late COMPLETE needs a worker that was frozen while its lease ran out: the `p4.late` handler in
 * `block` mode is a CPU-bound step that never yields, and the test SIGSTOPs its process too. When the
 * test lets it go (SIGCONT and the step's go-file), the step ends before the process reads the
 * LEASE_LOST that waits on its socket, so the worker SDK sends its COMPLETE under the expired lease.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import type { Client } from '../../src/client/client.js';
import type { ArtifactHandle } from '../../src/client/handle.js';
import { World, randomHexId, touch, within } from '../fixtures/p4-harness.js';
import type { Diag, Events, ReportOf, WorkerProcess } from '../fixtures/p4-harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const dec = new TextDecoder();
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface LateScene {
  w: World;
  diag: Events<Diag>;
  producer: Client;
  handle: ArtifactHandle;
  a: WorkerProcess;
  b: WorkerProcess;
  go: string;
  startA: ReportOf<'start'>;
  startB: ReportOf<'start'>;
}

/**
 * Worker A takes the lease and freezes (SIGSTOP, in a step that never yields); its lease expires
 * (ttl 1 s) and worker B gets the re-issued lease, which it holds until told to finish.
 */
async function lateScene(latePolicy: 'reject' | 'accept-if-unresolved'): Promise<LateScene> {
  world = new World();
  const w = world;
  // A's lease runs out 1 s after its last renewal; not shorter, so that B's lease (renewed every
  // third of it) survives a stall of this shared machine.
  const { diag } = await w.coordinator({ leaseTtlMs: 1_000, resumeWindowMs: 200 });
  const go = w.tempPath('go');
  const a = await w.worker({ label: 'A', kinds: ['p4.late'], mode: 'block', goFile: go });
  const producer = await w.client();
  const handle = await producer.submit({ kind: 'p4.late', payload: `late ${latePolicy} ${randomHexId()}`, latePolicy, follow: 'all' });
  const startA = await a.next('start');
  assert.equal(startA.epoch, 1);
  a.signal('SIGSTOP');
  const lost = await diag.until((e) => e.event === 'lease-lost' && e.leaseId === startA.leaseId, "A's lease expiring");
  assert.equal(lost.code, 'ATP_ERR_LEASE_EXPIRED');
  const b = await w.worker({ label: 'B', kinds: ['p4.late'], mode: 'wait' });
  const startB = await b.next('start');
  assert.equal(startB.epoch, 2, 're-issued at the next epoch');
  assert.equal(startB.id, handle.id);
  return { w, diag, producer, handle, a, b, go, startA, startB };
}

/** Let A go: its step ends and the SDK sends COMPLETE under the expired lease. */
async function releaseA(s: LateScene): Promise<void> {
  touch(s.go);
  s.a.signal('SIGCONT');
  await s.a.next('return', (r) => r.leaseId === s.startA.leaseId);
}

const staleFor = (leaseId: string) => (e: Diag) => e.event === 'stale' && e.leaseId === leaseId && e.frame === undefined;

void describe('late-result policy REJECT (ATP_SPEC §10.1)', () => {
  void it(
    "refuses a SIGSTOPped worker's COMPLETE after its lease expired and was re-issued; accepts the re-issued lease's result [ATP-10.1-1] [ATP-5.7-4] [ATP-12.1-2]",
    { timeout: 60_000 },
    async () => {
      const s = await lateScene('reject');
      await releaseA(s);
      const refused = await s.diag.until(staleFor(s.startA.leaseId), "LEASE_LOST for A's late COMPLETE");
      assert.equal(refused.code, 'ATP_ERR_LEASE_EXPIRED');
      assert.equal(refused.epoch, 1);
      assert.equal(await s.handle.state(), 'LEASED', 'the late COMPLETE changed nothing');

      s.b.send({ cmd: 'finish', leaseId: s.startB.leaseId });
      const outcome = await within(s.handle.result(), 'RESULT');
      assert.equal(outcome.state, 'COMPLETED');
      assert.equal(dec.decode(outcome.result), 'result-from-B');
      assert.equal(outcome.digest, sha256('result-from-B'));
      assert.equal(s.b.aborts().length, 0);
      // The worker SDK counts only acknowledged results: A's refused one does not count.
      await within(
        (async () => {
          while ((await s.b.stats()).completed < 1);
        })(),
        "B's ACK",
      );
      assert.equal((await s.a.stats()).completed, 0, 'a refused COMPLETE is not counted as completed');
    },
  );
});

void describe('late-result policy ACCEPT_IF_UNRESOLVED (ATP_SPEC §10.2)', () => {
  void it(
    'accepts the late COMPLETE of the expired lease when no other lease completed first, and revokes the current holder: exactly one result [ATP-10.2-1] [ATP-10.2-2] [ATP-12.1-2]',
    { timeout: 60_000 },
    async () => {
      const s = await lateScene('accept-if-unresolved');
      await releaseA(s);
      const outcome = await within(s.handle.result(), 'RESULT');
      assert.equal(outcome.state, 'COMPLETED');
      assert.equal(dec.decode(outcome.result), 'result-from-A');
      assert.equal(outcome.digest, sha256('result-from-A'));
      assert.equal(s.diag.filter(staleFor(s.startA.leaseId)).length, 0, 'the late COMPLETE was not refused');

      // B, the current holder, is revoked: its handler stops and never completes.
      const abort = await s.b.next('abort');
      const seen = JSON.stringify({ b: s.b.reports.all, diag: s.diag.all.filter((e) => e.event !== 'session') });
      assert.equal(abort.leaseId, s.startB.leaseId, seen);
      assert.equal(abort.code, 'ATP_ERR_STALE_LEASE', seen);
      assert.equal(abort.message, 'superseded by a late result', seen);
      await s.diag.until((e) => e.event === 'revoke-ack' && e.leaseId === s.startB.leaseId, "B's REVOKE_ACK");
      s.b.send({ cmd: 'finish' });
      assert.equal(s.b.reports.filter((r) => r.ev === 'return').length, 0);
      const again = await s.producer.outcome(s.handle.id);
      assert.equal(again?.state, 'COMPLETED');
      assert.equal(dec.decode(again?.result ?? new Uint8Array()), 'result-from-A', 'still the one accepted result');
    },
  );

  void it(
    'refuses the late COMPLETE once the current lease has completed: the first result stays the only one [ATP-10.2-1] [ATP-10.2-3] [ATP-12.1-1]',
    { timeout: 60_000 },
    async () => {
      const s = await lateScene('accept-if-unresolved');
      s.b.send({ cmd: 'finish', leaseId: s.startB.leaseId });
      const outcome = await within(s.handle.result(), 'RESULT');
      assert.equal(dec.decode(outcome.result), 'result-from-B');
      await releaseA(s);
      const refused = await s.diag.until(staleFor(s.startA.leaseId), "LEASE_LOST for A's late COMPLETE");
      assert.equal(refused.code, 'ATP_ERR_LEASE_EXPIRED');
      const again = await s.producer.outcome(s.handle.id);
      assert.equal(again?.state, 'COMPLETED');
      assert.equal(dec.decode(again?.result ?? new Uint8Array()), 'result-from-B');
      assert.equal(again?.digest, sha256('result-from-B'));
    },
  );
});

void describe('late-result policy QUORUM (ATP_SPEC §10.3)', () => {
  void it(
    'completes when k results agree, also with one dissenter, and fails with ATP_ERR_QUORUM_DISAGREEMENT listing the digests when none agree [ATP-10.3-1] [ATP-10.3-3] [ATP-10.3-4] [ATP-10.3-5] [ATP-10.3-9]',
    { timeout: 60_000 },
    async () => {
      world = new World();
      const w = world;
      await w.coordinator({ leaseTtlMs: 2_000 });
      // Three processes, so three distinct node ids; two slots each, so a node could take two
      // leases of one artifact if the coordinator let it.
      const voters = await Promise.all(['V1', 'V2', 'V3'].map((label) => w.worker({ label, kinds: ['p4.vote'], concurrency: 2 })));
      const producer = await w.client();
      const nonce = randomHexId();
      const [agree, oneWrong, disagree] = await producer.submitMany([
        { kind: 'p4.vote', payload: JSON.stringify({ default: 'forty-two', nonce }), latePolicy: { quorum: [3, 3] } },
        {
          kind: 'p4.vote',
          payload: JSON.stringify({ default: 'forty-two', answers: { V3: 'forty-one' }, nonce }),
          latePolicy: { quorum: [2, 3] },
        },
        {
          kind: 'p4.vote',
          payload: JSON.stringify({ default: 'none', answers: { V1: 'red', V2: 'green', V3: 'blue' }, nonce }),
          latePolicy: { quorum: [2, 3] },
        },
      ]);

      const [o1, o2, o3] = await within(Promise.all([agree!.result(), oneWrong!.result(), disagree!.result()]), 'the three RESULTs');
      // All three computed the same result: COMPLETED with its digest.
      assert.equal(o1.state, 'COMPLETED');
      assert.equal(dec.decode(o1.result), 'forty-two');
      assert.equal(o1.digest, sha256('forty-two'));
      // One of three returned something else, k = 2: still COMPLETED with the majority's result.
      assert.equal(o2.state, 'COMPLETED');
      assert.equal(dec.decode(o2.result), 'forty-two');
      assert.equal(o2.digest, sha256('forty-two'));
      // All disagree: FAILED, the message lists each digest (hex) with its count.
      assert.equal(o3.state, 'FAILED');
      assert.equal(o3.code, 'ATP_ERR_QUORUM_DISAGREEMENT');
      assert.equal(o3.digest, null);
      for (const answer of ['red', 'green', 'blue'])
        assert.match(o3.message, new RegExp(`${sha256(answer).slice(0, 16)}[0-9a-f]*\\D+1\\b`), `${answer} in ${o3.message}`);

      // Each artifact's leases went to distinct nodes, and every node took part in the unanimous one.
      const starts = voters.flatMap((v) => v.starts('p4.vote'));
      for (const h of [agree!, oneWrong!, disagree!]) {
        const mine = starts.filter((r) => r.id === h.id);
        assert.equal(new Set(mine.map((r) => r.label)).size, mine.length, `one lease per node for ${h.id}`);
        assert.equal(new Set(mine.map((r) => r.epoch)).size, mine.length, 'each lease has its own epoch');
      }
      assert.equal(starts.filter((r) => r.id === agree!.id).length, 3);
      assert.equal(starts.filter((r) => r.id === disagree!.id).length, 3);
    },
  );
});
