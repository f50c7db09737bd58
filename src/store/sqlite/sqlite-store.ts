/**
 * The SQLite store, the embedded default (ATP_SPEC §6.5, §11.7): the memory store decides every
 * transition; this one journals the records each transition changed into SQLite with group
 * commit, and loads them back at open. A transition's outcome resolves only after the
 * transaction that holds it has committed, so ACCEPTED and ACK follow durability.
 *
 * The transactions run on a writer thread (writer-thread.ts): the event loop builds a batch's rows
 * and goes on deciding while the thread writes and fsyncs it. Changes made meanwhile form the next
 * batch, posted when the one in flight has committed, so a slow disk makes batches larger rather
 * than the coordinator slower.
 */
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite-migrations.js';
import { MemoryStore, isTerminal } from '../memory-store.js';
import type { ArtifactRecord } from '../memory-store.js';
import type { ArtifactResult, ArtifactView, NewArtifact, SessionRecord } from '../store.js';
import { migrate } from './migrate.js';
import { LIVE_STATE_CODES, insertParams, recordOf, updateParams } from './rows.js';
import type { ArtifactRow } from './rows.js';
import type { Param, WriteBatch, WriterConfig, WriterReply } from './writer-protocol.js';

/** Options of the SQLite store. */
export interface SqliteStoreOptions {
  /** Database file. Default `./atp.db`. */
  path?: string;
  /**
   * `FULL` (default) fsyncs the WAL at every commit, so a committed transition survives a power
   * loss; `NORMAL` survives a process crash only. With group commit one fsync covers a whole
   * batch, and node-baselines §3c measured FULL as fast as NORMAL at batches of 1,000 rows: the
   * durability that ACCEPTED and ACK promise costs little, so FULL is the default.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** A batch is written at once when it holds this many changed records. Default 1,000. */
  maxBatch?: number;
  /**
   * 0 (default): a batch is written on the next turn of the event loop after its first change
   * (setImmediate), so that everything that arrived in one turn shares a transaction. Above 0:
   * at most this many milliseconds later, trading latency for bigger batches.
   */
  flushDelayMs?: number;
  /**
   * Hold an exclusive lock on the file while open (default true): a second coordinator on the
   * same file would decide from its own copy of the state and grant leases twice, so it is
   * refused at open. The lock dies with the process, so a restart after a crash is not blocked.
   */
  exclusive?: boolean;
}

/** What the store has written, for tests and metrics. */
export interface SqliteStoreStats {
  /** Transactions committed by group commit (one per flush). */
  transactions: number;
  /** Artifact rows written (inserts and updates). */
  records: number;
  /** Transitions whose outcome waited for a commit. */
  transitions: number;
}

interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A batch posted to the writer, with the records whose rows it carries. */
interface InFlight {
  batch: Batch;
  records: ArtifactRecord[];
}

/** The SQLite store: MemoryStore decisions, journalled with group commit. */
export class SqliteStore extends MemoryStore {
  override readonly name: string = 'sqlite';
  readonly path: string;
  readonly #synchronous: 'FULL' | 'NORMAL';
  readonly #maxBatch: number;
  readonly #flushDelayMs: number;
  readonly #exclusive: boolean;
  #writer: Worker | undefined;
  #opened = false;
  #closed = false;
  /** Set when a write failed: the memory state is ahead of the disk, so nothing more is confirmed. */
  #failure: Error | undefined;
  /** Records accepted but not yet inserted. */
  readonly #unsaved = new Set<ArtifactRecord>();
  /** Records changed since the last flush, deduplicated, in order of first change. */
  readonly #dirty = new Set<ArtifactRecord>();
  /** Rows of forgotten artifacts to delete in the open batch. */
  #forgets: number[] = [];
  /** When the records that ended since their last write ended (their rows' `ended_at`). */
  readonly #endedAt = new Map<ArtifactRecord, number>();
  /** Session writes since the last flush: the record to save, or null to drop. */
  readonly #sessionOps = new Map<string, SessionRecord | null>();
  /** The batch collecting changes now. */
  #batch: Batch | undefined;
  #timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  /** Batches posted to the writer and not yet committed, by id, in order. */
  readonly #inFlight = new Map<number, InFlight>();
  #nextBatchId = 1;
  /** The promise of the batch posted last, while any is in flight. */
  #lastPosted: Promise<void> | undefined;
  #onClosed: (() => void) | undefined;
  readonly #stats: SqliteStoreStats = { transactions: 0, records: 0, transitions: 0 };

