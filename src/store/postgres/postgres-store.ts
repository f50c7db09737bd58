/**
 * The PostgreSQL store: several coordinators share one database (ATP_SPEC §11.8). The database
 * decides every transition, each in one transaction guarded by lease id and epoch; leasing takes
 * rows with `FOR UPDATE SKIP LOCKED`, so coordinators never hand out the same artifact twice.
 * Decisions that other coordinators must act on (state changes for their watchers, revokes for
 * leases their workers hold, new pending work) travel by LISTEN/NOTIFY.
 *
 * Each coordinator heartbeats a row; the sessions of a coordinator that stopped heartbeating are
 * adopted by whichever coordinator their workers reconnect to, or, after the resume window, their
 * leases are lost and re-issued at higher epochs.
 */
import pg from 'pg';
import type { ErrorCode } from '../../errors.js';
import { randomId, sha256, toHex } from '../../internal/ids.js';
import type {
  AcquireRequest,
  ArtifactResult,
  ArtifactView,
  CancelOutcome,
  Changed,
  CompleteOutcome,
  ExternalEvent,
  Grant,
  LeaseRecord,
  LeaseRef,
  LossOutcome,
  MaintainOutcome,
  NewArtifact,
  PartialOutcome,
  RevokeOrder,
  SessionRecord,
  Stale,
  StateName,
  Store,
  SubmitOutcome,
} from '../store.js';
import { LEASE_OVERHEAD_BYTES } from '../store.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

const STATE_CODE: Record<StateName, number> = { PENDING: 1, LEASED: 2, COMPLETED: 3, FAILED: 4, CANCELLED: 5, EXPIRED: 6 };
const STATE_NAME: readonly StateName[] = ['PENDING', 'PENDING', 'LEASED', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];
const EMPTY = new Uint8Array(0);
const MIGRATION_LOCK = 0x41545031; // "ATP1"
const ENDED_MEMORY = 200_000;

/**
 * Every column of atp_artifacts but the payload, which only a grant reads: a transition, a QUERY
 * or a watch of an artifact with a payload of 100 MiB must not fetch (and de-TOAST) it each time.
 */
const ARTIFACT_COLUMNS =
  'tenant, id, seq, digest, kind, priority, late_policy, quorum_k, quorum_n, lease_ttl_ms, max_duration_ms, deadline_at, max_attempts, parent_id, tags, state, epoch, failed_attempts, code, message, last_partial_seq, last_partial, checkpoint, result, result_digest, subtree_cancelled, leases_out, votes_count, quorum_nodes, created_at';
/** The same, qualified by the alias `a`. */
const ARTIFACT_COLUMNS_A = ARTIFACT_COLUMNS.split(', ')
  .map((c) => `a.${c}`)
  .join(', ');

/** Options of the PostgreSQL store. */
export interface PostgresStoreOptions {
  /** Connection string, e.g. postgres://user@127.0.0.1:5432/db. */
  url: string;
  /** Connections in the pool. Default 8. */
  poolSize?: number;
  /** This coordinator's id (random by default). */
  coordinatorId?: string;
  /** Schema holding the tables (created if missing); default `public`. Tests use one per store. */
  schema?: string;
  /**
   * PostgreSQL ends a transaction of this store that sits idle for longer than this, and with it
   * the locks it holds (`idle_in_transaction_session_timeout`). A coordinator's transactions take
   * milliseconds; one idle for seconds belongs to a coordinator that is stalled (paused, swapped
   * out), and must not hold rows that the other coordinators need to reclaim its sessions. Keep it
   * below the reclaim delay (twice the resume window plus one second). Default 5,000 ms; 0 turns it off.
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * How many ended leases the database remembers, for all coordinators together (ATP_SPEC
   * ATP-5.6-4): the specific reason for a frame about one, and a late result under
   * ACCEPT_IF_UNRESOLVED. Upkeep deletes the oldest beyond this once a tenth of it has ended since
   * it last did. Default 200,000, as the memory store.
   */
  endedMemory?: number;
}

type Row = Record<string, unknown>;
type Q = pg.PoolClient | pg.Pool;

interface Effects {
  changed: Array<{ tenant: string; id: string }>;
  revoke: RevokeOrder[];
  pending: Map<string, Set<string>>;
}

function newEffects(): Effects {
  return { changed: [], revoke: [], pending: new Map() };
}

/**
 * A statement of the hot path, prepared once per connection under its name: PostgreSQL then skips
 * parsing and planning it at each call (a plan of the acquire statement took about 3 ms).
 */
function prepared(c: Q, name: string, text: string, values: unknown[]): Promise<pg.QueryResult> {
  return c.query({ name, text, values });
}

/** An artifact's row (all but the payload), locked FOR UPDATE; undefined if there is none. */
async function lockArtifact(c: Q, tenant: string, id: string): Promise<Row | undefined> {
  const r = await c.query(`SELECT ${ARTIFACT_COLUMNS} FROM atp_artifacts WHERE tenant = $1 AND id = $2 FOR UPDATE`, [tenant, id]);
  return r.rows[0] as Row | undefined;
}

function n(v: unknown): number {
  return typeof v === 'string' ? Number(v) : (v as number);
}

function bytes(v: unknown): Uint8Array {
  return v === null || v === undefined ? EMPTY : new Uint8Array(v as Buffer);
}

function viewOf(r: Row): ArtifactView {
  return {
    tenant: r.tenant as string,
    id: r.id as string,
    digest: r.digest as string,
    kind: r.kind as string,
    state: STATE_NAME[n(r.state)]!,
    parentId: (r.parent_id as string | null) ?? null,
    tags: r.tags as string[],
    epoch: n(r.epoch),
    failedAttempts: n(r.failed_attempts),
    code: (r.code as ErrorCode | null) ?? null,
    message: r.message as string,
    lastPartialSeq: n(r.last_partial_seq),
    deadlineAt: n(r.deadline_at),
  };
}

function resultOf(r: Row): ArtifactResult {
  const state = STATE_NAME[n(r.state)]!;
  return {
    state,
    code: (r.code as ErrorCode | null) ?? null,
    message: r.message as string,
    result: state === 'COMPLETED' ? bytes(r.result) : bytes(r.last_partial),
    resultDigest: (r.result_digest as string | null) ?? null,
    checkpoint: bytes(r.checkpoint),
  };
}

function leaseOf(r: Row): LeaseRecord {
  return {
    leaseId: r.lease_id as string,
    tenant: r.tenant as string,
    artifactId: r.artifact_id as string,
    epoch: n(r.epoch),
    sessionId: r.session_id as string,
    nodeId: r.node_id as string,
    grantedAt: n(r.granted_at),
    ttlMs: n(r.ttl_ms),
    maxDurationMs: n(r.max_duration_ms),
  };
}

const isTerminalCode = (s: number) => s >= 3;

/** A COMPLETE waiting for the next batch. */
interface PendingComplete {
  ref: LeaseRef;
  result: Uint8Array;
  now: number;
  resolve: (out: CompleteOutcome) => void;
  reject: (err: unknown) => void;
}

/** The PostgreSQL store. */
export class PostgresStore implements Store {
  readonly name = 'postgres';
  readonly coordinatorId: string;
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly #schema: string;
  readonly #channel: string;
  #listener: pg.Client | undefined;
  #handlers: Array<(ev: ExternalEvent) => void> = [];
  #closed = false;
  readonly #endedMemory: number;
  /** Leases this coordinator ended since its upkeep last pruned the ended ones. */
  #endedSincePrune = 0;

