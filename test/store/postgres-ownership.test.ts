/**
 * Session ownership on a shared PostgreSQL store (ATP_SPEC ATP-11.8-6): two stores on one schema
 * play two coordinators, and one of them is taken for dead while it still runs.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { ExternalEvent } from '../../src/store/store.js';
import { acquire, artifact, refOf } from './conformance.js';

const url = process.env.ATP_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/postgres';
const skip = process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false;
const WINDOW = 400;
const SILENT = WINDOW * 2 + 1000; // ATP-11.8-4: twice the resume window plus one second
let n = 0;
const run = `${process.pid}_${Date.now() % 1e6}`;
const opened: PostgresStore[] = [];
const schemas: string[] = [];
const clients: pg.Client[] = [];

async function pair(): Promise<{ a: PostgresStore; b: PostgresStore; sql: pg.Client; schema: string }> {
  const schema = `atp_own_${run}_${++n}`;
  schemas.push(schema);
  const a = new PostgresStore({ url, schema, poolSize: 2, coordinatorId: `coord-a-${run}-${n}` });
  await a.open();
  const b = new PostgresStore({ url, schema, poolSize: 2, coordinatorId: `coord-b-${run}-${n}` });
  await b.open();
  opened.push(a, b);
  const sql = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await sql.connect();
  clients.push(sql);
  return { a, b, sql, schema };
}

after(async () => {
  for (const c of clients) await c.end();
  for (const s of opened) await s.close();
  if (skip) return;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await db.end();
});

void describe('PostgreSQL store: session ownership (ATP-11.8-6)', { skip }, () => {
  void it('a coordinator taken for dead grants nothing more under its reclaimed session, and learns it is gone', async () => {
    const { a, b, sql } = await pair();
    const now = 1_000_000;
    await a.submit([artifact(1), artifact(2)], now);
    const [held] = await acquire(a, { sessionId: 'w1', max: 1, now });
    assert.ok(held);
    // A is silent (paused): B's upkeep, past the delay, reclaims the session and loses its lease.
    await sql.query('UPDATE atp_coordinators SET heartbeat_at = $1 WHERE id = $2', [now - SILENT - 1, a.coordinatorId]);
    const { lost, gone } = await b.maintain(now, WINDOW, []);
    assert.deepEqual(
      lost.map((o) => o.lease.leaseId),
      [held.leaseId],
    );
    assert.deepEqual(gone, []);
    // A wakes up, and heartbeats first as the coordinator does on every tick.
    await a.heartbeat(now + 1);
    // A grant under the session it no longer owns is fenced, with work waiting.
    assert.deepEqual(await acquire(a, { sessionId: 'w1', max: 2, now: now + 1 }), []);
    // Its own upkeep tells it which of its sessions are gone.
    const mine = await a.maintain(now + 2, WINDOW, ['w1']);
    assert.deepEqual(mine.gone, ['w1']);
    // A new session of A's (saved by acquire(), as the coordinator saves it before any grant) is granted as usual: the work was not lost, only fenced.
    const grants = await acquire(a, { sessionId: 'w2', max: 2, now: now + 3 });
    assert.equal(grants.length, 2);
    assert.deepEqual((await a.maintain(now + 4, WINDOW, ['w2'])).gone, []);
  });

  void it('a session adopted by another coordinator keeps its leases and its row against the old one', async () => {
    const { a, b } = await pair();
    const now = 2_000_000;
    await a.submit([artifact(3)], now);
    const [g] = await acquire(a, { sessionId: 'w3', now });
    assert.ok(g);
    // The worker resumes on B: B adopts the session and its lease.
    const adopted = await b.adoptSession('w3', '00', now + 1); // the token hash that acquire() saved;
    assert.deepEqual(
      adopted?.leases.map((l) => l.leaseId),
      [g.leaseId],
    );
    // A's resume timer, left from before the worker moved, must not take the lease nor the row.
    assert.deepEqual(await a.loseLeases([refOf(g)], 'ATP_ERR_LEASE_EXPIRED', now + 500), []);
    await a.dropSession('w3');
    assert.deepEqual(
      (await b.heldLeases()).map((l) => l.leaseId),
      [g.leaseId],
    );
    assert.equal((await b.maintain(now + 600, WINDOW, ['w3'])).gone.length, 0);
    // B can still complete it.
    const out = await b.complete(refOf(g), new Uint8Array([9]), now + 700);
    assert.equal(out.kind, 'ok');
  });

  void it('a lease whose session row is gone is lost once older than the reclaim delay, and not before', async () => {
    const { a, b, sql } = await pair();
    const now = 3_000_000;
    await a.submit([artifact(4)], now);
    const [g] = await acquire(a, { sessionId: 'w4', now });
    assert.ok(g);
    // The row goes, the lease stays (what a grant racing a reclaim used to leave behind).
    await sql.query("DELETE FROM atp_sessions WHERE session_id = 'w4'");
    assert.deepEqual((await b.maintain(now + SILENT - 1, WINDOW)).lost, []);
    const { lost } = await b.maintain(now + SILENT + 1, WINDOW);
    assert.deepEqual(
      lost.map((o) => o.lease.leaseId),
      [g.leaseId],
    );
    assert.equal(lost[0]!.changed?.view.state, 'PENDING');
    assert.deepEqual(await b.heldLeases(), []);
    // The artifact is leased again, at a higher epoch.
    const [again] = await acquire(b, { sessionId: 'w5', now: now + SILENT + 2 });
    assert.equal(again?.artifactId, g.artifactId);
    assert.equal(again?.epoch, g.epoch + 1);
  });
});

void describe('PostgreSQL store: a connection the server ends while it is in use', { skip }, () => {
  void it('fails that transition only; the store (and its process) go on', async () => {
    const { a, sql, schema } = await pair();
    await a.submit([artifact(10)], 0);
    // Hold a lock that the next transition waits for, so that its connection is checked out.
    const holder = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await holder.connect();
    clients.push(holder);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE atp_artifacts IN ACCESS EXCLUSIVE MODE');
    const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const blocked = a.submit([artifact(11)], 0);
    let waiting: number[] = [];
    while (waiting.length === 0) {
      await new Promise((r) => setTimeout(r, 10));
      waiting = (
        await sql.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1 AND query LIKE '%atp_artifacts%'`,
          [holderPid],
        )
      ).rows.map((r) => r.pid);
    }
    // The server ends that connection (as idle_in_transaction_session_timeout or an administrator would).
    for (const pid of waiting) await sql.query('SELECT pg_terminate_backend($1)', [pid]);
    await assert.rejects(blocked);
    await holder.query('ROLLBACK');
    // The next transition gets a fresh connection.
    const [out] = await a.submit([artifact(12)], 0);
    assert.equal(out?.kind, 'accepted');
    assert.equal((await a.get('', artifact(12).id))?.state, 'PENDING');
  });

  void it('checks idleInTransactionTimeoutMs at once', () => {
    assert.throws(() => new PostgresStore({ url, idleInTransactionTimeoutMs: -1 }), /idleInTransactionTimeoutMs must be a whole number/);
    assert.throws(() => new PostgresStore({ url, idleInTransactionTimeoutMs: 1.5 }), /idleInTransactionTimeoutMs/);
  });
});

void describe('PostgreSQL store: the LISTEN connection', { skip }, () => {
  void it('is connected again after the server ends it, says `resync`, and delivers notifications again', async () => {
    const { a, b, sql } = await pair();
    const events: ExternalEvent[] = [];
    a.subscribe((ev) => events.push(ev));
    const pid = async () =>
      (
        await sql.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`atp-listen-${a.coordinatorId}`])
      ).rows.map((r) => r.pid);
    const before = await pid();
    assert.equal(before.length, 1);
    await sql.query('SELECT pg_terminate_backend($1)', [before[0]]);
    while (!events.some((e) => e.kind === 'resync')) await new Promise((r) => setTimeout(r, 10));
    // B's decisions reach A again.
    await b.submit([artifact(20, { kind: 'after-resync' })], 0);
    while (!events.some((e) => e.kind === 'pending' && e.kinds.includes('after-resync'))) await new Promise((r) => setTimeout(r, 10));
    // And the heartbeat has its connection back.
    await a.heartbeat(2);
    assert.equal(
      (await sql.query<{ h: string }>('SELECT heartbeat_at AS h FROM atp_coordinators WHERE id = $1', [a.coordinatorId])).rows[0]?.h,
      '2',
    );
    const after = await pid();
    assert.equal(after.length, 1);
    assert.notEqual(after[0], before[0]);
  });
});
