/**
 * Exactly once (ATP_SPEC §12): whatever the interleaving of grants, renewals, expiries, results,
 * failures, releases, drops and resumes, an artifact reaches one terminal state once, at most one
 * result is accepted, the accepted result is the stored one, epochs only rise, and a watcher sees
 * one RESULT. Sequences of events are generated with fast-check and run against a real coordinator
 * on a fake clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../src/internal/ids.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { ArtifactRecord } from '../../src/store/memory-store.js';
import type { MessageOf } from '../../src/wire/index.js';
import { Peer, producer, queryResult, settle, startCoordinator, submit, text } from './harness.js';

type Cmd =
  | { op: 'credit'; w: number }
  | { op: 'advance'; ms: number }
  | { op: 'renew'; w: number }
  | { op: 'complete'; w: number; k: number }
  | { op: 'fail'; w: number; k: number; retryable: boolean }
  | { op: 'release'; w: number; k: number }
  | { op: 'partial'; w: number; k: number }
  | { op: 'reconnect'; w: number }
  | { op: 'cancel' };

const W = 3;
const wArb = fc.integer({ min: 0, max: W - 1 });
const kArb = fc.integer({ min: 0, max: 5 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: wArb.map((w) => ({ op: 'credit' as const, w })) },
  { weight: 4, arbitrary: fc.constantFrom(100, 600, 1_100).map((ms) => ({ op: 'advance' as const, ms })) },
  { weight: 2, arbitrary: wArb.map((w) => ({ op: 'renew' as const, w })) },
  { weight: 5, arbitrary: fc.record({ w: wArb, k: kArb }).map((x) => ({ op: 'complete' as const, ...x })) },
  { weight: 2, arbitrary: fc.record({ w: wArb, k: kArb, retryable: fc.boolean() }).map((x) => ({ op: 'fail' as const, ...x })) },
  { weight: 1, arbitrary: fc.record({ w: wArb, k: kArb }).map((x) => ({ op: 'release' as const, ...x })) },
  { weight: 1, arbitrary: fc.record({ w: wArb, k: kArb }).map((x) => ({ op: 'partial' as const, ...x })) },
  { weight: 1, arbitrary: wArb.map((w) => ({ op: 'reconnect' as const, w })) },
  { weight: 1, arbitrary: fc.constant({ op: 'cancel' as const }) },
);

interface SimWorker {
  peer: Peer;
  nodeId: Uint8Array;
  welcome: MessageOf<'WELCOME'>;
  /** Every lease this worker ever received, across its connections. */
  leases: Array<MessageOf<'LEASE'>>;
  seen: number;
  stream: number;
  /** Result bytes of each COMPLETE sent, by connection and stream. */
  completes: Map<string, string>;
  conn: number;
  peers: Peer[];
}

const enc = new TextEncoder();

/** A memory store whose transitions become durable a few turns later, like a store with group commit. */
class DeferredCommitStore extends MemoryStore {
  protected override commit<T>(value: T, changed: readonly ArtifactRecord[]): Promise<T> {
    if (changed.length === 0) return Promise.resolve(value);
    return new Promise((resolve) => setImmediate(() => setImmediate(() => resolve(value))));
  }
}