  constructor(options: SqliteStoreOptions = {}) {
    super();
    const path = options.path ?? './atp.db';
    if (typeof path !== 'string' || path === '') throw new TypeError('SqliteStore option path must be a non-empty string');
    const sync = options.synchronous ?? 'FULL';
    if (sync !== 'FULL' && sync !== 'NORMAL')
      throw new RangeError(`SqliteStore option synchronous must be FULL or NORMAL, got ${String(sync)}`);
    const maxBatch = options.maxBatch ?? 1000;
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new RangeError(`SqliteStore option maxBatch must be a positive integer, got ${String(maxBatch)}`);
    const delay = options.flushDelayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0 || delay > 1000)
      throw new RangeError(`SqliteStore option flushDelayMs must be in [0, 1000], got ${String(delay)}`);
    this.path = path;
    this.#synchronous = sync;
    this.#maxBatch = maxBatch;
    this.#flushDelayMs = delay;
    this.#exclusive = options.exclusive ?? true;
  }

  /** Counters of what group commit wrote. */
  get stats(): SqliteStoreStats {
    return { ...this.#stats };
  }

  // ---- open and load -----------------------------------------------------------------------

  override async open(): Promise<void> {
    if (this.#opened) return;
    if (this.#closed) throw new Error('the SQLite store is closed');
    // Migrate and load on this thread, then hand the file to the writer thread.
    let db: Database.Database | undefined;
    try {
      db = new Database(this.path);
      db.pragma('busy_timeout = 2000');
      try {
        // Before the first access, so that WAL runs without shared memory and the lock is kept.
        if (this.#exclusive) db.pragma('locking_mode = EXCLUSIVE');
        db.pragma('journal_mode = WAL');
        if (this.#exclusive) db.exec('BEGIN EXCLUSIVE; COMMIT');
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
        throw new Error(`the SQLite store ${this.path} is in use by another process (another coordinator?)`, { cause: err });
      }
      db.pragma(`synchronous = ${this.#synchronous}`);
      migrate(db, SQLITE_MIGRATIONS);
      this.#load(db);
    } finally {
      db?.close();
    }
    this.#writer = await this.#startWriter();
    this.#opened = true;
  }

  #startWriter(): Promise<Worker> {
    const config: WriterConfig = { path: this.path, synchronous: this.#synchronous, exclusive: this.#exclusive };
    const writer = new Worker(new URL('./writer-thread.js', import.meta.url), { workerData: config });
    return new Promise<Worker>((resolve, reject) => {
      let ready = false;
      writer.on('message', (r: WriterReply) => {
        if (ready) return this.#onReply(r);
        if (r.type === 'ready') {
          ready = true;
          writer.unref();
          resolve(writer);
        } else reject(new Error(r.message ?? 'the SQLite writer thread failed to open the database'));
      });
      writer.on('error', (err) => {
        if (!ready) reject(err);
        else this.#fail(err);
      });
      writer.on('exit', (code) => {
        if (!ready) reject(new Error(`the SQLite writer thread exited with code ${code} while opening`));
        else if (!this.#closed) this.#fail(new Error(`the SQLite writer thread exited with code ${code}`));
        this.#onClosed?.();
      });
    });
  }

  /** Every artifact, in order of acceptance (parents before children); payloads of live ones only. */
  #load(db: Database.Database): void {
    const votes = new Map<number, Map<string, { count: number; result: Uint8Array }>>();
    const voteRows = db.prepare('SELECT artifact_seq, digest, count, result FROM quorum_votes').all() as Array<{
      artifact_seq: number;
      digest: string;
      count: number;
      result: Uint8Array;
    }>;
    for (const v of voteRows) {
      let m = votes.get(v.artifact_seq);
      if (m === undefined) votes.set(v.artifact_seq, (m = new Map<string, { count: number; result: Uint8Array }>()));
      m.set(v.digest, { count: v.count, result: new Uint8Array(v.result) });
    }
    const rows = db.prepare(
      `SELECT a.*, CASE WHEN a.state IN (${LIVE_STATE_CODES}) THEN p.payload END AS payload
       FROM artifacts a LEFT JOIN payloads p ON p.artifact_seq = a.seq ORDER BY a.seq`,
    );
    const endedAt = new Map<ArtifactRecord, number>();
    for (const row of rows.iterate() as IterableIterator<ArtifactRow>) {
      const rec = recordOf(row);
      if (!isTerminal(rec.state)) rec.votes = votes.get(row.seq) ?? null;
      else endedAt.set(rec, row.ended_at);
      this.restore(rec);
    }
    this.reindex(endedAt);
    const sessions = db.prepare('SELECT session_id, token_hash, node_id, tenant, roles FROM sessions').all() as Array<{
      session_id: string;
      token_hash: string;
      node_id: string;
      tenant: string;
      roles: number;
    }>;
    for (const s of sessions)
      this.sessions.set(s.session_id, {
        sessionId: s.session_id,
        tokenHash: s.token_hash,
        nodeId: s.node_id,
        tenant: s.tenant,
        roles: s.roles,
      });
  }

  // ---- group commit ------------------------------------------------------------------------

  protected override insert(a: NewArtifact, now: number): ArtifactRecord {
    // Its row id is its order of acceptance (rec.seq), numbered on from the rows loaded at open.
    const rec = super.insert(a, now);
    this.#unsaved.add(rec);
    return rec;
  }

  /**
   * Queue the changed records into the open batch; the outcome resolves when that batch commits.
   * An outcome that changed nothing still waits for the open batch: it may report state (a
   * duplicate's acceptance, a refusal) that is not durable yet.
   */
  protected override commit<T>(value: T, changed: readonly ArtifactRecord[]): Promise<T> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (!this.#opened || this.#closed) return Promise.reject(new Error(`the SQLite store is ${this.#closed ? 'closed' : 'not open'}`));
    for (const rec of changed) this.#dirty.add(rec);
    if (changed.length === 0 && this.#batch === undefined) return Promise.resolve(value);
    this.#stats.transitions++;
    const batch = this.#join();
    if (this.#dirty.size >= this.#maxBatch) this.#post();
    return batch.then(() => value);
  }

  protected override onEnded(rec: ArtifactRecord, now: number): void {
    this.#endedAt.set(rec, now);
  }

  /** Forgotten records: their rows go in the open batch (one never written is just dropped). */
  protected override commitForgotten(recs: readonly ArtifactRecord[]): Promise<number> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (!this.#opened || this.#closed) return Promise.reject(new Error(`the SQLite store is ${this.#closed ? 'closed' : 'not open'}`));
    for (const rec of recs) {
      this.#dirty.delete(rec);
      this.#endedAt.delete(rec);
      if (!this.#unsaved.delete(rec)) this.#forgets.push(rec.seq);
    }
    return this.#join().then(() => recs.length);
  }

  override saveSession(s: SessionRecord): Promise<void> {
    return this.#sessionWrite(s.sessionId, s).then(() => super.saveSession(s));
  }

  override dropSession(sessionId: string): Promise<void> {
    return this.#sessionWrite(sessionId, null).then(() => super.dropSession(sessionId));
  }

  #sessionWrite(sessionId: string, s: SessionRecord | null): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (!this.#opened || this.#closed) return Promise.reject(new Error(`the SQLite store is ${this.#closed ? 'closed' : 'not open'}`));
    this.#sessionOps.set(sessionId, s);
    return this.#join();
  }

  /** The open batch's promise, opening one (and scheduling its flush) if none is open. */
  #join(): Promise<void> {
    if (this.#batch === undefined) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#batch = { promise, resolve, reject };
      // While a batch is in flight, this one is posted when that one has committed (#onReply).
      if (this.#inFlight.size === 0) this.#schedule();
    }
    return this.#batch.promise;
  }

  #schedule(): void {
    this.#timer = this.#flushDelayMs > 0 ? setTimeout(() => this.#post(), this.#flushDelayMs) : setImmediate(() => this.#post());
  }

  /** Post the open batch to the writer thread; it settles when the writer reports the commit. */
  #post(): void {
    const batch = this.#batch;
    if (batch === undefined) return;
    this.#batch = undefined;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
      this.#timer = undefined;
    }
    if (this.#failure !== undefined) return batch.reject(this.#failure);
    const records = [...this.#dirty];
    this.#dirty.clear();
    const msg: WriteBatch = {
      type: 'write',
      id: this.#nextBatchId++,
      inserts: [],
      payloads: [],
      dropPayloads: [],
      updates: [],
      forgets: this.#forgets,
      votes: [],
      sessions: [...this.#sessionOps],
    };
    this.#forgets = [];
    this.#sessionOps.clear();
    for (const rec of records) {
      const seq = rec.seq;
      // A terminal artifact's payload is never read again (MemoryStore drops it too): not written,
      // or deleted, so that the file does not keep every payload ever accepted.
      const terminal = isTerminal(rec.state);
      const ended = this.#endedAt.get(rec);
      if (ended !== undefined) this.#endedAt.delete(rec);
      if (this.#unsaved.delete(rec)) {
        msg.inserts.push(compactAll(insertParams(seq, rec, ended ?? 0)));
        if (!terminal) msg.payloads.push([seq, compact(rec.payload)]);
      } else {
        msg.updates.push(compactAll(updateParams(seq, rec, ended ?? null)));
        // Once, in the write of its end (a later write of a finished row finds no payload).
        if (ended !== undefined) msg.dropPayloads.push(seq);
      }
      if (rec.quorumN > 1) {
        const rows: Array<[string, number, Uint8Array]> = [];
        for (const [digest, v] of rec.votes ?? []) rows.push([digest, v.count, compact(v.result)]);
        msg.votes.push({ seq, rows });
      }
    }
    this.#inFlight.set(msg.id, { batch, records });
    this.#lastPosted = batch.promise;
    this.#writer!.ref();
    this.#writer!.postMessage(msg);
  }

  #onReply(r: WriterReply): void {
    if (r.type === 'closed') return;
    const f = this.#inFlight.get(r.id);
    if (f === undefined) return;
    this.#inFlight.delete(r.id);
    if (r.type === 'failed') return this.#fail(new Error(r.message ?? 'the SQLite writer failed'), f.batch);
    this.#stats.transactions++;
    this.#stats.records += f.records.length;
    if (this.#inFlight.size === 0) {
      this.#lastPosted = undefined;
      this.#writer?.unref();
    }
    f.batch.resolve();
    if (this.#inFlight.size === 0 && this.#batch !== undefined && this.#timer === undefined) this.#post();
  }

  /** A write failed: the memory state is ahead of the disk, so nothing more is confirmed. */
  #fail(err: Error, batch?: Batch): void {
    this.#failure ??= new Error(`the SQLite store failed to write and stops confirming transitions: ${err.message}`);
    batch?.reject(this.#failure);
    for (const f of this.#inFlight.values()) f.batch.reject(this.#failure);
    this.#inFlight.clear();
    this.#lastPosted = undefined;
    this.#batch?.reject(this.#failure);
    this.#batch = undefined;
  }

  /** Write what is queued now; resolves when it is durable. */
  flush(): Promise<void> {
    const batch = this.#batch;
    if (batch === undefined) {
      if (this.#failure !== undefined) return Promise.reject(this.#failure);
      return this.#lastPosted ?? Promise.resolve();
    }
    this.#post();
    return batch.promise;
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#opened) await this.flush();
    } finally {
      this.#closed = true;
      const writer = this.#writer;
      this.#writer = undefined;
      if (writer !== undefined) {
        const exited = new Promise<void>((resolve) => (this.#onClosed = resolve));
        writer.ref();
        writer.postMessage({ type: 'close' });
        await exited;
      }
    }
  }

  // ---- reads: what was read is returned once it is durable ------------------------------------

  #durable<T>(value: T): Promise<T> {
    const pending = this.#batch?.promise ?? this.#lastPosted;
    return pending === undefined ? Promise.resolve(value) : pending.then(() => value);
  }

  override get(tenant: string, id: string): Promise<ArtifactView | undefined> {
    return super.get(tenant, id).then((v) => this.#durable(v));
  }

  override result(tenant: string, id: string): Promise<ArtifactResult | undefined> {
    return super.result(tenant, id).then((v) => this.#durable(v));
  }

  override subtree(tenant: string, id: string): Promise<ArtifactView[]> {
    return super.subtree(tenant, id).then((v) => this.#durable(v));
  }

  override byTag(tenant: string, tag: string): Promise<ArtifactView[]> {
    return super.byTag(tenant, tag).then((v) => this.#durable(v));
  }
}

/** A byte array that owns exactly its bytes: a posted view would carry its whole buffer along. */
function compact(b: Uint8Array): Uint8Array {
  // new Uint8Array(view) copies (Buffer#slice would not).
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

function compactAll(params: Param[]): Param[] {
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p instanceof Uint8Array) params[i] = compact(p);
  }
  return params;
}
