import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { acquire, artifact, hexId, refOf, runStoreConformance } from './conformance.js';

// A real PostgreSQL server (.ci/run starts one and sets ATP_PG_URL); every store gets its own schema.
const url = process.env.ATP_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/postgres';
let n = 0;
const run = `${process.pid}_${Date.now() % 1e6}`;

// scripts/run-tests.mjs starts a server when it can, and sets ATP_SKIP_PG only outside CI when it cannot.
if (process.env.ATP_SKIP_PG === '1')
  void test('postgres store conformance', { skip: 'no PostgreSQL server on this machine' }, () => undefined);
else runStoreConformance('postgres', () => new PostgresStore({ url, schema: `atp_test_${run}_${n++}`, poolSize: 2 }));

void test(
  'postgres store: upkeep keeps the last `endedMemory` ended leases with their specific reason; older ones fall back to the generic one',
  { skip: process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false },
  async (t) => {
    assert.throws(() => new PostgresStore({ url, endedMemory: 0 }), /endedMemory must be a positive integer/);
    const s = new PostgresStore({ url, schema: `atp_test_${run}_${n++}`, poolSize: 2, endedMemory: 3 });
    await s.open();
    t.after(() => s.close());
    await s.submit(
      [1, 2, 3, 4, 5].map((i) => artifact(i)),
      0,
    );
    const grants = await acquire(s, { max: 5 });
    assert.equal(grants.length, 5);
    // End them in order 1..5, each with its own cancel at a later time: the newest 3 are kept.
    for (const [i, g] of grants.entries()) await s.cancel('', g.artifactId, false, 'stop', 10 + i);
    const before = await Promise.all(grants.map((g) => s.leaseStatus(refOf(g))));
    for (const st of before) assert.equal(st.kind === 'stale' && st.code, 'ATP_ERR_CANCELLED', 'all five remembered before the upkeep');
    await s.maintain(100, 5000, []);
    const after = await Promise.all(grants.map((g) => s.leaseStatus(refOf(g))));
    const byId = new Map(grants.map((g, i) => [g.artifactId, after[i]]));
    for (const i of [1, 2]) assert.deepEqual(byId.get(hexId(i)), { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: null });
    for (const i of [3, 4, 5]) assert.deepEqual(byId.get(hexId(i)), { kind: 'stale', code: 'ATP_ERR_CANCELLED', artifactId: hexId(i) });
  },
);
