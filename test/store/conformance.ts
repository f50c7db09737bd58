/**
 * The store conformance suite (ATP_SPEC §3.4): every Store implementation runs it. Each test opens
 * a fresh store from the factory and closes it afterwards. Times are passed in (`now`): no test
 * sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { artifactDigest, sha256, toHex } from '../../src/internal/ids.js';
import type { Grant, LeaseRef, NewArtifact, Store } from '../../src/store/store.js';

/** Makes a new, empty, unopened store. */
export type StoreFactory = () => Store | Promise<Store>;

const NOW = 1_000_000;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** An id (32 hex characters) from a number. */
export function hexId(n: number): string {
  return n.toString(16).padStart(32, '0');
}

/** A new artifact of kind `k` whose payload is its name. */
export function artifact(n: number, over: Partial<NewArtifact> = {}): NewArtifact {
  const kind = over.kind ?? 'k';
  const payload = over.payload ?? enc.encode(`payload-${n}`);
  return {
    tenant: '',
    id: hexId(n),
    digest: toHex(artifactDigest(kind, payload)),
    kind,
    payload,
    priority: 0,
    latePolicy: 0,
    quorumK: 0,
    quorumN: 0,
    leaseTtlMs: 30_000,
    maxDurationMs: 0,
    deadlineAt: 0,
    maxAttempts: 3,
    parentId: null,
    tags: [],
    ...over,
  };
}

let leaseCounter = 0;
/** A fresh lease id. */
export function newLeaseId(): string {
  return (0xabc00000000 + ++leaseCounter).toString(16).padStart(32, 'f');
}

const savedSessions = new WeakMap<Store, Set<string>>();

/** Save a worker session (token hash `00`) unless acquire() or this already did. */
export async function ensureSession(store: Store, sessionId: string, nodeId = 'n1', tenant = ''): Promise<void> {
  let saved = savedSessions.get(store);
  if (saved === undefined) savedSessions.set(store, (saved = new Set()));
  if (saved.has(sessionId)) return;
  saved.add(sessionId);
  await store.saveSession({ sessionId, tokenHash: '00', nodeId, tenant, roles: 1 });
}

/** Ask for leases as session `sessionId` on node `nodeId` (saved first, as the coordinator does before any grant). */
export async function acquire(
  store: Store,
  o: { sessionId?: string; nodeId?: string; kinds?: string[]; max?: number; now?: number; tenant?: string; maxMessageBytes?: number } = {},
): Promise<Grant[]> {
  const sessionId = o.sessionId ?? 's1';
  await ensureSession(store, sessionId, o.nodeId, o.tenant);
  return store.acquire({
    tenant: o.tenant ?? '',
    sessionId: o.sessionId ?? 's1',
    nodeId: o.nodeId ?? 'n1',
    kinds: new Set(o.kinds ?? ['k']),
    max: o.max ?? 1,
    now: o.now ?? NOW,
    newLeaseId,
    maxMessageBytes: o.maxMessageBytes,
  });
}

/** The guard naming a grant. */
export function refOf(g: Grant): LeaseRef {
  return { leaseId: g.leaseId, epoch: g.epoch, sessionId: g.sessionId };
}

async function one(store: Store, o: Parameters<typeof acquire>[1] = {}): Promise<Grant> {
  const gs = await acquire(store, o);
  assert.equal(gs.length, 1, 'expected one grant');
  return gs[0]!;
}

async function submitOk(store: Store, a: NewArtifact): Promise<void> {
  const [out] = await store.submit([a], NOW);
  assert.equal(out?.kind, 'accepted');
}

async function stateOf(store: Store, id: string, tenant = ''): Promise<string | undefined> {
  return (await store.get(tenant, id))?.state;
}

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : dec.decode(b));

