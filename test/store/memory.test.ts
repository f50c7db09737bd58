import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryStore } from '../../src/store/memory-store.js';
import { acquire, artifact, hexId, refOf, runStoreConformance } from './conformance.js';

runStoreConformance('memory', () => new MemoryStore());

void test('memory store: the last `endedMemory` ended leases keep their specific reason; older ones fall back to the generic one', async () => {
  const s = new MemoryStore({ endedMemory: 3 });
  await s.submit(
    [1, 2, 3, 4, 5].map((n) => artifact(n)),
    0,
  );
  const grants = await acquire(s, { max: 5 });
  assert.equal(grants.length, 5);
  // End them in order 1..5, each with its own cancel: the ring keeps 3, 4 and 5.
  for (const g of grants) await s.cancel('', g.artifactId, false, 'stop', 1);
  const statuses = await Promise.all(grants.map((g) => s.leaseStatus(refOf(g))));
  const byId = new Map(grants.map((g, i) => [g.artifactId, statuses[i]]));
  for (const n of [1, 2]) assert.deepEqual(byId.get(hexId(n)), { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: null });
  for (const n of [3, 4, 5]) assert.deepEqual(byId.get(hexId(n)), { kind: 'stale', code: 'ATP_ERR_CANCELLED', artifactId: hexId(n) });
  // A lease that is held is reported current; the forgotten ones are gone from the held list too.
  await s.submit([artifact(6)], 2);
  const [g6] = await acquire(s, { max: 1 });
  assert.equal((await s.leaseStatus(refOf(g6!))).kind, 'current');
  assert.deepEqual(
    (await s.heldLeases()).map((l) => l.leaseId),
    [g6!.leaseId],
  );
});

void test('memory store: a terminal artifact lets its payload go (ATP_SPEC ATP-3.1-6); a pending one keeps it until then', async () => {
  class Inspectable extends MemoryStore {
    payloadLength(id: string): number | undefined {
      return this.artifacts.get(id)?.payload.length;
    }
  }
  const s = new Inspectable();
  const big = new Uint8Array(1 << 20);
  await s.submit(
    [1, 2, 3].map((n) => artifact(n, { payload: big })),
    0,
  );
  const [g1] = await acquire(s, { max: 1 });
  assert.equal(g1!.payload.length, big.length);
  assert.equal((await s.complete(refOf(g1!), new Uint8Array([1]), 1)).kind, 'ok');
  await s.cancel('', hexId(2), false, 'stop', 2);
  assert.equal(s.payloadLength(hexId(1)), 0, 'completed');
  assert.equal(s.payloadLength(hexId(2)), 0, 'cancelled');
  assert.equal(s.payloadLength(hexId(3)), big.length, 'pending');
});

void test('memory store: a forgotten artifact is let go of, though the memory of its ended lease keeps the stale reason (ATP_SPEC §3.11)', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  class Inspectable extends MemoryStore {
    record(id: string): object | undefined {
      return this.artifacts.get(id);
    }
  }
  const s = new Inspectable();
  await s.submit([artifact(1)], 0);
  const [g] = await acquire(s, { max: 1 });
  const ref = new WeakRef(s.record(hexId(1))!);
  assert.equal((await s.complete(refOf(g!), new TextEncoder().encode('done'), 10)).kind, 'ok');
  assert.equal(await s.forget(10, 10), 1);
  assert.equal(s.record(hexId(1)), undefined);
  // A WeakRef is cleared by a collection after the job that last read it.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ref.deref(), undefined, 'something still holds the forgotten record');
  assert.deepEqual(await s.leaseStatus(refOf(g!)), { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: hexId(1) });
});
