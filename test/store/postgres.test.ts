import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pg from 'pg';
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

/** An open store in a schema of its own, and a SQL client on that schema, both closed after the test. */
async function storeWithSql(t: TestContext): Promise<{ s: PostgresStore; sql: pg.Client }> {
  const schema = `atp_test_${run}_${n++}`;
  const s = new PostgresStore({ url, schema, poolSize: 2 });
  await s.open();
  t.after(() => s.close());
  const sql = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await sql.connect();
  t.after(() => sql.end());
  return { s, sql };
}

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

void test(
  'postgres store: only a grant reads an artifact payload back from the database',
  { skip: process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false },
  async (t) => {
    const s = new PostgresStore({ url, schema: `atp_test_${run}_${n++}`, poolSize: 2 });
    await s.open();
    t.after(() => s.close());
    // Every query's rows, seen from the client class the store's pool uses.
    const withPayload: string[] = [];
    const proto = pg.Client.prototype as unknown as { query: (this: pg.Client, ...args: unknown[]) => unknown };
    const query = proto.query;
    const record = (text: string, r: { rows?: Array<Record<string, unknown>> } | undefined): void => {
      if (r?.rows?.some((row) => 'payload' in row)) withPayload.push(text.trim().split(/\s+/).slice(0, 2).join(' '));
    };
    proto.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text);
      // pg.Pool#query calls the client with a callback; a PoolClient's query returns a promise.
      const cb = args.findIndex((a) => typeof a === 'function');
      if (cb >= 0) {
        const done = args[cb] as (err: unknown, r: unknown) => void;
        args[cb] = (err: unknown, r: { rows?: Array<Record<string, unknown>> }) => {
          if (err === null || err === undefined) record(text, r);
          done(err, r);
        };
      }
      const out = query.apply(this, args);
      if (out instanceof Promise)
        out.then(
          (r: { rows?: Array<Record<string, unknown>> }) => record(text, r),
          () => undefined,
        );
      return out;
    };
    t.after(() => {
      proto.query = query;
    });
    const big = new Uint8Array(1 << 20).fill(7);
    const root = artifact(1, { payload: big, tags: ['t'] });
    await s.submit([root, artifact(2, { payload: big, parentId: root.id }), artifact(3, { payload: big, parentId: root.id })], 0);
    const [g1, g2, g3] = await acquire(s, { max: 3 });
    assert.ok(g1 !== undefined && g2 !== undefined && g3 !== undefined);
    assert.equal(g1.payload.length, big.length, 'the grant carries the payload');
    const grants = withPayload.length;
    assert.ok(grants >= 1, 'the grant read the payloads');
    assert.equal((await s.partial(refOf(g1), 1, new Uint8Array([1]), 1)).kind, 'ok');
    assert.equal((await s.checkpoint(refOf(g1), new Uint8Array([2]), 1)).kind, 'ok');
    await s.get('', root.id);
    await s.result('', root.id);
    await s.subtree('', root.id);
    await s.byTag('', 't');
    await s.release(refOf(g2), undefined, 2);
    await s.fail(refOf(g3), 'ATP_ERR_TRANSIENT', true, 'again', 3);
    assert.equal((await s.complete(refOf(g1), new Uint8Array([3]), 4)).kind, 'ok');
    await s.cancel('', root.id, true, 'stop', 5);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(withPayload.slice(grants), [], 'no transition or read after the grant fetched a payload');
  },
);

void test(
  'postgres store: a terminal artifact keeps no payload (ATP_SPEC ATP-3.1-6): completed, failed, cancelled, born cancelled',
  { skip: process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false },
  async (t) => {
    const { s, sql } = await storeWithSql(t);
    const big = new Uint8Array(64 * 1024).fill(1);
    const root = artifact(1, { payload: big });
    await s.submit([root, artifact(2, { payload: big }), artifact(3, { payload: big }), artifact(4, { payload: big })], 0);
    const [g1, g2] = await acquire(s, { max: 2 });
    assert.equal((await s.complete(refOf(g1!), new Uint8Array([1]), 1)).kind, 'ok');
    await s.fail(refOf(g2!), 'ATP_ERR_PERMANENT', false, 'no', 2);
    await s.cancel('', root.id === g1!.artifactId ? hexId(3) : root.id, true, 'stop', 3);
    await s.submit([artifact(5, { payload: big, parentId: hexId(3) })], 4);
    const sizes = async () =>
      new Map(
        (
          (await sql.query('SELECT id, state, octet_length(payload) AS n FROM atp_artifacts')).rows as Array<{
            id: string;
            state: number;
            n: number;
          }>
        ).map((r) => [r.id, { state: r.state, n: Number(r.n) }]),
      );
    for (const [id, v] of await sizes()) {
      if (v.state === 1 || v.state === 2) assert.equal(v.n, big.length, `live artifact ${id} keeps its payload`);
      else assert.equal(v.n, 0, `terminal artifact ${id} (state ${v.state}) keeps no payload`);
    }
    const states = [...(await sizes()).values()].map((v) => v.state).sort();
    assert.deepEqual(states, [1, 3, 4, 5, 5], 'one pending, one completed, one failed, one cancelled, one born cancelled');
  },
);

void test(
  'postgres store: a terminal artifact written before migration 4 (no end time) is forgotten counting from its acceptance, through the index (ATP_SPEC §3.11)',
  { skip: process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false },
  async (t) => {
    const { s, sql } = await storeWithSql(t);
    await s.submit([artifact(1), artifact(2)], 1000);
    await s.cancel('', hexId(1), false, 'x', 5000);
    await s.cancel('', hexId(2), false, 'x', 5000);
    // As an older version left it: no end time.
    await sql.query('UPDATE atp_artifacts SET ended_at = 0 WHERE id = $1', [hexId(1)]);
    assert.equal(await s.forget(999, 10), 0);
    assert.equal(await s.forget(1000, 10), 1, 'the old one, counted from its acceptance at 1000');
    assert.equal(await s.forget(4999, 10), 0, 'the other ended at 5000');
    assert.equal(await s.forget(5000, 10), 1);
    await sql.query('SET enable_seqscan = off');
    const plan = (
      await sql.query(
        `EXPLAIN SELECT id FROM atp_artifacts WHERE state NOT IN (1, 2) AND GREATEST(ended_at, created_at) <= 1 ORDER BY GREATEST(ended_at, created_at) LIMIT 5`,
      )
    ).rows
      .map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN'])
      .join('\n');
    assert.match(plan, /atp_artifacts_ended/, `the sweep's order is the index's:\n${plan}`);
  },
);
