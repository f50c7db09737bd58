import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations/sqlite-migrations.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { migrate } from '../../src/store/sqlite/migrate.js';
import { MemoryStore, SqliteStore, openStore } from '../../src/store/index.js';
import type { ArtifactResult, ArtifactView, Store } from '../../src/store/store.js';
import { acquire, artifact, ensureSession, hexId, refOf, runStoreConformance } from './conformance.js';

const NOW = 1_000_000;
const enc = new TextEncoder();
const dec = new TextDecoder();

const dir = mkdtempSync(join(tmpdir(), 'atp-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const dbPath = () => join(dir, `store-${++files}.db`);

runStoreConformance('sqlite', () => new SqliteStore({ path: dbPath() }));

async function opened(
  path: string,
  t: { after(fn: () => Promise<void>): void },
  options: ConstructorParameters<typeof SqliteStore>[0] = {},
): Promise<SqliteStore> {
  const s = new SqliteStore({ ...options, path });
  await s.open();
  t.after(() => s.close());
  return s;
}

async function snapshot(s: Store, ids: string[]) {
  const views: Array<ArtifactView | undefined> = [];
  const results: Array<ArtifactResult | undefined> = [];
  for (const id of ids) {
    views.push(await s.get('', id));
    results.push(await s.result('', id));
  }
  const held = (await s.heldLeases()).sort((a, b) => a.leaseId.localeCompare(b.leaseId));
  return { views, results, held, counts: await s.counts(), deadlines: await s.pendingDeadlines(), sessions: await s.loadSessions() };
}

/** Rows of a table, read by a separate connection (what another process would see on disk). */
function countRows(path: string, table: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

void describe('sqlite store: durability across a reopen', () => {
  void it('a second store on the same file finds the same state: pending leasable, held leases listed, results kept', async (t) => {
    const path = dbPath();
    // Without the lock, so that a second store can open the file while the first is left as a crash leaves it.
    const a = await opened(path, t, { exclusive: false });
    await a.submit(
      [
        artifact(1, { priority: 5 }),
        artifact(2),
        artifact(3, { kind: 'held' }),
        artifact(4, { kind: 'done' }),
        artifact(5, { kind: 'bad' }),
        artifact(6, { kind: 'tree' }),
        artifact(7, { kind: 'tree', parentId: hexId(6) }),
        artifact(8, { kind: 'q', latePolicy: 2, quorumK: 2, quorumN: 3 }),
        artifact(9, { parentId: hexId(1), tags: ['t'], deadlineAt: NOW + 60_000 }),
        artifact(10, { maxAttempts: 3 }),
      ],
      NOW,
    );
    await a.saveSession({ sessionId: 's1', tokenHash: 'ab'.repeat(32), nodeId: 'n1', tenant: '', roles: 1 });
    const held = (await acquire(a, { kinds: ['held'] }))[0]!;
    await a.partial(refOf(held), 1, enc.encode('p3'), NOW);
    await a.checkpoint(refOf(held), enc.encode('cp3'), NOW);
    const done = (await acquire(a, { kinds: ['done'] }))[0]!;
    await a.complete(refOf(done), enc.encode('r4'), NOW);
    const bad = (await acquire(a, { kinds: ['bad'] }))[0]!;
    await a.fail(refOf(bad), 'ATP_ERR_HANDLER_FATAL', false, 'broken', NOW);
    await a.cancel('', hexId(6), true, 'stop the tree', NOW);
    const qa = (await acquire(a, { kinds: ['q'], sessionId: 's1', nodeId: 'A' }))[0]!;
    const qb = (await acquire(a, { kinds: ['q'], sessionId: 's1', nodeId: 'B' }))[0]!;
    assert.equal((await a.complete(refOf(qa), enc.encode('vote'), NOW)).kind, 'recorded');
    const first = await acquire(a, { max: 4 });
    assert.deepEqual(
      first.map((g) => g.artifactId),
      [1, 2, 9, 10].map(hexId),
    );
    for (const g of first.slice(0, 3)) await a.release(refOf(g), undefined, NOW);
    await a.fail(refOf(first[3]!), 'ATP_ERR_HANDLER', true, 'again', NOW);

    const ids = Array.from({ length: 10 }, (_, i) => hexId(i + 1));
    const before = await snapshot(a, ids);
    // No close: the first store is left as a crash would leave it.
    const b = await opened(path, t, { exclusive: false });
    const afterReopen = await snapshot(b, ids);
    assert.deepEqual(afterReopen, before);
    assert.equal(afterReopen.held.length, 2);
    assert.equal(afterReopen.counts.PENDING, 4);

    // Pending ones are leasable again, in order, with their payloads.
    const again = await acquire(b, { max: 10, sessionId: 's2' });
    assert.deepEqual(
      again.map((g) => [g.artifactId, g.epoch]),
      [
        [hexId(1), 2],
        [hexId(2), 2],
        [hexId(9), 2],
        [hexId(10), 2],
      ],
    );
    assert.equal(dec.decode(again[0]!.payload), 'payload-1');
    // The held lease is still current, with its partial sequence and checkpoint.
    assert.equal((await b.leaseStatus(refOf(held))).kind, 'current');
    assert.equal((await b.partial(refOf(held), 1, enc.encode('p3'), NOW)).kind, 'duplicate');
    assert.equal((await b.partial(refOf(held), 2, enc.encode('p3b'), NOW)).kind, 'ok');
    assert.equal((await b.complete(refOf(held), enc.encode('r3'), NOW)).kind, 'ok');
    // Leases that ended before the crash stay fenced.
    assert.equal((await b.complete(refOf(done), enc.encode('again'), NOW)).kind, 'stale');
    assert.equal((await b.complete(refOf(first[0]!), enc.encode('again'), NOW)).kind, 'stale');
    // Quorum: the recorded vote and the nodes that held it survive.
    assert.equal((await acquire(b, { kinds: ['q'], nodeId: 'A' })).length, 0);
    assert.equal((await b.complete(refOf(qb), enc.encode('vote'), NOW)).kind, 'ok');
    assert.equal(dec.decode((await b.result('', hexId(8)))?.result), 'vote');
    // The cancelled subtree still gives birth to cancelled children.
    const [born] = await b.submit([artifact(11, { kind: 'tree', parentId: hexId(7) })], NOW);
    assert.ok(born?.kind === 'accepted');
    assert.equal(born.view.state, 'CANCELLED');
    // Idempotent resubmission and conflict against the stored digest.
    const [dup, conflict] = await b.submit([artifact(4, { kind: 'done' }), artifact(4, { kind: 'done', payload: enc.encode('x') })], NOW);
    assert.ok(dup?.kind === 'accepted' && dup.duplicate);
    assert.equal(dup.view.state, 'COMPLETED');
    assert.equal(conflict?.kind, 'conflict');
    assert.equal(dec.decode((await b.result('', hexId(4)))?.result), 'r4');
    assert.deepEqual(
      (await b.byTag('', 't')).map((v) => v.id),
      [hexId(9)],
    );
    assert.deepEqual(await b.ancestors('', hexId(9)), [hexId(1)]);

    // What the second store wrote is found by a third.
    const ids11 = [...ids, hexId(11)];
    const beforeThird = await snapshot(b, ids11);
    await b.close();
    const c = await opened(path, t, { exclusive: false });
    assert.deepEqual(await snapshot(c, ids11), beforeThird);
    assert.equal((await c.get('', hexId(3)))?.state, 'COMPLETED');
  });

  void it('a second store cannot open a file that a store holds; it can once that one is closed', async (t) => {
    const path = dbPath();
    const a = await opened(path, t);
    await a.submit([artifact(1)], NOW);
    await assert.rejects(new SqliteStore({ path }).open(), /in use by another process/);
    await a.close();
    const b = await opened(path, t);
    assert.equal((await b.get('', hexId(1)))?.state, 'PENDING');
  });

  void it('records the applied migrations and refuses a database newer than the build', async (t) => {
    const path = dbPath();
    const s = await opened(path, t);
    await s.close();
    const db = new Database(path);
    assert.deepEqual(
      db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(),
      SQLITE_MIGRATIONS.map((m) => ({ version: m.version })),
    );
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(
      SQLITE_MIGRATIONS.length + 1,
      'from the future',
    );
    db.close();
    await assert.rejects(new SqliteStore({ path }).open(), /newer than this build/);
  });

  void it('migrates a version 1 file: its artifacts load, and the (tenant, id) index is dropped', async (t) => {
    const path = dbPath();
    const db = new Database(path);
    migrate(db, SQLITE_MIGRATIONS.slice(0, 1));
    const indexes = () => db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'artifacts'").all();
    assert.deepEqual(indexes(), [{ name: 'artifacts_tenant_id' }]);
    db.close();
    const a = await opened(path, t, { exclusive: false });
    await a.submit([artifact(1)], NOW);
    await a.close();
    const b = await opened(path, t);
    assert.equal((await b.get('', hexId(1)))?.state, 'PENDING');
    await b.close();
    const again = new Database(path, { readonly: true });
    try {
      assert.deepEqual(
        again.prepare('SELECT version FROM schema_migrations ORDER BY version').all(),
        SQLITE_MIGRATIONS.map((m) => ({ version: m.version })),
      );
      assert.deepEqual(again.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'artifacts'").all(), []);
    } finally {
      again.close();
    }
  });

  void it('keeps no payload of a terminal artifact (ATP_SPEC ATP-3.1-6): deleted when it ends, and by migration 3 from an older file', async (t) => {
    const path = dbPath();
    const a = await opened(path, t, { exclusive: false });
    await a.submit([artifact(1), artifact(2), artifact(3)], NOW);
    assert.equal(countRows(path, 'payloads'), 3);
    const [g1] = await acquire(a, { max: 1 });
    assert.equal((await a.complete(refOf(g1!), enc.encode('r'), NOW)).kind, 'ok');
    await a.cancel('', hexId(2), false, 'stop', NOW);
    assert.equal(countRows(path, 'payloads'), 1, 'only the pending artifact keeps its payload');
    await a.close();
    // A file written before this version: the completed artifact's payload is still there.
    const db = new Database(path);
    const seq = (db.prepare('SELECT seq FROM artifacts WHERE id = ?').get(hexId(1)) as { seq: number }).seq;
    db.prepare('INSERT INTO payloads (artifact_seq, payload) VALUES (?, ?)').run(seq, Buffer.from('old'));
    db.prepare('DELETE FROM schema_migrations WHERE version >= 3').run();
    db.exec('ALTER TABLE artifacts DROP COLUMN ended_at');
    db.close();
    const b = await opened(path, t, { exclusive: false });
    assert.equal(countRows(path, 'payloads'), 1);
    const [g3] = await acquire(b, { max: 1 });
    assert.equal(dec.decode(g3!.payload), dec.decode(artifact(3).payload), 'the pending one is leased with its payload');
  });

  void it('deletes the rows of forgotten artifacts (ATP_SPEC §3.11); after a reopen the others are forgotten in the order they ended', async (t) => {
    const path = dbPath();
    const a = await opened(path, t, { exclusive: false });
    await a.submit([artifact(1, { kind: 'root' }), artifact(2, { parentId: hexId(1) }), artifact(3), artifact(4)], NOW);
    await a.complete(refOf((await acquire(a, { kinds: ['root'] }))[0]!), enc.encode('r'), NOW + 10);
    await a.cancel('', hexId(3), false, 'x', NOW + 20);
    await a.cancel('', hexId(2), false, 'x', NOW + 30);
    // A later write of a finished row (the subtree mark) keeps when it ended.
    await a.cancel('', hexId(1), true, 'mark', NOW + 35);
    assert.equal(await a.forget(NOW + 20, 100), 1, '3; 1 waits for its child 2, which ended later');
    await a.flush();
    assert.equal(countRows(path, 'artifacts'), 3);
    const endedAt = (id: string) => {
      const db = new Database(path, { readonly: true });
      try {
        return (db.prepare('SELECT ended_at FROM artifacts WHERE id = ?').get(id) as { ended_at: number }).ended_at;
      } finally {
        db.close();
      }
    };
    assert.deepEqual([endedAt(hexId(1)), endedAt(hexId(2)), endedAt(hexId(4))], [NOW + 10, NOW + 30, 0]);
    await a.close();
    const b = await opened(path, t, { exclusive: false });
    assert.equal(await b.get('', hexId(3)), undefined, 'forgotten for good');
    assert.equal(await b.forget(NOW + 29, 100), 0, 'the end times were kept: 2 ended at NOW + 30');
    assert.equal(await b.forget(NOW + 30, 100), 2, '2, then its parent 1');
    await b.flush();
    assert.equal(countRows(path, 'artifacts'), 1);
    assert.equal((await b.get('', hexId(4)))?.state, 'PENDING');
    // The id of a forgotten artifact is free, in the file as in memory.
    await b.submit([artifact(3, { payload: enc.encode('new content') })], NOW + 40);
    await b.close();
    const c = await opened(path, t, { exclusive: false });
    assert.equal((await c.get('', hexId(3)))?.state, 'PENDING');
    assert.equal(countRows(path, 'artifacts'), 2);
  });

  void it('migration 4 starts the retention of terminal artifacts of an older file at their acceptance', async (t) => {
    const path = dbPath();
    const a = await opened(path, t, { exclusive: false });
    await a.submit([artifact(1), artifact(2)], NOW);
    await a.cancel('', hexId(1), false, 'x', NOW + 500);
    await a.close();
    const db = new Database(path);
    db.prepare('DELETE FROM schema_migrations WHERE version >= 4').run();
    db.exec('ALTER TABLE artifacts DROP COLUMN ended_at');
    db.close();
    const b = await opened(path, t);
    assert.equal(await b.forget(NOW - 1, 100), 0);
    assert.equal(await b.forget(NOW, 100), 1, 'counted from NOW, its acceptance, not NOW + 500');
    assert.equal((await b.get('', hexId(2)))?.state, 'PENDING');
  });

  void it('refuses a file that holds one artifact twice, since uniqueness is kept in memory and not by an index', async (t) => {
    const path = dbPath();
    const a = await opened(path, t);
    await a.submit([artifact(1)], NOW);
    await a.close();
    const db = new Database(path);
    db.exec(
      'INSERT INTO artifacts SELECT seq + 1, tenant, id, digest, kind, priority, late_policy, quorum_k, quorum_n, lease_ttl_ms, max_duration_ms, deadline_at, max_attempts, parent_id, tags, created_at, state, epoch, failed_attempts, code, message, last_partial_seq, last_partial, checkpoint, result, result_digest, subtree_cancelled, leases, quorum_nodes, ended_at FROM artifacts',
    );
    db.close();
    await assert.rejects(new SqliteStore({ path }).open(), new RegExp(`holds artifact ""/${hexId(1)} twice`));
  });
});

void describe('sqlite store: group commit', () => {
  void it('transitions of one turn share one transaction, and a batch is cut at maxBatch', async (t) => {
    const s = await opened(dbPath(), t);
    const t0 = s.stats.transactions;
    await Promise.all(Array.from({ length: 500 }, (_, i) => s.submit([artifact(i + 1)], NOW)));
    assert.equal(s.stats.transactions - t0, 1);
    const t1 = s.stats.transactions;
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.submit([artifact(1000 + i)], NOW)));
    assert.equal(s.stats.transactions - t1, 3, '1,000 + 1,000 + 500');
    await Promise.all(Array.from({ length: 300 }, (_, i) => ensureSession(s, `s${i}`)));
    const t2 = s.stats.transactions;
    const grants = (await Promise.all(Array.from({ length: 300 }, (_, i) => acquire(s, { sessionId: `s${i}`, max: 2 })))).flat();
    assert.equal(grants.length, 600);
    await Promise.all(grants.map((g) => s.complete(refOf(g), enc.encode('r'), NOW)));
    assert.equal(s.stats.transactions - t2, 2, 'one for the grants, one for the results');
    assert.equal((await s.counts()).COMPLETED, 600);
  });

  void it('repeated changes of one record in a batch write one row', async (t) => {
    const s = await opened(dbPath(), t);
    await s.submit([artifact(1)], NOW);
    const r0 = s.stats.records;
    const [g] = await acquire(s);
    const ops = [
      s.partial(refOf(g!), 1, enc.encode('a'), NOW),
      s.partial(refOf(g!), 2, enc.encode('b'), NOW),
      s.checkpoint(refOf(g!), enc.encode('c'), NOW),
      s.complete(refOf(g!), enc.encode('r'), NOW),
    ];
    await Promise.all(ops);
    assert.equal(s.stats.records - r0, 2, 'the grant, then one row for four changes');
  });

  void it('an outcome resolves only after its transaction is on disk, and so does one that changed nothing', async (t) => {
    const path = dbPath();
    const s = await opened(path, t, { exclusive: false });
    const events: string[] = [];
    const p1 = s.submit([artifact(1)], NOW).then(() => events.push(`accepted ${countRows(path, 'artifacts')}`));
    const p2 = s.submit([artifact(1)], NOW).then(() => events.push(`duplicate ${countRows(path, 'artifacts')}`));
    assert.equal(countRows(path, 'artifacts'), 0, 'not written in the same turn');
    await Promise.all([p1, p2]);
    assert.deepEqual(events, ['accepted 1', 'duplicate 1']);
    assert.equal(countRows(path, 'payloads'), 1);
  });

  void it('a flush delay gathers changes of several turns into one transaction', async (t) => {
    const s = await opened(dbPath(), t, { flushDelayMs: 200 });
    const t0 = s.stats.transactions;
    const ps: Array<Promise<unknown>> = [];
    for (let i = 0; i < 3; i++) {
      ps.push(s.submit([artifact(i + 1)], NOW));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(ps);
    assert.equal(s.stats.transactions - t0, 1);
  });

  void it('session writes are durable before they resolve', async (t) => {
    const path = dbPath();
    const s = await opened(path, t, { exclusive: false });
    await s.saveSession({ sessionId: 'a', tokenHash: 'aa', nodeId: 'n', tenant: '', roles: 1 });
    assert.equal(countRows(path, 'sessions'), 1);
    await s.dropSession('a');
    assert.equal(countRows(path, 'sessions'), 0);
  });

  void it('refuses transitions after close', async () => {
    const s = new SqliteStore({ path: dbPath() });
    await s.open();
    await s.close();
    await assert.rejects(s.submit([artifact(1)], NOW), /closed/);
  });

  void it('checks its options at once', () => {
    assert.throws(() => new SqliteStore({ path: dbPath(), synchronous: 'OFF' as 'FULL' }), RangeError);
    assert.throws(() => new SqliteStore({ path: dbPath(), maxBatch: 0 }), RangeError);
    assert.throws(() => new SqliteStore({ path: dbPath(), flushDelayMs: -1 }), RangeError);
    assert.throws(() => new SqliteStore({ path: '' }), TypeError);
  });
});

void describe('openStore', () => {
  void it('parses memory, sqlite:PATH, PATH.db and postgres:// specs', () => {
    assert.ok(openStore('memory') instanceof MemoryStore);
    assert.ok(!(openStore('memory') instanceof SqliteStore));
    const a = openStore('sqlite:./x/atp.db');
    assert.ok(a instanceof SqliteStore);
    assert.equal(a.path, './x/atp.db');
    assert.equal((openStore('sqlite:///var/lib/atp.db') as SqliteStore).path, '/var/lib/atp.db');
    assert.equal((openStore('data/state.db') as SqliteStore).path, 'data/state.db');
    assert.equal(new SqliteStore().path, './atp.db');
    assert.ok(openStore('postgres://atp:secret@127.0.0.1:1/atp') instanceof PostgresStore);
    assert.throws(() => openStore('sqlite:'), TypeError);
    assert.throws(() => openStore('redis://x'), TypeError);
  });
});