export async function run(cmds: readonly Cmd[], latePolicy: number, groupCommit = false): Promise<void> {
  const tc = await startCoordinator({
    leaseTtlMs: 1_000,
    resumeWindowMs: 500,
    cancelDeadlineMs: 700,
    ...(groupCommit ? { store: new DeferredCommitStore() } : {}),
  });
  try {
    const prod = await producer(tc.url);
    prod.send(submit(1, 'k', 'the artifact', { watch: 3, maxAttempts: 1000, latePolicy }));
    const acc = await prod.next('ACCEPTED', (m) => m.stream === 1);
    const workers: SimWorker[] = [];
    for (let i = 0; i < W; i++) {
      const nodeId = Buffer.alloc(16, i + 1);
      const peer = await Peer.open(tc.url);
      const welcome = await peer.hello({ roles: 1, kinds: ['k'], credits: 0, nodeId });
      workers.push({ peer, nodeId, welcome, leases: [], seen: 0, stream: 1, completes: new Map(), conn: 0, peers: [peer] });
    }
    let serial = 0;
    const collect = () => {
      for (const w of workers) {
        const log = w.peer.log;
        for (; w.seen < log.length; w.seen++) {
          const m = log[w.seen]!;
          if (m.type === 'LEASE') w.leases.push(m);
        }
      }
    };
    const pick = (w: SimWorker, k: number) => (w.leases.length === 0 ? undefined : w.leases[k % w.leases.length]);
    for (const c of cmds) {
      collect();
      switch (c.op) {
        case 'credit':
          workers[c.w]!.peer.send({ type: 'CREDIT', stream: 0, credits: 1 });
          break;
        case 'advance':
          tc.clock.advance(c.ms);
          break;
        case 'renew': {
          const w = workers[c.w]!;
          w.peer.send({ type: 'RENEW', stream: (w.stream += 2), leaseIds: [] });
          break;
        }
        case 'complete': {
          const w = workers[c.w]!;
          const l = pick(w, c.k);
          if (l === undefined) break;
          const result = `w${c.w}:e${l.epoch}:${++serial}`;
          const stream = (w.stream += 2);
          w.completes.set(`${w.conn}/${stream}`, result);
          w.peer.send({ type: 'COMPLETE', stream, leaseId: l.leaseId, epoch: l.epoch, result: enc.encode(result) });
          break;
        }
        case 'fail': {
          const w = workers[c.w]!;
          const l = pick(w, c.k);
          if (l !== undefined)
            w.peer.send({
              type: 'FAIL',
              stream: (w.stream += 2),
              leaseId: l.leaseId,
              epoch: l.epoch,
              code: 0,
              retryable: c.retryable ? 1 : 0,
              message: 'x',
            });
          break;
        }
        case 'release': {
          const w = workers[c.w]!;
          const l = pick(w, c.k);
          if (l !== undefined)
            w.peer.send({
              type: 'RELEASE',
              stream: (w.stream += 2),
              leaseId: l.leaseId,
              epoch: l.epoch,
              hasCheckpoint: 0,
              checkpoint: new Uint8Array(0),
              reason: '',
            });
          break;
        }
        case 'partial': {
          const w = workers[c.w]!;
          const l = pick(w, c.k);
          if (l !== undefined)
            w.peer.send({
              type: 'PARTIAL',
              stream: (w.stream += 2),
              leaseId: l.leaseId,
              epoch: l.epoch,
              seq: l.lastPartialSeq + 1,
              data: enc.encode('p'),
            });
          break;
        }
        case 'reconnect': {
          const w = workers[c.w]!;
          w.peer.close();
          await settle();
          collect();
          const peer = await Peer.open(tc.url);
          w.welcome = await peer.hello({
            roles: 1,
            kinds: ['k'],
            credits: 0,
            nodeId: w.nodeId,
            resumeSessionId: w.welcome.sessionId,
            resumeToken: w.welcome.resumeToken,
          });
          w.peer = peer;
          w.peers.push(peer);
          w.seen = 0;
          w.conn++;
          w.stream = 1;
          break;
        }
        case 'cancel':
          prod.send({ type: 'CANCEL', stream: 1001, artifactId: acc.artifactId, subtree: 0, reason: 'model cancel' });
          break;
      }
      await settle();
    }
    // Drive it to an end: the workers vanish, their leases are lost, a fresh worker finishes it.
    collect();
    for (const w of workers) w.peer.close();
    await settle();
    tc.clock.advance(2_000);
    const finisher = await Peer.open(tc.url);
    await finisher.hello({ roles: 1, kinds: ['k'], credits: 1 });
    await settle();
    const last = finisher.log.find((m) => m.type === 'LEASE');
    if (last !== undefined && last.type === 'LEASE')
      finisher.send({ type: 'COMPLETE', stream: 1, leaseId: last.leaseId, epoch: last.epoch, result: enc.encode('finisher') });
    await settle();
    collect();

    // ---- the invariants --------------------------------------------------------------------
    const accepted: string[] = [];
    for (const w of workers) {
      w.peers.forEach((p, conn) => {
        for (const m of p.log) {
          if (m.type === 'ACK' && m.ackedType === 0x0027) {
            const r = w.completes.get(`${conn}/${m.stream}`);
            assert.ok(r !== undefined, 'an ACK answers a COMPLETE that was sent');
            accepted.push(r);
          }
        }
      });
    }
    if (finisher.log.some((m) => m.type === 'ACK' && m.ackedType === 0x0027)) accepted.push('finisher');
    assert.ok(accepted.length <= 1, `at most one result accepted, got ${accepted.join(', ')}`);
    // A lease whose result was acknowledged was not also lost (no LEASE_LOST notice for it), unless
    // the late policy took the result of a lost lease.
    for (const w of latePolicy === 0 ? workers : []) {
      const acked = new Set<string>();
      const lost = new Set<string>();
      w.peers.forEach((p, conn) => {
        for (const m of p.log) {
          if (m.type === 'ACK' && m.ackedType === 0x0027) acked.add(toHex(m.subject));
          if (m.type === 'LEASE_LOST' && m.stream === 0) lost.add(toHex(m.leaseId));
        }
        void conn;
      });
      for (const id of acked) assert.ok(!lost.has(id), `lease ${id} was both acknowledged and reported lost`);
    }

    const results = prod.log.filter((m) => m.type === 'RESULT' && m.stream === 1);
    assert.equal(results.length, 1, 'the watcher sees exactly one RESULT');
    const final = await queryResult(prod, acc.artifactId);
    const r = results[0]!;
    assert.ok(r.type === 'RESULT');
    assert.equal(r.state, final.state);
    assert.equal(text(r.result), text(final.result));
    const terminalStates = prod.log.filter((m) => m.type === 'STATE' && m.stream === 1 && m.state >= 3);
    assert.equal(terminalStates.length, 1, 'one terminal STATE');
    if (final.state === 3) {
      assert.equal(accepted.length, 1, 'COMPLETED means one accepted result');
      assert.equal(text(final.result), accepted[0]);
    } else assert.equal(accepted.length, 0, `no result accepted for state ${final.state}`);

    const all = [...workers.flatMap((w) => w.leases), ...finisher.log.filter((m): m is MessageOf<'LEASE'> => m.type === 'LEASE')];
    const epochs = all.map((l) => l.epoch).sort((a, b) => a - b);
    assert.equal(new Set(epochs).size, epochs.length, 'no two leases with the same epoch');
    assert.equal(new Set(all.map((l) => toHex(l.leaseId))).size, all.length, 'lease ids are unique');
    for (const p of [prod, finisher, ...workers.map((w) => w.peer)]) p.close();
  } finally {
    await tc.close();
  }
}

void describe('exactly once under any interleaving (ATP_SPEC §12)', () => {
  void it('with the REJECT late policy, one terminal state and at most one accepted result', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 4, maxLength: 30 }), (cmds) => run(cmds, 0)),
      { numRuns: Number(process.env.ATP_FC_RUNS ?? 60), verbose: 1 },
    );
  });

  void it('with a store whose commits are deferred (group commit), one terminal state and at most one accepted result', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 4, maxLength: 30 }), fc.constantFrom(0, 1), (cmds, late) => run(cmds, late, true)),
      { numRuns: Number(process.env.ATP_FC_RUNS ?? 60), verbose: 1 },
    );
  });

  void it('with the ACCEPT_IF_UNRESOLVED late policy, one terminal state and at most one accepted result', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 4, maxLength: 30 }), (cmds) => run(cmds, 1)),
      { numRuns: Number(process.env.ATP_FC_RUNS ?? 60), verbose: 1 },
    );
  });
});