/** Runs the conformance suite against one store. */
export function runStoreConformance(name: string, makeStore: StoreFactory): void {
  async function fresh(t: TestContext): Promise<Store> {
    const store = await makeStore();
    await store.open();
    t.after(() => store.close());
    return store;
  }

  void describe(`${name} store conformance`, () => {
    void describe('submit', () => {
      void it('accepts new artifacts as PENDING at epoch 0 and reads them back', async (t) => {
        const s = await fresh(t);
        const outs = await s.submit([artifact(1), artifact(2, { tags: ['a', 'b'] })], NOW);
        assert.deepEqual(
          outs.map((o) => (o.kind === 'accepted' ? [o.view.state, o.view.epoch, o.duplicate] : o.kind)),
          [
            ['PENDING', 0, false],
            ['PENDING', 0, false],
          ],
        );
        const v = await s.get('', hexId(2));
        assert.equal(v?.id, hexId(2));
        assert.equal(v?.kind, 'k');
        assert.deepEqual(v?.tags, ['a', 'b']);
        assert.equal(v?.failedAttempts, 0);
        assert.equal(await s.get('', hexId(3)), undefined);
        assert.equal(await s.result('', hexId(1)), undefined, 'no result while not terminal');
      });

      void it('a resubmission with the same id and digest is idempotent: the first options win and the current state is reported', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { priority: 1 }));
        await one(s);
        const [dup] = await s.submit([artifact(1, { priority: 200, maxAttempts: 9 })], NOW);
        assert.equal(dup?.kind, 'accepted');
        assert.ok(dup?.kind === 'accepted' && dup.duplicate);
        assert.equal(dup.view.state, 'LEASED');
        assert.equal((await s.counts()).LEASED, 1);
        assert.equal((await s.counts()).PENDING, 0);
      });

      void it('the same id with another digest is a CONFLICT naming the bound digest', async (t) => {
        const s = await fresh(t);
        const a = artifact(1);
        await submitOk(s, a);
        const [out] = await s.submit([artifact(1, { payload: enc.encode('other') })], NOW);
        assert.deepEqual(out, { kind: 'conflict', existingDigest: a.digest });
        assert.equal((await s.counts()).PENDING, 1);
      });

      void it('a child needs an existing parent of the same tenant, and may follow it in the same batch', async (t) => {
        const s = await fresh(t);
        const outs = await s.submit(
          [
            artifact(2, { parentId: hexId(1) }),
            artifact(1),
            artifact(3, { parentId: hexId(1) }),
            artifact(4, { tenant: 'other', parentId: hexId(1) }),
          ],
          NOW,
        );
        assert.deepEqual(
          outs.map((o) => o.kind),
          ['parent-not-found', 'accepted', 'accepted', 'parent-not-found'],
        );
        assert.equal(await s.get('', hexId(2)), undefined);
        assert.deepEqual(await s.ancestors('', hexId(3)), [hexId(1)]);
        assert.deepEqual((await s.subtree('', hexId(1))).map((v) => v.id).sort(), [hexId(1), hexId(3)]);
      });

      void it('tags, subtrees and ids are scoped by tenant', async (t) => {
        const s = await fresh(t);
        await s.submit(
          [
            artifact(1, { tags: ['x'] }),
            artifact(1, { tenant: 't2', tags: ['x'], payload: enc.encode('t2') }),
            artifact(2, { tags: ['y'] }),
          ],
          NOW,
        );
        assert.deepEqual(
          (await s.byTag('', 'x')).map((v) => [v.tenant, v.id]),
          [['', hexId(1)]],
        );
        assert.deepEqual(
          (await s.byTag('t2', 'x')).map((v) => [v.tenant, v.id]),
          [['t2', hexId(1)]],
        );
        assert.equal(await s.get('t3', hexId(1)), undefined);
        assert.equal((await acquire(s, { tenant: 't3', max: 10 })).length, 0);
        const g = await one(s, { tenant: 't2', max: 10 });
        assert.equal(g.tenant, 't2');
        assert.equal(text(g.payload), 't2');
      });
    });

    void describe('acquire', () => {
      void it("does not grant an artifact whose LEASE exceeds the worker's maximum message size; it stays queued for another (ATP-3.10-6)", async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1, { payload: new Uint8Array(100_000) }), artifact(2, { payload: new Uint8Array(1_000) })], NOW);
        const small = await acquire(s, { max: 5, maxMessageBytes: 65_536 });
        assert.deepEqual(
          small.map((g) => g.artifactId),
          [hexId(2)],
          'only the one that fits',
        );
        assert.equal(await stateOf(s, hexId(1)), 'PENDING');
        const large = await acquire(s, { sessionId: 's2', nodeId: 'n2', max: 5, maxMessageBytes: 1_048_576 });
        assert.deepEqual(
          large.map((g) => g.artifactId),
          [hexId(1)],
        );
        assert.equal(large[0]!.epoch, 1, 'the first lease of it: no attempt was used up');
      });

      void it('grants the highest priority first, FIFO within a priority, only the kinds asked for', async (t) => {
        const s = await fresh(t);
        await s.submit(
          [
            artifact(1, { priority: 1 }),
            artifact(2, { priority: 5 }),
            artifact(3, { priority: 1 }),
            artifact(4, { priority: 5 }),
            artifact(5, { kind: 'other', priority: 9 }),
            artifact(6, { priority: 0 }),
          ],
          NOW,
        );
        const gs = await acquire(s, { max: 10 });
        assert.deepEqual(
          gs.map((g) => g.artifactId),
          [2, 4, 1, 3, 6].map(hexId),
        );
        const other = await acquire(s, { kinds: ['other', 'k'], max: 10 });
        assert.deepEqual(
          other.map((g) => g.artifactId),
          [hexId(5)],
        );
        assert.equal((await acquire(s, { max: 10 })).length, 0);
      });

      void it('over several kinds, grants by priority across them, then FIFO, up to max; the rest stays leasable', async (t) => {
        const s = await fresh(t);
        await s.submit(
          [
            artifact(1, { kind: 'a', priority: 1 }),
            artifact(2, { kind: 'b', priority: 2 }),
            artifact(3, { kind: 'a', priority: 3 }),
            artifact(4, { kind: 'b', priority: 4 }),
            artifact(5, { kind: 'a', priority: 2 }),
            artifact(6, { kind: 'c', priority: 9 }),
          ],
          NOW,
        );
        const first = await acquire(s, { kinds: ['a', 'b'], max: 3 });
        assert.deepEqual(
          first.map((g) => g.artifactId),
          [4, 3, 2].map(hexId),
        );
        const rest = await acquire(s, { sessionId: 's2', kinds: ['b', 'a'], max: 10 });
        assert.deepEqual(
          rest.map((g) => g.artifactId),
          [5, 1].map(hexId),
        );
        assert.equal((await s.counts()).PENDING, 1, 'only the kind asked by no one');
      });

      void it('a grant carries the payload, the lease of this session, a rising epoch, the checkpoint and the last partial', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { leaseTtlMs: 500, maxDurationMs: 9000, deadlineAt: NOW + 60_000 }));
        const g1 = await one(s, { sessionId: 'sA', nodeId: 'nA' });
        assert.equal(g1.epoch, 1);
        assert.equal(g1.sessionId, 'sA');
        assert.equal(g1.nodeId, 'nA');
        assert.equal(g1.ttlMs, 500);
        assert.equal(g1.maxDurationMs, 9000);
        assert.equal(g1.deadlineAt, NOW + 60_000);
        assert.equal(g1.grantedAt, NOW);
        assert.equal(text(g1.payload), 'payload-1');
        assert.equal(g1.checkpoint.length, 0);
        assert.equal(g1.lastPartialSeq, 0);
        assert.equal((await s.partial(refOf(g1), 1, enc.encode('p1'), NOW)).kind, 'ok');
        assert.equal((await s.checkpoint(refOf(g1), enc.encode('cp1'), NOW)).kind, 'ok');
        assert.equal((await s.fail(refOf(g1), 'ATP_ERR_HANDLER', true, 'boom', NOW)).kind, 'ok');
        const g2 = await one(s, { sessionId: 'sB', nodeId: 'nB' });
        assert.equal(g2.epoch, 2);
        assert.notEqual(g2.leaseId, g1.leaseId);
        assert.equal(text(g2.checkpoint), 'cp1');
        assert.equal(g2.lastPartialSeq, 1);
        assert.equal((await s.get('', hexId(1)))?.epoch, 2);
      });

      void it('concurrent grants never hand one artifact to two sessions', async (t) => {
        const s = await fresh(t);
        await s.submit(
          Array.from({ length: 20 }, (_, i) => artifact(i + 1)),
          NOW,
        );
        const [a, b, c] = await Promise.all([
          acquire(s, { sessionId: 'a', max: 8 }),
          acquire(s, { sessionId: 'b', max: 8 }),
          acquire(s, { sessionId: 'c', max: 8 }),
        ]);
        const ids = [...a, ...b, ...c].map((g) => g.artifactId);
        assert.equal(ids.length, 20);
        assert.equal(new Set(ids).size, 20);
        assert.equal((await s.heldLeases()).length, 20);
      });

      void it('does not grant an artifact whose deadline has passed', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { deadlineAt: NOW + 10 }));
        assert.equal((await acquire(s, { now: NOW + 10 })).length, 0);
      });
    });

    void describe('complete and fencing', () => {
      void it('COMPLETE under the current lease is accepted once, with the result and its digest', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        const g = await one(s);
        const out = await s.complete(refOf(g), enc.encode('R'), NOW);
        assert.equal(out.kind, 'ok');
        assert.ok(out.kind === 'ok');
        assert.equal(out.view.state, 'COMPLETED');
        assert.deepEqual(out.revoke, []);
        const again = await s.complete(refOf(g), enc.encode('R2'), NOW);
        assert.equal(again.kind, 'stale');
        assert.ok(again.kind === 'stale');
        assert.equal(again.code, 'ATP_ERR_STALE_LEASE');
        const r = await s.result('', hexId(1));
        assert.equal(r?.state, 'COMPLETED');
        assert.equal(text(r?.result), 'R');
        assert.equal(r?.resultDigest, toHex(sha256(enc.encode('R'))));
        assert.equal(r?.code, null);
        assert.deepEqual(await s.heldLeases(), []);
      });

      void it('every transition under a stale lease is refused with the specific reason and changes nothing', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        const old = await one(s, { sessionId: 'sA' });
        const lost = await s.loseLeases([refOf(old)], 'ATP_ERR_LEASE_EXPIRED', NOW);
        assert.equal(lost.length, 1);
        assert.equal(lost[0]?.changed?.view.state, 'PENDING');
        assert.equal(lost[0]?.changed?.view.failedAttempts, 1);
        const cur = await one(s, { sessionId: 'sB' });
        assert.equal(cur.epoch, 2);
        await s.checkpoint(refOf(cur), enc.encode('current'), NOW);
        await s.partial(refOf(cur), 1, enc.encode('p1'), NOW);
        const r = refOf(old);
        const outs = [
          await s.complete(r, enc.encode('stale'), NOW),
          await s.fail(r, 'ATP_ERR_HANDLER_FATAL', false, 'stale', NOW),
          await s.release(r, enc.encode('stale'), NOW),
          await s.partial(r, 2, enc.encode('stale'), NOW),
          await s.checkpoint(r, enc.encode('stale'), NOW),
          await s.leaseStatus(r),
        ];
        for (const o of outs) assert.deepEqual(o, { kind: 'stale', code: 'ATP_ERR_LEASE_EXPIRED', artifactId: hexId(1) });
        const v = await s.get('', hexId(1));
        assert.equal(v?.state, 'LEASED');
        assert.equal(v?.epoch, 2);
        assert.equal(v?.lastPartialSeq, 1);
        assert.equal(v?.failedAttempts, 1);
        assert.deepEqual(await s.leaseStatus(refOf(cur)), {
          kind: 'current',
          lease: {
            leaseId: cur.leaseId,
            tenant: '',
            artifactId: hexId(1),
            epoch: 2,
            sessionId: 'sB',
            nodeId: 'n1',
            grantedAt: NOW,
            ttlMs: 30_000,
            maxDurationMs: 0,
          },
        });
        const g3 = await s.release(refOf(cur), undefined, NOW);
        assert.equal(g3.kind, 'ok');
        assert.equal(text((await one(s)).checkpoint), 'current', 'the stale checkpoint was not stored');
      });

      void it('the current lease id with a wrong epoch or from another session is stale', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        const g = await one(s, { sessionId: 'sA' });
        for (const r of [
          { ...refOf(g), epoch: 2 },
          { ...refOf(g), epoch: 0 },
          { ...refOf(g), sessionId: 'sB' },
        ]) {
          assert.deepEqual(await s.complete(r, enc.encode('x'), NOW), { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: hexId(1) });
          assert.deepEqual(await s.leaseStatus(r), { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: hexId(1) });
        }
        assert.deepEqual(await s.complete({ leaseId: newLeaseId(), epoch: 1, sessionId: 'sA' }, enc.encode('x'), NOW), {
          kind: 'stale',
          code: 'ATP_ERR_STALE_LEASE',
          artifactId: null,
        });
        assert.equal((await s.get('', hexId(1)))?.state, 'LEASED');
        assert.equal((await s.complete(refOf(g), enc.encode('ok'), NOW)).kind, 'ok');
      });

      void it('a stale renewal or loss cannot affect the current lease', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        const old = await one(s, { sessionId: 'sA' });
        await s.release(refOf(old), undefined, NOW);
        const cur = await one(s, { sessionId: 'sB' });
        assert.equal((await s.leaseStatus(refOf(old))).kind, 'stale');
        assert.deepEqual(
          await s.loseLeases([refOf(old), { ...refOf(cur), sessionId: 'sA' }, { ...refOf(cur), epoch: 1 }], 'ATP_ERR_LEASE_EXPIRED', NOW),
          [],
        );
        assert.deepEqual(
          (await s.heldLeases()).map((l) => [l.leaseId, l.epoch, l.sessionId]),
          [[cur.leaseId, 2, 'sB']],
        );
        assert.equal((await s.get('', hexId(1)))?.failedAttempts, 0);
        assert.equal((await s.leaseStatus(refOf(cur))).kind, 'current');
      });

      void it('concurrent transitions on one lease: exactly one is applied', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        const g = await one(s);
        const outs = await Promise.all([
          s.complete(refOf(g), enc.encode('first'), NOW),
          s.complete(refOf(g), enc.encode('second'), NOW),
          s.fail(refOf(g), 'ATP_ERR_HANDLER', true, 'x', NOW),
          s.release(refOf(g), undefined, NOW),
        ]);
        assert.deepEqual(
          outs.map((o) => o.kind),
          ['ok', 'stale', 'stale', 'stale'],
        );
        assert.equal(text((await s.result('', hexId(1)))?.result), 'first');
        assert.equal((await s.get('', hexId(1)))?.failedAttempts, 0);
      });
    });

    void describe('fail, release, attempts', () => {
      void it('a retryable FAIL is a failed attempt and returns the artifact to PENDING; a non-retryable one ends it FAILED', async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1), artifact(2)], NOW);
        const g1 = await one(s);
        const f1 = await s.fail(refOf(g1), 'ATP_ERR_HANDLER', true, 'try again', NOW);
        assert.ok(f1.kind === 'ok');
        assert.equal(f1.view.state, 'PENDING');
        assert.equal(f1.view.failedAttempts, 1);
        assert.equal(f1.result, undefined);
        const g2 = await one(s);
        assert.equal(g2.artifactId, hexId(2));
        const f2 = await s.fail(refOf(g2), 'ATP_ERR_HANDLER_FATAL', false, 'broken input', NOW);
        assert.ok(f2.kind === 'ok');
        assert.equal(f2.view.state, 'FAILED');
        assert.equal(f2.result?.state, 'FAILED');
        assert.equal(f2.result?.code, 'ATP_ERR_HANDLER_FATAL');
        assert.equal(f2.result?.message, 'broken input');
        const r = await s.result('', hexId(2));
        assert.equal(r?.code, 'ATP_ERR_HANDLER_FATAL');
        assert.equal((await one(s)).artifactId, hexId(1));
      });

      void it('attempts are exhausted after maxAttempts failed attempts, lost leases included', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { maxAttempts: 2 }));
        const g1 = await one(s);
        await s.fail(refOf(g1), 'ATP_ERR_HANDLER', true, 'first', NOW);
        const g2 = await one(s);
        const [lost] = await s.loseLeases([refOf(g2)], 'ATP_ERR_LEASE_EXPIRED', NOW);
        assert.equal(lost?.changed?.view.state, 'FAILED');
        assert.equal(lost?.changed?.result?.code, 'ATP_ERR_ATTEMPTS_EXHAUSTED');
        assert.equal((await s.get('', hexId(1)))?.failedAttempts, 2);
        assert.equal((await acquire(s)).length, 0);
        assert.equal((await s.counts()).FAILED, 1);
      });

      void it('RELEASE hands the lease back without a failed attempt, keeps its checkpoint, and is re-issued first', async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1), artifact(2)], NOW);
        const g1 = await one(s);
        const out = await s.release(refOf(g1), enc.encode('cp'), NOW);
        assert.ok(out.kind === 'ok');
        assert.equal(out.view.state, 'PENDING');
        assert.equal(out.view.failedAttempts, 0);
        const again = await one(s);
        assert.equal(again.artifactId, hexId(1));
        assert.equal(again.epoch, 2);
        assert.equal(text(again.checkpoint), 'cp');
      });
    });

    void describe('partials and checkpoints', () => {
      void it('accepts partials in order, ignores resends, refuses gaps, and carries the sequence across leases', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { maxAttempts: 2 }));
        const g = await one(s);
        assert.deepEqual((await s.partial(refOf(g), 1, enc.encode('a'), NOW)).kind, 'ok');
        assert.deepEqual(await s.partial(refOf(g), 1, enc.encode('a'), NOW), { kind: 'duplicate' });
        assert.deepEqual(await s.partial(refOf(g), 3, enc.encode('c'), NOW), { kind: 'gap', expected: 2 });
        const p2 = await s.partial(refOf(g), 2, enc.encode('b'), NOW);
        assert.ok(p2.kind === 'ok');
        assert.equal(p2.seq, 2);
        assert.equal(p2.view.lastPartialSeq, 2);
        assert.equal((await s.checkpoint(refOf(g), enc.encode('cp-1'), NOW)).kind, 'ok');
        assert.equal((await s.checkpoint(refOf(g), enc.encode('cp-2'), NOW)).kind, 'ok');
        await s.fail(refOf(g), 'ATP_ERR_HANDLER', true, 'x', NOW);
        const g2 = await one(s);
        assert.equal(g2.lastPartialSeq, 2);
        assert.equal(text(g2.checkpoint), 'cp-2');
        assert.deepEqual(await s.partial(refOf(g2), 2, enc.encode('b'), NOW), { kind: 'duplicate' });
        assert.equal((await s.partial(refOf(g2), 3, enc.encode('c'), NOW)).kind, 'ok');
        await s.fail(refOf(g2), 'ATP_ERR_HANDLER', true, 'y', NOW);
        const r = await s.result('', hexId(1));
        assert.equal(r?.state, 'FAILED');
        assert.equal(text(r?.result), 'c', 'a failed artifact reports its last partial');
        assert.equal(text(r?.checkpoint), 'cp-2');
      });
    });

    void describe('cancel', () => {
      void it('cancels a pending or a leased artifact at once and orders the holder revoked', async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1), artifact(2)], NOW);
        const g = await one(s);
        assert.equal(g.artifactId, hexId(1));
        const c1 = await s.cancel('', hexId(1), false, 'no longer needed', NOW);
        assert.equal(c1.found, true);
        assert.deepEqual(
          c1.cancelled.map((v) => [v.id, v.state]),
          [[hexId(1), 'CANCELLED']],
        );
        assert.equal(c1.alreadyFinished, 0);
        assert.equal(c1.revoke.length, 1);
        assert.equal(c1.revoke[0]?.lease.leaseId, g.leaseId);
        assert.equal(c1.revoke[0]?.code, 'ATP_ERR_CANCELLED');
        assert.equal(c1.results.get(hexId(1))?.code, 'ATP_ERR_CANCELLED');
        assert.equal(c1.results.get(hexId(1))?.message, 'no longer needed');
        assert.deepEqual(await s.complete(refOf(g), enc.encode('late'), NOW), {
          kind: 'stale',
          code: 'ATP_ERR_CANCELLED',
          artifactId: hexId(1),
        });
        const c2 = await s.cancel('', hexId(2), false, 'x', NOW);
        assert.equal(c2.cancelled.length, 1);
        assert.equal(c2.revoke.length, 0);
        assert.equal((await acquire(s, { max: 5 })).length, 0);
        const again = await s.cancel('', hexId(2), false, 'x', NOW);
        assert.deepEqual([again.cancelled.length, again.alreadyFinished], [0, 1]);
        assert.equal((await s.cancel('', hexId(99), true, 'x', NOW)).found, false);
        assert.equal((await s.counts()).CANCELLED, 2);
      });

      void it('a subtree cancel counts cancelled and finished ones, and later children are born CANCELLED', async (t) => {
        const s = await fresh(t);
        // 1 ─┬─ 2 (completed)
        //    └─ 3 ─── 4 (leased)
        await s.submit(
          [
            artifact(1, { kind: 'root' }),
            artifact(2, { parentId: hexId(1), kind: 'done' }),
            artifact(3, { parentId: hexId(1), kind: 'mid' }),
            artifact(4, { parentId: hexId(3) }),
          ],
          NOW,
        );
        const done = await one(s, { kinds: ['done'] });
        await s.complete(refOf(done), enc.encode('ok'), NOW);
        const held = await one(s, { kinds: ['k'] });
        const out = await s.cancel('', hexId(1), true, 'stop all', NOW);
        assert.deepEqual(out.cancelled.map((v) => v.id).sort(), [1, 3, 4].map(hexId));
        assert.equal(out.alreadyFinished, 1);
        assert.deepEqual(
          out.revoke.map((r) => r.lease.leaseId),
          [held.leaseId],
        );
        assert.equal(await stateOf(s, hexId(2)), 'COMPLETED', 'a finished member does not change');
        const born = await s.submit([artifact(5, { parentId: hexId(2) }), artifact(6, { parentId: hexId(5) })], NOW);
        assert.deepEqual(
          born.map((o) => (o.kind === 'accepted' ? o.view.state : o.kind)),
          ['CANCELLED', 'CANCELLED'],
        );
        assert.equal((await s.result('', hexId(6)))?.code, 'ATP_ERR_CANCELLED');
        assert.equal((await acquire(s, { kinds: ['k', 'mid', 'root'], max: 10 })).length, 0);
        const twice = await s.cancel('', hexId(1), true, 'again', NOW);
        assert.deepEqual([twice.cancelled.length, twice.alreadyFinished, twice.revoke.length], [0, 6, 0]);
      });

      void it('a cancel without subtree does not mark descendants', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        await s.cancel('', hexId(1), false, 'x', NOW);
        const [child] = await s.submit([artifact(2, { parentId: hexId(1) })], NOW);
        assert.ok(child?.kind === 'accepted');
        assert.equal(child.view.state, 'PENDING');
      });
    });

    void describe('late results', () => {
      void it('accept-if-unresolved takes a result from an expired lease and revokes the current holder', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { latePolicy: 1 }));
        const old = await one(s, { sessionId: 'sA' });
        await s.loseLeases([refOf(old)], 'ATP_ERR_LEASE_EXPIRED', NOW);
        const cur = await one(s, { sessionId: 'sB' });
        const out = await s.complete(refOf(old), enc.encode('late'), NOW);
        assert.ok(out.kind === 'ok');
        assert.equal(out.view.state, 'COMPLETED');
        assert.deepEqual(
          out.revoke.map((r) => [r.lease.leaseId, r.code]),
          [[cur.leaseId, 'ATP_ERR_STALE_LEASE']],
        );
        assert.equal(text((await s.result('', hexId(1)))?.result), 'late');
        assert.equal((await s.complete(refOf(cur), enc.encode('current'), NOW)).kind, 'stale');
        assert.equal((await s.complete(refOf(old), enc.encode('twice'), NOW)).kind, 'stale', 'a result is accepted once');
      });

      void it('accept-if-unresolved also takes it while the artifact waits for a new lease', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { latePolicy: 1 }));
        const old = await one(s);
        await s.loseLeases([refOf(old)], 'ATP_ERR_LEASE_EXPIRED', NOW);
        const out = await s.complete(refOf(old), enc.encode('late'), NOW);
        assert.ok(out.kind === 'ok');
        assert.deepEqual(out.revoke, []);
        assert.equal((await s.counts()).COMPLETED, 1);
        assert.equal((await s.counts()).PENDING, 0);
        assert.equal((await acquire(s)).length, 0);
      });

      void it('the default policy and leases ended by a release or a cancel refuse late results', async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1), artifact(2, { latePolicy: 1 }), artifact(3, { latePolicy: 1 })], NOW);
        const [g1, g2, g3] = await acquire(s, { max: 3 });
        await s.loseLeases([refOf(g1!)], 'ATP_ERR_LEASE_EXPIRED', NOW);
        assert.deepEqual(await s.complete(refOf(g1!), enc.encode('late'), NOW), {
          kind: 'stale',
          code: 'ATP_ERR_LEASE_EXPIRED',
          artifactId: hexId(1),
        });
        await s.release(refOf(g2!), undefined, NOW);
        assert.equal((await s.complete(refOf(g2!), enc.encode('late'), NOW)).kind, 'stale');
        await s.cancel('', hexId(3), false, 'x', NOW);
        assert.equal((await s.complete(refOf(g3!), enc.encode('late'), NOW)).kind, 'stale');
        assert.equal((await s.counts()).COMPLETED, 0);
      });
    });

    void describe('quorum', () => {
      void it('k of n: leased on n distinct nodes; k equal results complete it and revoke the rest', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { latePolicy: 2, quorumK: 2, quorumN: 3 }));
        const a = await acquire(s, { sessionId: 'sA', nodeId: 'A', max: 5 });
        assert.equal(a.length, 1, 'one lease per node');
        const b = await one(s, { sessionId: 'sB', nodeId: 'B' });
        const c = await one(s, { sessionId: 'sC', nodeId: 'C' });
        assert.equal((await acquire(s, { sessionId: 'sD', nodeId: 'D' })).length, 0, 'n leases at most');
        assert.deepEqual([a[0]!.epoch, b.epoch, c.epoch], [1, 2, 3]);
        const v1 = await s.complete(refOf(a[0]!), enc.encode('same'), NOW);
        assert.equal(v1.kind, 'recorded');
        assert.equal((await s.get('', hexId(1)))?.state, 'LEASED');
        const v2 = await s.complete(refOf(c), enc.encode('same'), NOW);
        assert.ok(v2.kind === 'ok');
        assert.equal(v2.view.state, 'COMPLETED');
        assert.deepEqual(
          v2.revoke.map((r) => r.lease.leaseId),
          [b.leaseId],
        );
        assert.equal(text((await s.result('', hexId(1)))?.result), 'same');
        assert.equal((await s.complete(refOf(b), enc.encode('same'), NOW)).kind, 'stale');
      });

      void it('fails with QUORUM_DISAGREEMENT when every result is in and no k agree', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { latePolicy: 2, quorumK: 2, quorumN: 2 }));
        const a = await one(s, { sessionId: 'sA', nodeId: 'A' });
        const b = await one(s, { sessionId: 'sB', nodeId: 'B' });
        assert.equal((await s.complete(refOf(a), enc.encode('x'), NOW)).kind, 'recorded');
        const out = await s.complete(refOf(b), enc.encode('y'), NOW);
        assert.ok(out.kind === 'ok');
        assert.equal(out.view.state, 'FAILED');
        assert.equal(out.result?.code, 'ATP_ERR_QUORUM_DISAGREEMENT');
        for (const r of ['x', 'y']) assert.ok(out.result.message.includes(toHex(sha256(enc.encode(r))).slice(0, 16)), out.result.message);
      });

      void it('a vote whose lease is lost is re-issued to another node', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { latePolicy: 2, quorumK: 2, quorumN: 2 }));
        const a = await one(s, { sessionId: 'sA', nodeId: 'A' });
        const b = await one(s, { sessionId: 'sB', nodeId: 'B' });
        assert.equal((await s.complete(refOf(a), enc.encode('x'), NOW)).kind, 'recorded');
        await s.loseLeases([refOf(b)], 'ATP_ERR_LEASE_EXPIRED', NOW);
        assert.equal((await acquire(s, { sessionId: 'sA', nodeId: 'A' })).length, 0, 'not twice on one node');
        const c = await one(s, { sessionId: 'sC', nodeId: 'C' });
        const out = await s.complete(refOf(c), enc.encode('x'), NOW);
        assert.ok(out.kind === 'ok');
        assert.equal(out.view.state, 'COMPLETED');
      });
    });

    void describe('expire', () => {
      void it('ends an artifact whose deadline passed and revokes its holder; not before, and only once', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1, { deadlineAt: NOW + 100 }));
        const g = await one(s);
        assert.equal(await s.expire('', hexId(1), NOW + 99), undefined);
        const out = await s.expire('', hexId(1), NOW + 100);
        assert.ok(out?.kind === 'ok');
        assert.equal(out.view.state, 'EXPIRED');
        assert.equal(out.result?.code, 'ATP_ERR_EXPIRED');
        assert.deepEqual(
          out.revoke.map((r) => [r.lease.leaseId, r.code]),
          [[g.leaseId, 'ATP_ERR_EXPIRED']],
        );
        assert.equal(await s.expire('', hexId(1), NOW + 200), undefined);
        assert.deepEqual(await s.complete(refOf(g), enc.encode('late'), NOW + 101), {
          kind: 'stale',
          code: 'ATP_ERR_EXPIRED',
          artifactId: hexId(1),
        });
        assert.equal(await s.expire('', hexId(42), NOW + 200), undefined);
      });
    });

    void describe('retention (ATP_SPEC §3.11)', () => {
      /** forget() until it has nothing more to forget (a shared store takes a parent in a later call). */
      async function forgetAll(s: Store, endedBy: number): Promise<number> {
        let total = 0;
        for (let n = await s.forget(endedBy, 1000); n > 0; n = await s.forget(endedBy, 1000)) total += n;
        return total;
      }

      void it('forgets a terminal artifact once it ended at or before the bound, and never a live one', async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1, { tags: ['t'] }), artifact(2, { tags: ['t'] }), artifact(3), artifact(4)], NOW);
        const [g1, g2] = await acquire(s, { max: 2 });
        await s.complete(refOf(g1!), enc.encode('one'), NOW + 10);
        await s.cancel('', hexId(3), false, 'x', NOW + 20);
        assert.equal(await s.forget(NOW + 9, 1000), 0, 'nothing ended by NOW + 9');
        assert.equal(await forgetAll(s, NOW + 10), 1);
        assert.equal(await s.get('', hexId(1)), undefined);
        assert.equal(await s.result('', hexId(1)), undefined);
        assert.deepEqual(
          (await s.byTag('', 't')).map((v) => v.id),
          [hexId(2)],
        );
        assert.equal(await stateOf(s, hexId(3)), 'CANCELLED', 'ended after the bound: kept');
        assert.equal(await forgetAll(s, NOW + 1_000_000), 1, 'the cancelled one; the leased and the pending ones stay');
        assert.deepEqual(
          [await stateOf(s, hexId(2)), await stateOf(s, hexId(3)), await stateOf(s, hexId(4))],
          ['LEASED', undefined, 'PENDING'],
        );
        assert.deepEqual(await s.counts(), { PENDING: 1, LEASED: 1, COMPLETED: 0, FAILED: 0, CANCELLED: 0, EXPIRED: 0 });
        // The leased one still completes, and goes in its turn.
        assert.equal((await s.complete(refOf(g2!), enc.encode('two'), NOW + 30)).kind, 'ok');
        assert.equal(await forgetAll(s, NOW + 30), 1);
        assert.equal(await s.get('', hexId(2)), undefined);
      });

      void it('a forgotten id is free: the same id with other content is a new artifact, not a conflict', async (t) => {
        const s = await fresh(t);
        await submitOk(s, artifact(1));
        await s.complete(refOf(await one(s)), enc.encode('r'), NOW);
        const [conflict] = await s.submit([artifact(1, { payload: enc.encode('other') })], NOW);
        assert.equal(conflict?.kind, 'conflict', 'remembered: bound to its digest');
        assert.equal(await forgetAll(s, NOW), 1);
        const [again] = await s.submit([artifact(1, { payload: enc.encode('other') })], NOW + 1);
        assert.ok(again?.kind === 'accepted');
        assert.deepEqual([again.view.state, again.duplicate, again.view.epoch], ['PENDING', false, 0]);
        const g = await one(s);
        assert.equal(text(g.payload), 'other');
      });

      void it('a parent is forgotten only after its children, and a child of a forgotten parent is refused', async (t) => {
        const s = await fresh(t);
        // 1 ─┬─ 2 ─── 4
        //    └─ 3
        await s.submit(
          [
            artifact(1, { kind: 'root' }),
            artifact(2, { parentId: hexId(1), kind: 'mid' }),
            artifact(3, { parentId: hexId(1) }),
            artifact(4, { parentId: hexId(2) }),
          ],
          NOW,
        );
        await s.complete(refOf(await one(s, { kinds: ['root'] })), enc.encode('r'), NOW);
        await s.complete(refOf(await one(s, { kinds: ['mid'] })), enc.encode('m'), NOW);
        assert.equal(await forgetAll(s, NOW + 1000), 0, 'the root and the middle wait for their live children');
        const [g3, g4] = await acquire(s, { max: 2 });
        await s.complete(refOf(g3!), enc.encode('3'), NOW + 100);
        assert.equal(await forgetAll(s, NOW + 1000), 1, 'only 3: 2 still has 4, so 1 still has 2');
        assert.deepEqual((await s.subtree('', hexId(1))).map((v) => v.id).sort(), [1, 2, 4].map(hexId));
        const cancel = await s.cancel('', hexId(1), true, 'stop', NOW + 200);
        assert.deepEqual(
          cancel.cancelled.map((v) => v.id),
          [hexId(4)],
          'a subtree cancel still reaches the grandchild through its kept parent',
        );
        assert.equal(cancel.revoke[0]?.lease.leaseId, g4!.leaseId);
        assert.equal(await forgetAll(s, NOW + 199), 0, '4 ended at NOW + 200');
        assert.equal(await forgetAll(s, NOW + 200), 3, '4, then 2, then 1');
        assert.equal((await s.counts()).COMPLETED, 0);
        const [orphan] = await s.submit([artifact(5, { parentId: hexId(1) })], NOW + 300);
        assert.equal(orphan?.kind, 'parent-not-found', 'the cancelled-subtree mark went with the parent: refused, not born');
      });

      void it('forgets at most max per call, oldest first', async (t) => {
        const s = await fresh(t);
        await s.submit(
          [1, 2, 3, 4, 5].map((i) => artifact(i)),
          NOW,
        );
        for (let i = 5; i >= 1; i--) await s.cancel('', hexId(i), false, 'x', NOW + (6 - i));
        assert.equal(await s.forget(NOW + 100, 2), 2);
        assert.deepEqual(
          await Promise.all([1, 2, 3, 4, 5].map((i) => stateOf(s, hexId(i)))),
          ['CANCELLED', 'CANCELLED', 'CANCELLED', undefined, undefined],
          '5 and 4 ended first',
        );
        assert.equal(await forgetAll(s, NOW + 100), 3);
      });
    });

    void describe('recovery reads and sessions', () => {
      void it('heldLeases, pendingDeadlines and counts follow the transitions', async (t) => {
        const s = await fresh(t);
        await s.submit([artifact(1, { deadlineAt: NOW + 5000 }), artifact(2, { deadlineAt: NOW + 6000 }), artifact(3), artifact(4)], NOW);
        const [g1, g2, g3] = await acquire(s, { max: 3 });
        await s.complete(refOf(g2!), enc.encode('r'), NOW);
        await s.cancel('', hexId(4), false, 'x', NOW);
        assert.deepEqual(await s.counts(), {
          PENDING: 0,
          LEASED: 2,
          COMPLETED: 1,
          FAILED: 0,
          CANCELLED: 1,
          EXPIRED: 0,
        });
        assert.deepEqual((await s.heldLeases()).map((l) => l.leaseId).sort(), [g1!.leaseId, g3!.leaseId].sort());
        assert.deepEqual(await s.pendingDeadlines(), [{ tenant: '', id: hexId(1), deadlineAt: NOW + 5000 }]);
        await s.fail(refOf(g1!), 'ATP_ERR_HANDLER', true, 'x', NOW);
        assert.deepEqual(
          (await s.heldLeases()).map((l) => l.leaseId),
          [g3!.leaseId],
        );
        assert.equal((await s.counts()).PENDING, 1);
        assert.deepEqual(await s.pendingDeadlines(), [{ tenant: '', id: hexId(1), deadlineAt: NOW + 5000 }]);
      });

      void it('sessions are saved, listed and dropped', async (t) => {
        const s = await fresh(t);
        await s.saveSession({ sessionId: 'a', tokenHash: 'aa', nodeId: 'n1', tenant: '', roles: 1 });
        await s.saveSession({ sessionId: 'b', tokenHash: 'bb', nodeId: 'n2', tenant: 't', roles: 3 });
        await s.dropSession('a');
        await s.dropSession('nobody');
        assert.deepEqual(await s.loadSessions(), [{ sessionId: 'b', tokenHash: 'bb', nodeId: 'n2', tenant: 't', roles: 3 }]);
      });
    });
  });
}