  constructor(options: PostgresStoreOptions) {
    this.#url = options.url;
    this.coordinatorId = options.coordinatorId ?? toHex(randomId(8));
    this.#schema = options.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(this.#schema))
      throw new RangeError(`schema ${JSON.stringify(this.#schema)} must be a lower-case SQL identifier`);
    this.#channel = `atp_events_${this.#schema}`;
    const idle = options.idleInTransactionTimeoutMs ?? 5000;
    if (!Number.isInteger(idle) || idle < 0)
      throw new RangeError(`idleInTransactionTimeoutMs must be a whole number of milliseconds, 0 or more; got ${String(idle)}`);
    const ended = options.endedMemory ?? ENDED_MEMORY;
    if (!Number.isSafeInteger(ended) || ended < 1) throw new RangeError(`endedMemory must be a positive integer, got ${String(ended)}`);
    this.#endedMemory = ended;
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 8,
      options: `-c search_path=${this.#schema} -c idle_in_transaction_session_timeout=${idle}`,
      // pg_stat_activity then says which coordinator each connection serves.
      application_name: `atp-${this.coordinatorId}`,
    });
    this.#pool.on('error', () => undefined); // a broken idle connection is replaced by the pool
    // A connection that the server ends while it is checked out (idle_in_transaction_session_timeout,
    // an administrator, a restart) fails the query in flight, which is where it is handled; the
    // 'error' event it also emits must not crash the coordinator.
    this.#pool.on('connect', (client) => client.on('error', () => undefined));
  }

  async open(): Promise<void> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
      await c.query('CREATE TABLE IF NOT EXISTS atp_schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
      const done = (await c.query('SELECT version FROM atp_schema_migrations ORDER BY version')).rows.map((r: Row) => n(r.version));
      if (done.length > POSTGRES_MIGRATIONS.length)
        throw new Error(`the database has schema version ${done.length}, newer than this build knows (${POSTGRES_MIGRATIONS.length})`);
      for (let v = done.length + 1; v <= POSTGRES_MIGRATIONS.length; v++) {
        await c.query(POSTGRES_MIGRATIONS[v - 1]!);
        await c.query('INSERT INTO atp_schema_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
    await this.#pool.query(
      'INSERT INTO atp_coordinators (id, heartbeat_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2',
      [this.coordinatorId, Date.now()],
    );
    await this.#listen();
  }

  /** The LISTEN connection: its own client, outside the pool, also used for the heartbeat. */
  async #listen(): Promise<void> {
    const l = new pg.Client({ connectionString: this.#url, application_name: `atp-listen-${this.coordinatorId}` });
    l.on('error', () => this.#relisten(l));
    l.on('end', () => this.#relisten(l));
    try {
      await l.connect();
      l.on('notification', (m) => this.#onNotification(m.payload));
      await l.query(`LISTEN ${this.#channel}`);
    } catch (err) {
      void l.end().catch(() => undefined);
      throw err;
    }
    this.#listener = l;
  }

  /**
   * The LISTEN connection was lost (a server restart, a network cut, an administrator): connect
   * again, with a back-off, and then tell the coordinator that notifications may have been missed
   * meanwhile (a `resync` event), so that it reads again what its watchers and workers wait for.
   */
  #relisten(lost: pg.Client): void {
    if (this.#closed || this.#listener !== lost) return;
    this.#listener = undefined;
    lost.removeAllListeners('notification');
    void lost.end().catch(() => undefined);
    let delay = 50;
    const attempt = () => {
      if (this.#closed) return;
      this.#listen().then(
        () => {
          if (this.#closed) void this.#listener?.end().catch(() => undefined);
          else for (const h of this.#handlers) h({ kind: 'resync' });
        },
        () => {
          delay = Math.min(delay * 2, 2000);
          setTimeout(attempt, delay).unref();
        },
      );
    };
    setTimeout(attempt, delay).unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener?.end().catch(() => undefined);
    await this.#pool.end();
  }

  subscribe(handler: (ev: ExternalEvent) => void): void {
    this.#handlers.push(handler);
  }

  #onNotification(payload: string | undefined): void {
    if (payload === undefined) return;
    let msg: { from: string; events: ExternalEvent[] };
    try {
      msg = JSON.parse(payload) as { from: string; events: ExternalEvent[] };
    } catch {
      return;
    }
    if (msg.from === this.coordinatorId) return;
    for (const ev of msg.events) for (const h of this.#handlers) h(ev);
  }

  /** Run `fn` in a transaction, then tell the other coordinators what it decided. */
  async #tx<T>(fn: (c: pg.PoolClient, fx: Effects) => Promise<T>): Promise<T> {
    // Results queued for a batch start first: transactions begin in the order of the calls.
    this.#startCompletes();
    const c = await this.#pool.connect();
    const fx = newEffects();
    let out: T;
    try {
      await c.query('BEGIN');
      out = await fn(c, fx);
      // NOTIFY inside the transaction: PostgreSQL delivers it at COMMIT, and only then. A
      // coordinator killed between its commit and a NOTIFY sent afterwards would leave the others'
      // watchers without the results it accepted.
      await this.#notify(c, fx);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release();
      throw err;
    }
    c.release();
    return out;
  }

  async #notify(c: Q, fx: Effects): Promise<void> {
    const events: ExternalEvent[] = [];
    for (const ch of fx.changed) events.push({ kind: 'changed', tenant: ch.tenant, id: ch.id });
    for (const r of fx.revoke) events.push({ kind: 'revoke', lease: r.lease, code: r.code, reason: r.reason.slice(0, 200) });
    for (const [tenant, kinds] of fx.pending) events.push({ kind: 'pending', tenant, kinds: [...kinds] });
    // NOTIFY payloads are limited to 8000 bytes: send in chunks.
    let chunk: ExternalEvent[] = [];
    let size = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      await c.query('SELECT pg_notify($1, $2)', [this.#channel, JSON.stringify({ from: this.coordinatorId, events: chunk })]);
      chunk = [];
      size = 0;
    };
    for (const ev of events) {
      const s = JSON.stringify(ev).length;
      if (size + s > 7000) await flush();
      chunk.push(ev);
      size += s;
    }
    await flush();
  }

  // ---- transitions -------------------------------------------------------------------------

  submit(batch: readonly NewArtifact[], now: number): Promise<SubmitOutcome[]> {
    if (batch.length === 0) return Promise.resolve([]);
    return this.#tx(async (c, fx) => {
      const tenants = batch.map((a) => a.tenant);
      const ids = batch.map((a) => a.id);
      const parentTenants: string[] = [];
      const parentIds: string[] = [];
      for (const a of batch)
        if (a.parentId !== null) {
          parentTenants.push(a.tenant);
          parentIds.push(a.parentId);
        }
      // Lock the parents (FOR SHARE): a concurrent subtree cancel cannot slip between the check and the insert.
      const existing = new Map<string, Row>();
      const rows = await prepared(
        c,
        'atp_submit_find',
        `SELECT tenant, id, digest, state, subtree_cancelled, kind, parent_id, tags, epoch, failed_attempts, code, message, last_partial_seq, deadline_at
           FROM atp_artifacts WHERE (tenant, id) IN (SELECT * FROM unnest($1::text[], $2::text[])) FOR SHARE`,
        [tenants.concat(parentTenants), ids.concat(parentIds)],
      );
      for (const r of rows.rows as Row[]) existing.set(`${r.tenant as string}/${r.id as string}`, r);
      const out: SubmitOutcome[] = [];
      const fresh: Array<{ a: NewArtifact; state: number; cancelledTree: boolean }> = [];
      for (const a of batch) {
        const key = `${a.tenant}/${a.id}`;
        const ex = existing.get(key);
        if (ex !== undefined) {
          out.push(
            ex.digest === a.digest
              ? { kind: 'accepted', view: viewOf(ex), duplicate: true }
              : { kind: 'conflict', existingDigest: ex.digest as string },
          );
          continue;
        }
        let cancelledTree = false;
        if (a.parentId !== null) {
          const p = existing.get(`${a.tenant}/${a.parentId}`);
          if (p === undefined) {
            out.push({ kind: 'parent-not-found' });
            continue;
          }
          cancelledTree = p.subtree_cancelled === true;
        }
        const state = cancelledTree ? STATE_CODE.CANCELLED : STATE_CODE.PENDING;
        const view: Row = {
          tenant: a.tenant,
          id: a.id,
          digest: a.digest,
          kind: a.kind,
          state,
          parent_id: a.parentId,
          tags: a.tags,
          epoch: 0,
          failed_attempts: 0,
          code: cancelledTree ? 'ATP_ERR_CANCELLED' : null,
          message: cancelledTree ? 'an ancestor was cancelled with its subtree' : '',
          last_partial_seq: 0,
          deadline_at: a.deadlineAt,
          subtree_cancelled: cancelledTree,
        };
        existing.set(key, view);
        fresh.push({ a, state, cancelledTree });
        out.push({ kind: 'accepted', view: viewOf(view), duplicate: false });
      }
      if (fresh.length > 0) {
        const col = <T>(f: (x: (typeof fresh)[number]) => T) => fresh.map(f);
        const inserted = await prepared(
          c,
          'atp_submit_insert',
          `INSERT INTO atp_artifacts (tenant, id, digest, kind, payload, priority, late_policy, quorum_k, quorum_n, lease_ttl_ms, max_duration_ms,
             deadline_at, max_attempts, parent_id, tags, state, code, message, subtree_cancelled, created_at, ended_at)
           SELECT t.tenant, t.id, t.digest, t.kind, t.payload, t.priority, t.late_policy, t.quorum_k, t.quorum_n, t.lease_ttl_ms, t.max_duration_ms,
             t.deadline_at, t.max_attempts, t.parent_id, ARRAY(SELECT json_array_elements_text(t.tags)), t.state, t.code, t.message, t.cancelled, $20::bigint,
             CASE WHEN t.state IN (1, 2) THEN 0 ELSE $20::bigint END
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::smallint[], $7::smallint[], $8::smallint[], $9::smallint[],
                       $10::bigint[], $11::bigint[], $12::bigint[], $13::integer[], $14::text[], $15::json[], $16::smallint[], $17::text[], $18::text[], $19::boolean[])
             AS t(tenant, id, digest, kind, payload, priority, late_policy, quorum_k, quorum_n, lease_ttl_ms, max_duration_ms, deadline_at, max_attempts,
                  parent_id, tags, state, code, message, cancelled)
           ON CONFLICT (tenant, id) DO NOTHING RETURNING id`,
          [
            col((x) => x.a.tenant),
            col((x) => x.a.id),
            col((x) => x.a.digest),
            col((x) => x.a.kind),
            // A child of a cancelled subtree is born terminal: its payload will never be read.
            col((x) => (x.cancelledTree ? Buffer.alloc(0) : Buffer.from(x.a.payload))),
            col((x) => x.a.priority),
            col((x) => x.a.latePolicy),
            col((x) => x.a.quorumK),
            col((x) => x.a.quorumN),
            col((x) => x.a.leaseTtlMs),
            col((x) => x.a.maxDurationMs),
            col((x) => Math.round(x.a.deadlineAt)),
            col((x) => x.a.maxAttempts),
            col((x) => x.a.parentId),
            col((x) => JSON.stringify(x.a.tags)),
            col((x) => x.state),
            col((x) => (x.cancelledTree ? 'ATP_ERR_CANCELLED' : null)),
            col((x) => (x.cancelledTree ? 'an ancestor was cancelled with its subtree' : '')),
            col((x) => x.cancelledTree),
            Math.round(now),
          ],
        );
        if (inserted.rowCount !== fresh.length) {
          // Another coordinator inserted some of these ids first: roll back and decide again.
          throw new RetrySubmit();
        }
        for (const f of fresh) {
          fx.changed.push({ tenant: f.a.tenant, id: f.a.id });
          if (f.state === STATE_CODE.PENDING) addPending(fx, f.a.tenant, f.a.kind);
        }
      }
      return out;
    }).catch((err: unknown) => {
      if (err instanceof RetrySubmit) return this.submit(batch, now);
      throw err;
    });
  }

  /**
   * One statement picks (SKIP LOCKED), updates the artifacts and inserts their leases in
   * data-modifying CTEs; with the NOTIFY in the same transaction, four round trips per grant batch.
   * Each lease id is derived from one fresh id of the coordinator's generator and the row's rank
   * (md5 of both: 16 opaque bytes, unique as long as that id is).
   */
  acquire(req: AcquireRequest): Promise<Grant[]> {
    if (req.max <= 0 || req.kinds.size === 0) return Promise.resolve([]);
    return this.#acquire(req);
  }

  #acquire(req: AcquireRequest): Promise<Grant[]> {
    return this.#tx((c, fx) => this.#acquireIn(c, fx, req));
  }

  async #acquireIn(c: pg.PoolClient, fx: Effects, req: AcquireRequest): Promise<Grant[]> {
    const now = Math.round(req.now);
    // Fenced by the session: only while this coordinator owns it, and the row stays locked (FOR
    // SHARE) until the grant commits, so that a reclaim or an adoption of the session waits for the
    // grant and then sees its leases (ATP_SPEC ATP-11.8-6).
    const picked = await prepared(
      c,
      'atp_acquire',
      `WITH owner AS (SELECT 1 FROM atp_sessions WHERE session_id = $7 AND coordinator_id = $9 FOR SHARE),
       cand AS (
         SELECT c.tenant, c.id, c.priority, c.seq FROM unnest($2::text[]) AS k(kind) CROSS JOIN LATERAL (
           SELECT tenant, id, priority, seq FROM atp_artifacts
            WHERE EXISTS (SELECT 1 FROM owner) AND tenant = $1 AND kind = k.kind AND state IN (1, 2)
              AND (deadline_at = 0 OR deadline_at > $4)
              AND ((quorum_n <= 1 AND leases_out = 0)
                OR (quorum_n > 1 AND leases_out + votes_count < quorum_n AND NOT ($5 = ANY(quorum_nodes))))
              AND ($8::bigint IS NULL
                OR octet_length(payload) + coalesce(octet_length(checkpoint), 0) + length(kind) + ${LEASE_OVERHEAD_BYTES} <= $8::bigint)
            ORDER BY priority DESC, seq
            LIMIT $3
            FOR UPDATE SKIP LOCKED) c
          ORDER BY c.priority DESC, c.seq
          LIMIT $3),
       picked AS (SELECT tenant, id, row_number() OVER (ORDER BY priority DESC, seq) AS rn FROM cand),
       upd AS (
         UPDATE atp_artifacts a SET state = 2, epoch = a.epoch + 1, leases_out = a.leases_out + 1,
                quorum_nodes = CASE WHEN a.quorum_n > 1 THEN array_append(a.quorum_nodes, $5) ELSE a.quorum_nodes END
           FROM picked p WHERE a.tenant = p.tenant AND a.id = p.id
         RETURNING a.tenant, a.id, a.epoch, a.kind, a.parent_id, a.digest, a.payload, a.checkpoint, a.last_partial_seq, a.deadline_at,
                   a.lease_ttl_ms, a.max_duration_ms, a.late_policy, a.priority, a.seq, md5($6 || ':' || p.rn::text) AS lease_id),
       ins AS (
         INSERT INTO atp_leases (lease_id, tenant, artifact_id, epoch, session_id, node_id, granted_at, ttl_ms, max_duration_ms)
         SELECT lease_id, tenant, id, epoch, $7, $5, $4, lease_ttl_ms, max_duration_ms FROM upd)
       SELECT * FROM upd`,
      [
        req.tenant,
        [...req.kinds],
        req.max,
        now,
        req.nodeId,
        req.newLeaseId(),
        req.sessionId,
        req.maxMessageBytes ?? null,
        this.coordinatorId,
      ],
    );
    const rows = (picked.rows as Row[]).sort((x, y) => n(y.priority) - n(x.priority) || n(x.seq) - n(y.seq));
    const grants: Grant[] = rows.map((r) => ({
      leaseId: r.lease_id as string,
      tenant: r.tenant as string,
      artifactId: r.id as string,
      epoch: n(r.epoch),
      sessionId: req.sessionId,
      nodeId: req.nodeId,
      grantedAt: now,
      ttlMs: n(r.lease_ttl_ms),
      maxDurationMs: n(r.max_duration_ms),
      kind: r.kind as string,
      parentId: (r.parent_id as string | null) ?? null,
      digest: r.digest as string,
      payload: bytes(r.payload),
      checkpoint: bytes(r.checkpoint),
      lastPartialSeq: n(r.last_partial_seq),
      deadlineAt: n(r.deadline_at),
      latePolicy: n(r.late_policy),
    }));
    for (const g of grants) fx.changed.push({ tenant: g.tenant, id: g.artifactId });
    return grants;
  }

  /** Lock the lease and its artifact; the guard of every lease transition (ATP_SPEC §5.7). */
  async #current(c: pg.PoolClient, ref: LeaseRef): Promise<{ lease: LeaseRecord; art: Row } | Stale> {
    const l = await c.query('SELECT * FROM atp_leases WHERE lease_id = $1 FOR UPDATE', [ref.leaseId]);
    const lr = l.rows[0] as Row | undefined;
    if (lr !== undefined && n(lr.epoch) === ref.epoch && lr.session_id === ref.sessionId) {
      return { lease: leaseOf(lr), art: (await lockArtifact(c, lr.tenant as string, lr.artifact_id as string))! };
    }
    if (lr !== undefined) return { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: lr.artifact_id as string };
    const e = await c.query('SELECT artifact_id, code FROM atp_ended_leases WHERE lease_id = $1', [ref.leaseId]);
    const er = e.rows[0] as Row | undefined;
    return {
      kind: 'stale',
      code: (er?.code as ErrorCode | undefined) ?? 'ATP_ERR_STALE_LEASE',
      artifactId: (er?.artifact_id as string | undefined) ?? null,
    };
  }

  async #endLeases(c: pg.PoolClient, leases: readonly LeaseRecord[], code: ErrorCode, now: number): Promise<void> {
    if (leases.length === 0) return;
    const ids = leases.map((l) => l.leaseId);
    this.#endedSincePrune += ids.length;
    await c.query('DELETE FROM atp_leases WHERE lease_id = ANY($1::text[])', [ids]);
    await c.query(
      `INSERT INTO atp_ended_leases (lease_id, tenant, artifact_id, epoch, code, session_id, ended_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[], $7::bigint[])
       ON CONFLICT (lease_id) DO UPDATE SET code = EXCLUDED.code`,
      [
        ids,
        leases.map((l) => l.tenant),
        leases.map((l) => l.artifactId),
        leases.map((l) => l.epoch),
        leases.map(() => code),
        leases.map((l) => l.sessionId),
        leases.map(() => Math.round(now)),
      ],
    );
  }

  /** End every lease of an artifact that became terminal; returns the revoke orders. */
  async #revokeAll(
    c: pg.PoolClient,
    fx: Effects,
    tenant: string,
    id: string,
    code: ErrorCode,
    reason: string,
    now: number,
  ): Promise<RevokeOrder[]> {
    const r = await c.query('SELECT * FROM atp_leases WHERE tenant = $1 AND artifact_id = $2', [tenant, id]);
    const leases = (r.rows as Row[]).map(leaseOf);
    await this.#endLeases(c, leases, code, now);
    const orders = leases.map((lease) => ({ lease, code, reason }));
    fx.revoke.push(...orders);
    return orders;
  }

  async #finish(
    c: pg.PoolClient,
    fx: Effects,
    tenant: string,
    id: string,
    state: StateName,
    code: ErrorCode | null,
    message: string,
    now: number,
    extra = '',
  ): Promise<Row> {
    const r = await c.query(
      `UPDATE atp_artifacts SET state = $3, code = $4, message = $5, leases_out = 0, payload = '', ended_at = $6 ${extra}
        WHERE tenant = $1 AND id = $2 RETURNING ${ARTIFACT_COLUMNS}`,
      [tenant, id, STATE_CODE[state], code, message.slice(0, 1000), now],
    );
    await c.query('DELETE FROM atp_votes WHERE tenant = $1 AND artifact_id = $2', [tenant, id]);
    fx.changed.push({ tenant, id });
    return r.rows[0] as Row;
  }

  async #accept(c: pg.PoolClient, fx: Effects, art: Row, result: Uint8Array, now: number, reason: string): Promise<Changed> {
    const tenant = art.tenant as string;
    const id = art.id as string;
    const revoke = await this.#revokeAll(c, fx, tenant, id, 'ATP_ERR_STALE_LEASE', reason, now);
    await c.query('UPDATE atp_artifacts SET result = $3, result_digest = $4 WHERE tenant = $1 AND id = $2', [
      tenant,
      id,
      Buffer.from(result),
      toHex(sha256(result)),
    ]);
    const row = await this.#finish(c, fx, tenant, id, 'COMPLETED', null, '', now);
    return { kind: 'ok', view: viewOf(row), result: resultOf(row), revoke };
  }

  /**
   * Results arriving together (one read of a worker's frames, several workers in one turn) are
   * accepted by one statement, with the NOTIFY in the same transaction: four round trips for the
   * batch instead of about twelve per result. Anything not plain — a stale lease, a quorum, the same lease twice — goes
   * through the one-at-a-time path below, after the batch.
   */
  complete(ref: LeaseRef, result: Uint8Array, now: number): Promise<CompleteOutcome> {
    return new Promise<CompleteOutcome>((resolve, reject) => {
      this.#completes.push({ ref, result, now, resolve, reject });
      if (this.#completes.length === 1) queueMicrotask(() => this.#completeBatch());
    });
  }
  #completes: PendingComplete[] = [];

  /**
   * Start the queued results' transaction now (from #tx, before any other transaction): a
   * transition called after them must not take the row locks first.
   */
  #startCompletes(): void {
    if (this.#completes.length > 0) this.#completeBatch();
  }

  #completeBatch(): void {
    const items = this.#completes;
    this.#completes = [];
    if (items.length === 0) return;
    // The same lease twice in a batch: the first goes in the batch, the others after it (stale).
    const batch: PendingComplete[] = [];
    const later: PendingComplete[] = [];
    const ids = new Set<string>();
    for (const it of items) {
      if (ids.has(it.ref.leaseId)) later.push(it);
      else {
        ids.add(it.ref.leaseId);
        batch.push(it);
      }
    }
    void this.#completePlain(batch).then(
      (done) => {
        for (const it of batch) {
          const out = done.get(it.ref.leaseId);
          if (out !== undefined) it.resolve(out);
          else later.push(it);
        }
        for (const it of later) this.#completeOne(it.ref, it.result, it.now).then(it.resolve, it.reject);
      },
      (err: unknown) => {
        for (const it of items) it.reject(err);
      },
    );
  }

  /**
   * Accept the results whose lease is current and whose artifact is not a quorum, in one
   * statement (the CTEs lock, end the leases and record the results), and tell the other
   * coordinators in the same transaction. Returns the outcome of each accepted one by lease id; the others are
   * left to the one-at-a-time path.
   */
  #completePlain(items: readonly PendingComplete[]): Promise<Map<string, CompleteOutcome>> {
    return this.#tx((c, fx) => this.#completePlainIn(c, fx, items));
  }

  async #completePlainIn(c: pg.PoolClient, fx: Effects, items: readonly PendingComplete[]): Promise<Map<string, CompleteOutcome>> {
    const now = Math.round(Math.max(...items.map((it) => it.now)));
    const r = await prepared(
      c,
      'atp_complete',
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::bytea[], $5::text[]) AS u(lease_id, epoch, session_id, result, digest)),
       cur AS (
         SELECT l.lease_id, l.tenant, l.artifact_id, i.result, i.digest
           FROM atp_leases l
           JOIN input i ON i.lease_id = l.lease_id AND i.epoch = l.epoch AND i.session_id = l.session_id
           JOIN atp_artifacts a ON a.tenant = l.tenant AND a.id = l.artifact_id AND a.quorum_n <= 1
          FOR UPDATE OF l, a),
       del AS (
         DELETE FROM atp_leases l USING cur c WHERE l.tenant = c.tenant AND l.artifact_id = c.artifact_id RETURNING l.*),
       ended AS (
         INSERT INTO atp_ended_leases (lease_id, tenant, artifact_id, epoch, code, session_id, ended_at)
         SELECT lease_id, tenant, artifact_id, epoch, 'ATP_ERR_STALE_LEASE', session_id, $6 FROM del
         ON CONFLICT (lease_id) DO UPDATE SET code = EXCLUDED.code),
       upd AS (
         UPDATE atp_artifacts a SET result = c.result, result_digest = c.digest, state = $7, code = NULL, message = '', leases_out = 0, payload = '',
           ended_at = $6 FROM cur c WHERE a.tenant = c.tenant AND a.id = c.artifact_id
         RETURNING ${ARTIFACT_COLUMNS_A}, c.lease_id AS done_lease_id)
       SELECT u.*, (SELECT json_agg(row_to_json(d)) FROM del d
                     WHERE d.tenant = u.tenant AND d.artifact_id = u.id AND d.lease_id <> u.done_lease_id) AS other_leases
         FROM upd u`,
      [
        items.map((it) => it.ref.leaseId),
        items.map((it) => it.ref.epoch),
        items.map((it) => it.ref.sessionId),
        items.map((it) => Buffer.from(it.result)),
        items.map((it) => toHex(sha256(it.result))),
        now,
        STATE_CODE.COMPLETED,
      ],
    );
    const out = new Map<string, CompleteOutcome>();
    this.#endedSincePrune += r.rows.length;
    for (const row of r.rows as Row[]) {
      // Not expected for an artifact that is not a quorum: other leases are ended and revoked.
      const revoke = ((row.other_leases as Row[] | null) ?? []).map((l) => ({
        lease: leaseOf(l),
        code: 'ATP_ERR_STALE_LEASE' as const,
        reason: 'completed by another lease',
      }));
      fx.changed.push({ tenant: row.tenant as string, id: row.id as string });
      fx.revoke.push(...revoke);
      out.set(row.done_lease_id as string, { kind: 'ok', view: viewOf(row), result: resultOf(row), revoke });
    }
    return out;
  }

  #completeOne(ref: LeaseRef, result: Uint8Array, now: number): Promise<CompleteOutcome> {
    return this.#tx(async (c, fx): Promise<CompleteOutcome> => {
      const cur = await this.#current(c, ref);
      if ('kind' in cur) {
        // ATP_SPEC §10.2: accept-if-unresolved takes a result from the session's expired lease.
        const e = await c.query('SELECT * FROM atp_ended_leases WHERE lease_id = $1', [ref.leaseId]);
        const er = e.rows[0] as Row | undefined;
        if (er !== undefined && er.code === 'ATP_ERR_LEASE_EXPIRED' && n(er.epoch) === ref.epoch && er.session_id === ref.sessionId) {
          const art = await lockArtifact(c, er.tenant as string, er.artifact_id as string);
          if (art !== undefined && n(art.late_policy) === 1 && !isTerminalCode(n(art.state)))
            return this.#accept(c, fx, art, result, now, 'superseded by a late result');
        }
        return cur;
      }
      const { lease, art } = cur;
      await this.#endLeases(c, [lease], 'ATP_ERR_STALE_LEASE', now);
      if (n(art.quorum_n) > 1) return this.#vote(c, fx, art, result, now);
      return this.#accept(c, fx, art, result, now, 'completed by another lease');
    });
  }

  async #vote(c: pg.PoolClient, fx: Effects, art: Row, result: Uint8Array, now: number): Promise<CompleteOutcome> {
    const tenant = art.tenant as string;
    const id = art.id as string;
    const d = toHex(sha256(result));
    await c.query(
      `INSERT INTO atp_votes (tenant, artifact_id, digest, count, result) VALUES ($1, $2, $3, 1, $4)
       ON CONFLICT (tenant, artifact_id, digest) DO UPDATE SET count = atp_votes.count + 1`,
      [tenant, id, d, Buffer.from(result)],
    );
    const votes = (await c.query('SELECT digest, count, result FROM atp_votes WHERE tenant = $1 AND artifact_id = $2', [tenant, id]))
      .rows as Row[];
    const k = n(art.quorum_k);
    const qn = n(art.quorum_n);
    const winner = votes.find((v) => n(v.count) >= k);
    if (winner !== undefined) return this.#accept(c, fx, art, bytes(winner.result), now, 'quorum reached');
    const answered = votes.reduce((s, v) => s + n(v.count), 0);
    if (answered >= qn) {
      const summary = votes.map((v) => `${(v.digest as string).slice(0, 16)}×${n(v.count)}`).join(', ');
      const revoke = await this.#revokeAll(c, fx, tenant, id, 'ATP_ERR_QUORUM_DISAGREEMENT', 'quorum failed', now);
      const row = await this.#finish(
        c,
        fx,
        tenant,
        id,
        'FAILED',
        'ATP_ERR_QUORUM_DISAGREEMENT',
        `no ${k} of ${qn} results agreed: ${summary}`,
        now,
      );
      return { kind: 'ok', view: viewOf(row), result: resultOf(row), revoke };
    }
    const r = await c.query(
      `UPDATE atp_artifacts SET leases_out = leases_out - 1, votes_count = $3, state = CASE WHEN leases_out - 1 = 0 THEN 1 ELSE state END
        WHERE tenant = $1 AND id = $2 RETURNING ${ARTIFACT_COLUMNS}`,
      [tenant, id, answered],
    );
    const row = r.rows[0] as Row;
    fx.changed.push({ tenant, id });
    addPending(fx, tenant, row.kind as string);
    return { kind: 'recorded', view: viewOf(row) };
  }

  fail(ref: LeaseRef, code: ErrorCode, retryable: boolean, message: string, now: number): Promise<Changed | Stale> {
    return this.#tx(async (c, fx): Promise<Changed | Stale> => {
      const cur = await this.#current(c, ref);
      if ('kind' in cur) return cur;
      const { lease, art } = cur;
      await this.#endLeases(c, [lease], 'ATP_ERR_STALE_LEASE', now);
      if (!retryable) {
        const revoke = await this.#revokeAll(c, fx, lease.tenant, lease.artifactId, code, 'the artifact failed', now);
        const row = await this.#finish(c, fx, lease.tenant, lease.artifactId, 'FAILED', code, message, now);
        return { kind: 'ok', view: viewOf(row), result: resultOf(row), revoke };
      }
      return this.#failedAttempt(c, fx, art, code, message, now);
    });
  }

  /** ATP_SPEC §6.2: a failed attempt; FAILED when attempts are exhausted, else pending again. */
  async #failedAttempt(c: pg.PoolClient, fx: Effects, art: Row, code: ErrorCode, message: string, now: number): Promise<Changed> {
    const tenant = art.tenant as string;
    const id = art.id as string;
    const failed = n(art.failed_attempts) + 1;
    if (failed >= n(art.max_attempts)) {
      const revoke = await this.#revokeAll(c, fx, tenant, id, 'ATP_ERR_ATTEMPTS_EXHAUSTED', 'attempts exhausted', now);
      const row = await this.#finish(
        c,
        fx,
        tenant,
        id,
        'FAILED',
        'ATP_ERR_ATTEMPTS_EXHAUSTED',
        `failed ${failed} of ${n(art.max_attempts)} attempts; last: ${code} ${message}`,
        now,
        `, failed_attempts = ${failed}`,
      );
      return { kind: 'ok', view: viewOf(row), result: resultOf(row), revoke };
    }
    const r = await c.query(
      `UPDATE atp_artifacts SET failed_attempts = $3, message = $4, leases_out = GREATEST(leases_out - 1, 0),
              state = CASE WHEN leases_out - 1 <= 0 THEN 1 ELSE state END, seq = nextval('atp_artifacts_seq_seq')
        WHERE tenant = $1 AND id = $2 RETURNING ${ARTIFACT_COLUMNS}`,
      [tenant, id, failed, `${code} ${message}`.slice(0, 1000)],
    );
    const row = r.rows[0] as Row;
    fx.changed.push({ tenant, id });
    addPending(fx, tenant, row.kind as string);
    return { kind: 'ok', view: viewOf(row), revoke: [] };
  }

  release(ref: LeaseRef, checkpoint: Uint8Array | undefined, now: number): Promise<Changed | Stale> {
    return this.#tx(async (c, fx): Promise<Changed | Stale> => {
      const cur = await this.#current(c, ref);
      if ('kind' in cur) return cur;
      const { lease } = cur;
      await this.#endLeases(c, [lease], 'ATP_ERR_STALE_LEASE', now);
      const r = await c.query(
        `UPDATE atp_artifacts SET leases_out = GREATEST(leases_out - 1, 0), state = CASE WHEN leases_out - 1 <= 0 THEN 1 ELSE state END,
                checkpoint = COALESCE($3, checkpoint), quorum_nodes = array_remove(quorum_nodes, $4)
          WHERE tenant = $1 AND id = $2 RETURNING ${ARTIFACT_COLUMNS}`,
        [lease.tenant, lease.artifactId, checkpoint === undefined ? null : Buffer.from(checkpoint), lease.nodeId],
      );
      const row = r.rows[0] as Row;
      fx.changed.push({ tenant: lease.tenant, id: lease.artifactId });
      addPending(fx, lease.tenant, row.kind as string);
      return { kind: 'ok', view: viewOf(row), revoke: [] };
    });
  }

  loseLeases(refs: readonly LeaseRef[], code: ErrorCode, now: number): Promise<LossOutcome[]> {
    if (refs.length === 0) return Promise.resolve([]);
    return this.#tx(async (c, fx) => {
      // A session that another coordinator has adopted is its to keep: a timer here, left from
      // before the worker moved, must not take its leases (ATP_SPEC ATP-11.8-6). The rows stay
      // locked until this commits, so that an adoption waits and then sees what was lost.
      const sessions = [...new Set(refs.map((r) => r.sessionId))];
      const theirs = new Set(
        (
          await c.query('SELECT session_id FROM atp_sessions WHERE session_id = ANY($1::text[]) AND coordinator_id <> $2 FOR SHARE', [
            sessions,
            this.coordinatorId,
          ])
        ).rows.map((r: Row) => r.session_id as string),
      );
      const out: LossOutcome[] = [];
      for (const ref of refs) {
        if (theirs.has(ref.sessionId)) continue;
        const cur = await this.#current(c, ref);
        if ('kind' in cur) continue;
        await this.#endLeases(c, [cur.lease], 'ATP_ERR_LEASE_EXPIRED', now);
        out.push({ lease: cur.lease, changed: await this.#failedAttempt(c, fx, cur.art, code, 'lease lost', now) });
      }
      return out;
    });
  }

  partial(ref: LeaseRef, seq: number, data: Uint8Array, _now: number): Promise<PartialOutcome> {
    return this.#tx(async (c, fx): Promise<PartialOutcome> => {
      const cur = await this.#current(c, ref);
      if ('kind' in cur) return cur;
      const last = n(cur.art.last_partial_seq);
      if (seq <= last) return { kind: 'duplicate' };
      if (seq !== last + 1) return { kind: 'gap', expected: last + 1 };
      const r = await c.query(
        `UPDATE atp_artifacts SET last_partial_seq = $3, last_partial = $4 WHERE tenant = $1 AND id = $2 RETURNING ${ARTIFACT_COLUMNS}`,
        [cur.lease.tenant, cur.lease.artifactId, seq, Buffer.from(data)],
      );
      fx.changed.push({ tenant: cur.lease.tenant, id: cur.lease.artifactId });
      return { kind: 'ok', view: viewOf(r.rows[0] as Row), seq };
    });
  }

  checkpoint(ref: LeaseRef, data: Uint8Array, _now: number): Promise<{ kind: 'ok' } | Stale> {
    return this.#tx(async (c): Promise<{ kind: 'ok' } | Stale> => {
      const cur = await this.#current(c, ref);
      if ('kind' in cur) return cur;
      await c.query('UPDATE atp_artifacts SET checkpoint = $3 WHERE tenant = $1 AND id = $2', [
        cur.lease.tenant,
        cur.lease.artifactId,
        Buffer.from(data),
      ]);
      return { kind: 'ok' };
    });
  }

  cancel(tenant: string, id: string, subtree: boolean, reason: string, now: number): Promise<CancelOutcome> {
    return this.#tx(async (c, fx) => {
      const out: CancelOutcome = { found: false, cancelled: [], alreadyFinished: 0, revoke: [], results: new Map() };
      const rows = subtree
        ? await c.query(
            `WITH RECURSIVE tree AS (
               SELECT tenant, id FROM atp_artifacts WHERE tenant = $1 AND id = $2
               UNION ALL SELECT a.tenant, a.id FROM atp_artifacts a JOIN tree t ON a.tenant = t.tenant AND a.parent_id = t.id)
             SELECT ${ARTIFACT_COLUMNS_A} FROM atp_artifacts a JOIN tree t ON a.tenant = t.tenant AND a.id = t.id ORDER BY a.seq FOR UPDATE OF a`,
            [tenant, id],
          )
        : await c.query(`SELECT ${ARTIFACT_COLUMNS} FROM atp_artifacts WHERE tenant = $1 AND id = $2 FOR UPDATE`, [tenant, id]);
      const all = rows.rows as Row[];
      if (all.length === 0) return out;
      out.found = true;
      if (subtree)
        await c.query('UPDATE atp_artifacts SET subtree_cancelled = true WHERE tenant = $1 AND id = ANY($2::text[])', [
          tenant,
          all.map((r) => r.id),
        ]);
      const live = all.filter((r) => !isTerminalCode(n(r.state)));
      out.alreadyFinished = all.length - live.length;
      if (live.length === 0) return out;
      const liveIds = live.map((r) => r.id as string);
      const leases = (
        (await c.query('SELECT * FROM atp_leases WHERE tenant = $1 AND artifact_id = ANY($2::text[])', [tenant, liveIds])).rows as Row[]
      ).map(leaseOf);
      await this.#endLeases(c, leases, 'ATP_ERR_CANCELLED', now);
      for (const lease of leases) out.revoke.push({ lease, code: 'ATP_ERR_CANCELLED', reason });
      fx.revoke.push(...out.revoke);
      const updated = await c.query(
        `UPDATE atp_artifacts SET state = 5, code = 'ATP_ERR_CANCELLED', message = $3, leases_out = 0, payload = '', ended_at = $4
          WHERE tenant = $1 AND id = ANY($2::text[]) RETURNING ${ARTIFACT_COLUMNS}`,
        [tenant, liveIds, reason.slice(0, 1000), now],
      );
      for (const r of updated.rows as Row[]) {
        out.cancelled.push(viewOf(r));
        out.results.set(r.id as string, resultOf(r));
        fx.changed.push({ tenant, id: r.id as string });
      }
      return out;
    });
  }

  expire(tenant: string, id: string, now: number): Promise<Changed | undefined> {
    return this.#tx(async (c, fx): Promise<Changed | undefined> => {
      const art = await lockArtifact(c, tenant, id);
      if (art === undefined || isTerminalCode(n(art.state)) || n(art.deadline_at) === 0 || now < n(art.deadline_at)) return undefined;
      const revoke = await this.#revokeAll(c, fx, tenant, id, 'ATP_ERR_EXPIRED', 'the artifact deadline passed', now);
      const row = await this.#finish(
        c,
        fx,
        tenant,
        id,
        'EXPIRED',
        'ATP_ERR_EXPIRED',
        'the deadline passed before the artifact completed',
        now,
      );
      return { kind: 'ok', view: viewOf(row), result: resultOf(row), revoke };
    });
  }

  async leaseStatus(ref: LeaseRef): Promise<{ kind: 'current'; lease: LeaseRecord } | Stale> {
    const c = await this.#pool.connect();
    try {
      const cur = await this.#current(c, ref);
      return 'kind' in cur ? cur : { kind: 'current', lease: cur.lease };
    } finally {
      c.release();
    }
  }

  // ---- reads -------------------------------------------------------------------------------

  async get(tenant: string, id: string): Promise<ArtifactView | undefined> {
    const r = await this.#pool.query(`SELECT ${ARTIFACT_COLUMNS} FROM atp_artifacts WHERE tenant = $1 AND id = $2`, [tenant, id]);
    const row = r.rows[0] as Row | undefined;
    return row === undefined ? undefined : viewOf(row);
  }

  async result(tenant: string, id: string): Promise<ArtifactResult | undefined> {
    const r = await this.#pool.query(`SELECT ${ARTIFACT_COLUMNS} FROM atp_artifacts WHERE tenant = $1 AND id = $2`, [tenant, id]);
    const row = r.rows[0] as Row | undefined;
    return row !== undefined && isTerminalCode(n(row.state)) ? resultOf(row) : undefined;
  }

  async ancestors(tenant: string, id: string): Promise<string[]> {
    const r = await this.#pool.query(
      `WITH RECURSIVE up AS (
         SELECT parent_id, 1 AS depth FROM atp_artifacts WHERE tenant = $1 AND id = $2
         UNION ALL SELECT a.parent_id, up.depth + 1 FROM atp_artifacts a JOIN up ON a.tenant = $1 AND a.id = up.parent_id WHERE up.depth < 10000)
       SELECT parent_id FROM up WHERE parent_id IS NOT NULL ORDER BY depth`,
      [tenant, id],
    );
    return (r.rows as Row[]).map((x) => x.parent_id as string);
  }

  async subtree(tenant: string, id: string): Promise<ArtifactView[]> {
    const r = await this.#pool.query(
      `WITH RECURSIVE tree AS (
         SELECT tenant, id FROM atp_artifacts WHERE tenant = $1 AND id = $2
         UNION ALL SELECT a.tenant, a.id FROM atp_artifacts a JOIN tree t ON a.tenant = t.tenant AND a.parent_id = t.id)
       SELECT ${ARTIFACT_COLUMNS_A} FROM atp_artifacts a JOIN tree t ON a.tenant = t.tenant AND a.id = t.id ORDER BY a.seq`,
      [tenant, id],
    );
    return (r.rows as Row[]).map(viewOf);
  }

  async byTag(tenant: string, tag: string): Promise<ArtifactView[]> {
    const r = await this.#pool.query(
      `SELECT ${ARTIFACT_COLUMNS} FROM atp_artifacts WHERE tenant = $1 AND tags @> ARRAY[$2]::text[] ORDER BY seq`,
      [tenant, tag],
    );
    return (r.rows as Row[]).map(viewOf);
  }

  /**
   * Leases held by this coordinator's sessions, and leases of sessions nobody persisted (recovery
   * after a restart of this coordinator). Leases of other live coordinators are theirs.
   */
  async heldLeases(): Promise<LeaseRecord[]> {
    const r = await this.#pool.query(
      'SELECT l.* FROM atp_leases l LEFT JOIN atp_sessions s ON s.session_id = l.session_id WHERE s.session_id IS NULL OR s.coordinator_id = $1',
      [this.coordinatorId],
    );
    return (r.rows as Row[]).map(leaseOf);
  }

  async pendingDeadlines(): Promise<Array<{ tenant: string; id: string; deadlineAt: number }>> {
    const r = await this.#pool.query('SELECT tenant, id, deadline_at FROM atp_artifacts WHERE deadline_at > 0 AND state IN (1, 2)');
    return (r.rows as Row[]).map((x) => ({ tenant: x.tenant as string, id: x.id as string, deadlineAt: n(x.deadline_at) }));
  }

  async counts(): Promise<Record<StateName, number>> {
    const out: Record<StateName, number> = { PENDING: 0, LEASED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0, EXPIRED: 0 };
    const r = await this.#pool.query('SELECT state, count(*) AS n FROM atp_artifacts GROUP BY state');
    for (const row of r.rows as Row[]) out[STATE_NAME[n(row.state)]!] += n(row.n);
    return out;
  }

  async saveSession(s: SessionRecord): Promise<void> {
    await this.#pool.query(
      `INSERT INTO atp_sessions (session_id, token_hash, node_id, tenant, roles, coordinator_id) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (session_id) DO UPDATE SET coordinator_id = $6, token_hash = $2`,
      [s.sessionId, s.tokenHash, s.nodeId, s.tenant, s.roles, this.coordinatorId],
    );
  }

  /** Sessions of this coordinator (a restart of the same coordinator id resumes them). */
  async loadSessions(): Promise<SessionRecord[]> {
    const r = await this.#pool.query('SELECT * FROM atp_sessions WHERE coordinator_id = $1', [this.coordinatorId]);
    return (r.rows as Row[]).map((x) => ({
      sessionId: x.session_id as string,
      tokenHash: x.token_hash as string,
      nodeId: x.node_id as string,
      tenant: x.tenant as string,
      roles: n(x.roles),
    }));
  }

  async dropSession(sessionId: string): Promise<void> {
    // Only while it is ours: a session that another coordinator adopted stays.
    await this.#pool.query('DELETE FROM atp_sessions WHERE session_id = $1 AND coordinator_id = $2', [sessionId, this.coordinatorId]);
  }

  /** A worker resumes here a session another coordinator held: move it and its leases to us. */
  async adoptSession(
    sessionId: string,
    tokenHash: string,
    _now: number,
  ): Promise<{ session: SessionRecord; leases: LeaseRecord[] } | undefined> {
    const r = await this.#pool.query('UPDATE atp_sessions SET coordinator_id = $2 WHERE session_id = $1 AND token_hash = $3 RETURNING *', [
      sessionId,
      this.coordinatorId,
      tokenHash,
    ]);
    const x = r.rows[0] as Row | undefined;
    if (x === undefined) return undefined;
    const leases = ((await this.#pool.query('SELECT * FROM atp_leases WHERE session_id = $1', [sessionId])).rows as Row[]).map(leaseOf);
    return {
      session: { sessionId, tokenHash: x.token_hash as string, nodeId: x.node_id as string, tenant: x.tenant as string, roles: n(x.roles) },
      leases,
    };
  }

  /**
   * Publish this coordinator's liveness (ATP_SPEC ATP-11.8-3). On its own connection (the
   * listener's), so that it does not queue behind the pool's transactions, nor behind a reclaim that
   * waits for a lock: a coordinator that is busy is not a coordinator that is dead.
   */
  async heartbeat(now: number): Promise<void> {
    const sql = 'UPDATE atp_coordinators SET heartbeat_at = $2 WHERE id = $1';
    const args = [this.coordinatorId, Math.round(now)];
    if (this.#listener === undefined) await this.#pool.query(sql, args);
    else await this.#listener.query(sql, args).catch(() => this.#pool.query(sql, args));
  }

  /**
   * Reclaim the sessions of coordinators silent for longer than twice the resume window plus one
   * second: their leases are lost (failed attempts) and re-issued, as after an abrupt leave
   * (ATP_SPEC §11.8). Leases left without a session row for as long are lost too, whatever left
   * them. `own` names the worker sessions this coordinator serves; those that it no longer owns in
   * the store (another coordinator took them while this one was silent) come back in `gone`, for
   * the coordinator to end (ATP_SPEC ATP-11.8-6).
   */
  async maintain(now: number, resumeWindowMs: number, own: readonly string[] = []): Promise<MaintainOutcome> {
    const silentSince = Math.round(now - resumeWindowMs * 2 - 1000);
    const dead = await this.#pool.query(
      `SELECT s.session_id FROM atp_sessions s LEFT JOIN atp_coordinators c ON c.id = s.coordinator_id
        WHERE c.id IS NULL OR c.heartbeat_at < $1`,
      [silentSince],
    );
    const lost: LossOutcome[] = [];
    for (const row of dead.rows as Row[]) {
      const sessionId = row.session_id as string;
      // Take the session over atomically: only one coordinator reclaims it. A grant under it holds
      // the row FOR SHARE, so this waits for the grant, and the SELECT below sees its leases.
      const taken = await this.#pool.query(
        `DELETE FROM atp_sessions s USING atp_sessions s2 LEFT JOIN atp_coordinators c ON c.id = s2.coordinator_id
          WHERE s.session_id = $1 AND s2.session_id = s.session_id AND (c.id IS NULL OR c.heartbeat_at < $2) RETURNING s.session_id`,
        [sessionId, silentSince],
      );
      if (taken.rowCount === 0) continue;
      const leases = ((await this.#pool.query('SELECT * FROM atp_leases WHERE session_id = $1', [sessionId])).rows as Row[]).map(leaseOf);
      lost.push(
        ...(await this.loseLeases(
          leases.map((l) => ({ leaseId: l.leaseId, epoch: l.epoch, sessionId })),
          'ATP_ERR_LEASE_EXPIRED',
          now,
        )),
      );
    }
    // Leases whose session row is gone and that are older than the reclaim delay: nobody holds
    // them any more (a session dropped while a grant was in flight, or reclaimed from under a
    // coordinator that was only slow). Without this they would stay LEASED for ever.
    const orphans = await this.#pool.query(
      `SELECT l.lease_id, l.epoch, l.session_id FROM atp_leases l
        WHERE l.granted_at < $1 AND NOT EXISTS (SELECT 1 FROM atp_sessions s WHERE s.session_id = l.session_id)`,
      [silentSince],
    );
    if (orphans.rows.length > 0)
      lost.push(
        ...(await this.loseLeases(
          (orphans.rows as Row[]).map((r) => ({ leaseId: r.lease_id as string, epoch: n(r.epoch), sessionId: r.session_id as string })),
          'ATP_ERR_LEASE_EXPIRED',
          now,
        )),
      );
    if (this.#endedSincePrune >= Math.max(1, Math.floor(this.#endedMemory / 10))) {
      this.#endedSincePrune = 0;
      await this.#pruneEnded();
    }
    let gone: string[] = [];
    if (own.length > 0) {
      const mine = await this.#pool.query(
        'SELECT session_id FROM atp_sessions WHERE session_id = ANY($1::text[]) AND coordinator_id = $2',
        [own, this.coordinatorId],
      );
      const kept = new Set((mine.rows as Row[]).map((r) => r.session_id as string));
      gone = own.filter((id) => !kept.has(id));
    }
    return { lost, gone };
  }

  /**
   * ATP_SPEC §3.11: delete terminal artifacts that ended at or before `endedBy` and have no child.
   * The candidates are locked first (SKIP LOCKED: another coordinator's sweep, or a SUBMIT that holds
   * one as a parent, FOR SHARE, passes it by); the delete then checks for children again in a
   * snapshot taken after the locks, so that a child committed meanwhile keeps its parent, and a
   * SUBMIT that waits for the lock finds no parent. A parent whose last child goes in this call goes
   * in a later one.
   */
  forget(endedBy: number, max: number): Promise<number> {
    return this.#tx(async (c) => {
      const due = await c.query(
        `SELECT tenant, id FROM atp_artifacts a
          WHERE state NOT IN (1, 2) AND GREATEST(ended_at, created_at) <= $1
            AND NOT EXISTS (SELECT 1 FROM atp_artifacts ch WHERE ch.tenant = a.tenant AND ch.parent_id = a.id)
          ORDER BY GREATEST(ended_at, created_at) LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [endedBy, max],
      );
      if (due.rows.length === 0) return 0;
      const tenants = (due.rows as Row[]).map((r) => r.tenant as string);
      const ids = (due.rows as Row[]).map((r) => r.id as string);
      const gone = await c.query(
        `DELETE FROM atp_artifacts a USING unnest($1::text[], $2::text[]) AS t(tenant, id)
          WHERE a.tenant = t.tenant AND a.id = t.id
            AND NOT EXISTS (SELECT 1 FROM atp_artifacts ch WHERE ch.tenant = a.tenant AND ch.parent_id = a.id)
          RETURNING a.tenant, a.id`,
        [tenants, ids],
      );
      if (gone.rows.length > 0)
        await c.query(
          'DELETE FROM atp_votes v USING unnest($1::text[], $2::text[]) AS t(tenant, id) WHERE v.tenant = t.tenant AND v.artifact_id = t.id',
          [(gone.rows as Row[]).map((r) => r.tenant as string), (gone.rows as Row[]).map((r) => r.id as string)],
        );
      return gone.rows.length;
    });
  }

  /**
   * Forget the ended leases beyond the newest `endedMemory` (ATP_SPEC ATP-5.6-4: a bounded record;
   * a frame about a forgotten one gets ATP_ERR_STALE_LEASE). At most 100,000 rows a call, so that
   * a table grown by an older build is trimmed over a few upkeeps rather than in one long delete.
   */
  async #pruneEnded(): Promise<void> {
    await this.#pool.query(
      `DELETE FROM atp_ended_leases WHERE lease_id IN (
         SELECT lease_id FROM atp_ended_leases ORDER BY ended_at DESC, lease_id DESC OFFSET $1 LIMIT 100000)`,
      [this.#endedMemory],
    );
  }
}

class RetrySubmit extends Error {}

function addPending(fx: Effects, tenant: string, kind: string): void {
  let s = fx.pending.get(tenant);
  if (s === undefined) fx.pending.set(tenant, (s = new Set()));
  s.add(kind);
}
