/**
 * The in-memory store: every transition of the Store contract decided on in-process structures.
 * It is the explicit non-durable choice, and the state core of the SQLite store, which journals
 * what this decides (group commit) and loads it back after a crash.
 */
import type { ErrorCode } from '../errors.js';
import { ownedBytes } from '../internal/bytes.js';
import { sha256, toHex } from '../internal/ids.js';
import { PendingQueue } from './pending-queue.js';
import type {
  AcquireRequest,
  ArtifactResult,
  ArtifactView,
  CancelOutcome,
  Changed,
  CompleteOutcome,
  Grant,
  LeaseRecord,
  LeaseRef,
  LossOutcome,
  NewArtifact,
  PartialOutcome,
  RevokeOrder,
  SessionRecord,
  Stale,
  StateName,
  Store,
  SubmitOutcome,
} from './store.js';
import { leaseFits } from './store.js';

const EMPTY = new Uint8Array(0);
/** How many ended leases are remembered for specific stale reasons and late results, by default. */
const ENDED_MEMORY = 200_000;

/** The fields most artifacts never set: kept out of the record until one gets a non-default value. */
interface ColdFields {
  latePolicy: number;
  quorumK: number;
  quorumN: number;
  maxDurationMs: number;
  deadlineAt: number;
  parentId: string | null;
  tags: readonly string[];
  failedAttempts: number;
  code: ErrorCode | null;
  message: string;
  lastPartialSeq: number;
  lastPartial: Uint8Array | null;
  checkpoint: Uint8Array | null;
  /** Ids of the children the store remembers (ATP_SPEC §3.11: a forgotten child leaves the set). */
  children: Set<string> | null;
  subtreeCancelled: boolean;
  /** Terminal, its retention over, and waiting for its children to be forgotten first (ATP_SPEC §3.11). */
  forgetDue: boolean;
  /** Quorum: result digest -> votes and bytes. */
  votes: Map<string, { count: number; result: Uint8Array }> | null;
  /** Quorum: nodes that have held a lease on it. */
  quorumNodes: string[] | null;
}

const NO_TAGS: readonly string[] = Object.freeze([]);

const COLD_DEFAULTS: Readonly<ColdFields> = Object.freeze({
  latePolicy: 0,
  quorumK: 0,
  quorumN: 0,
  maxDurationMs: 0,
  deadlineAt: 0,
  parentId: null,
  tags: NO_TAGS,
  failedAttempts: 0,
  code: null,
  message: '',
  lastPartialSeq: 0,
  lastPartial: null,
  checkpoint: null,
  children: null,
  subtreeCancelled: false,
  forgetDue: false,
  votes: null,
  quorumNodes: null,
});

/**
 * One artifact as held in memory. Exported for the stores built on this one.
 *
 * Memory per pending artifact is a goal (BENCHMARKS.md, scenario 7): the fields every artifact uses
 * are own properties; the others (ColdFields) are accessors on the prototype that read shared
 * defaults until one of them is first set, which allocates the record's `cold` part.
 */
export class ArtifactRecord implements NewArtifact {
  tenant: string;
  id: string;
  digest: string;
  kind: string;
  payload: Uint8Array;
  priority: number;
  leaseTtlMs: number;
  maxAttempts: number;
  state: StateName = 'PENDING';
  epoch = 0;
  leases: LeaseRecord[] | null = null;
  result: Uint8Array | null = null;
  resultDigest: string | null = null;
  createdAt: number;
  /** Order of acceptance, 1, 2, 3, ...: the tie-break within a priority, and a durable store's row number. */
  seq = 0;
  cold: ColdFields | null = null;

  declare latePolicy: number;
  declare quorumK: number;
  declare quorumN: number;
  declare maxDurationMs: number;
  declare deadlineAt: number;
  declare parentId: string | null;
  declare tags: readonly string[];
  declare failedAttempts: number;
  declare code: ErrorCode | null;
  declare message: string;
  declare lastPartialSeq: number;
  declare lastPartial: Uint8Array | null;
  declare checkpoint: Uint8Array | null;
  declare children: Set<string> | null;
  declare subtreeCancelled: boolean;
  declare forgetDue: boolean;
  declare votes: Map<string, { count: number; result: Uint8Array }> | null;
  declare quorumNodes: string[] | null;

  constructor(a: NewArtifact, createdAt: number) {
    this.tenant = a.tenant;
    this.id = a.id;
    this.digest = a.digest;
    this.kind = a.kind;
    this.payload = a.payload;
    this.priority = a.priority;
    this.leaseTtlMs = a.leaseTtlMs;
    this.maxAttempts = a.maxAttempts;
    this.createdAt = createdAt;
    // Each setter below keeps `cold` unallocated when the value is the default.
    this.latePolicy = a.latePolicy;
    this.quorumK = a.quorumK;
    this.quorumN = a.quorumN;
    this.maxDurationMs = a.maxDurationMs;
    this.deadlineAt = a.deadlineAt;
    this.parentId = a.parentId;
    if (a.tags.length > 0) this.tags = a.tags;
  }
}

/** The record's cold part, allocated on the first non-default value (a class: one fixed shape). */
class ColdPart implements ColdFields {
  latePolicy = COLD_DEFAULTS.latePolicy;
  quorumK = COLD_DEFAULTS.quorumK;
  quorumN = COLD_DEFAULTS.quorumN;
  maxDurationMs = COLD_DEFAULTS.maxDurationMs;
  deadlineAt = COLD_DEFAULTS.deadlineAt;
  parentId = COLD_DEFAULTS.parentId;
  tags = COLD_DEFAULTS.tags;
  failedAttempts = COLD_DEFAULTS.failedAttempts;
  code = COLD_DEFAULTS.code;
  message = COLD_DEFAULTS.message;
  lastPartialSeq = COLD_DEFAULTS.lastPartialSeq;
  lastPartial = COLD_DEFAULTS.lastPartial;
  checkpoint = COLD_DEFAULTS.checkpoint;
  children = COLD_DEFAULTS.children;
  subtreeCancelled = COLD_DEFAULTS.subtreeCancelled;
  forgetDue = COLD_DEFAULTS.forgetDue;
  votes = COLD_DEFAULTS.votes;
  quorumNodes = COLD_DEFAULTS.quorumNodes;
}

function coldPart(rec: ArtifactRecord): ColdFields {
  return (rec.cold ??= new ColdPart());
}

/*
 * One getter and one setter per cold field, each its own function with a named property access: a
 * loop making them from one function would share one megamorphic keyed access among all fields.
 */
Object.defineProperties(ArtifactRecord.prototype, {
  latePolicy: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).latePolicy;
    },
    set(this: ArtifactRecord, v: ColdFields['latePolicy']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.latePolicy) coldPart(this).latePolicy = v;
    },
  },
  quorumK: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).quorumK;
    },
    set(this: ArtifactRecord, v: ColdFields['quorumK']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.quorumK) coldPart(this).quorumK = v;
    },
  },
  quorumN: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).quorumN;
    },
    set(this: ArtifactRecord, v: ColdFields['quorumN']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.quorumN) coldPart(this).quorumN = v;
    },
  },
  maxDurationMs: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).maxDurationMs;
    },
    set(this: ArtifactRecord, v: ColdFields['maxDurationMs']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.maxDurationMs) coldPart(this).maxDurationMs = v;
    },
  },
  deadlineAt: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).deadlineAt;
    },
    set(this: ArtifactRecord, v: ColdFields['deadlineAt']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.deadlineAt) coldPart(this).deadlineAt = v;
    },
  },
  parentId: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).parentId;
    },
    set(this: ArtifactRecord, v: ColdFields['parentId']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.parentId) coldPart(this).parentId = v;
    },
  },
  tags: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).tags;
    },
    set(this: ArtifactRecord, v: ColdFields['tags']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.tags) coldPart(this).tags = v;
    },
  },
  failedAttempts: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).failedAttempts;
    },
    set(this: ArtifactRecord, v: ColdFields['failedAttempts']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.failedAttempts) coldPart(this).failedAttempts = v;
    },
  },
  code: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).code;
    },
    set(this: ArtifactRecord, v: ColdFields['code']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.code) coldPart(this).code = v;
    },
  },
  message: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).message;
    },
    set(this: ArtifactRecord, v: ColdFields['message']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.message) coldPart(this).message = v;
    },
  },
  lastPartialSeq: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).lastPartialSeq;
    },
    set(this: ArtifactRecord, v: ColdFields['lastPartialSeq']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.lastPartialSeq) coldPart(this).lastPartialSeq = v;
    },
  },
  lastPartial: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).lastPartial;
    },
    set(this: ArtifactRecord, v: ColdFields['lastPartial']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.lastPartial) coldPart(this).lastPartial = v;
    },
  },
  checkpoint: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).checkpoint;
    },
    set(this: ArtifactRecord, v: ColdFields['checkpoint']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.checkpoint) coldPart(this).checkpoint = v;
    },
  },
  children: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).children;
    },
    set(this: ArtifactRecord, v: ColdFields['children']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.children) coldPart(this).children = v;
    },
  },
  subtreeCancelled: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).subtreeCancelled;
    },
    set(this: ArtifactRecord, v: ColdFields['subtreeCancelled']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.subtreeCancelled) coldPart(this).subtreeCancelled = v;
    },
  },
  forgetDue: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).forgetDue;
    },
    set(this: ArtifactRecord, v: ColdFields['forgetDue']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.forgetDue) coldPart(this).forgetDue = v;
    },
  },
  votes: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).votes;
    },
    set(this: ArtifactRecord, v: ColdFields['votes']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.votes) coldPart(this).votes = v;
    },
  },
  quorumNodes: {
    get(this: ArtifactRecord) {
      return (this.cold ?? COLD_DEFAULTS).quorumNodes;
    },
    set(this: ArtifactRecord, v: ColdFields['quorumNodes']) {
      if (this.cold !== null || v !== COLD_DEFAULTS.quorumNodes) coldPart(this).quorumNodes = v;
    },
  },
});

/**
 * A lease by id: held, or ended and still remembered (for the specific stale reason and for a late
 * result, ATP_SPEC §10.2, which only the session that held it may deliver). An ended lease stays in
 * the same map, as an EndedEntry, until ENDED_MEMORY later ends push it out: no second map to grow
 * and shrink. An ended entry does not hold the artifact's record, so that the memory of ended leases
 * does not keep forgotten artifacts alive (ATP_SPEC §3.11); `seq` tells its artifact from a later one
 * of the same id.
 */
interface HeldEntry {
  readonly lease: LeaseRecord;
  /** The artifact. */
  readonly rec: ArtifactRecord;
  readonly seq: number;
  readonly ended: null;
  readonly artifactId: string;
  readonly tenant: string;
  readonly epoch: number;
  readonly sessionId: string;
}

/**
 * An ended lease, as remembered: the same object, which lets go of its lease record (nine fields,
 * one a double with a box of its own) and of the artifact's record, and keeps what a later frame
 * about it needs: the specific stale reason, and who may deliver a late result. A third less
 * memory for each of the up to ENDED_MEMORY remembered leases, and nothing allocated when it ends.
 */
interface EndedEntry {
  readonly lease: null;
  readonly rec: null;
  readonly seq: number;
  readonly ended: ErrorCode;
  readonly artifactId: string;
  readonly tenant: string;
  readonly epoch: number;
  readonly sessionId: string;
}

type LeaseEntry = HeldEntry | EndedEntry;

/** A held entry as it is ended (the one place that changes an entry). */
type Ending = { -readonly [K in keyof EndedEntry]: EndedEntry[K] | HeldEntry[K] };

function heldEntry(lease: LeaseRecord, rec: ArtifactRecord): HeldEntry {
  return {
    lease,
    rec,
    seq: rec.seq,
    ended: null,
    artifactId: lease.artifactId,
    tenant: lease.tenant,
    epoch: lease.epoch,
    sessionId: lease.sessionId,
  };
}

const TERMINAL: ReadonlySet<StateName> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED']);

/** True for a terminal state name. */
export function isTerminal(state: StateName): boolean {
  return TERMINAL.has(state);
}

function keyOf(tenant: string, id: string): string {
  return tenant === '' ? id : `${tenant}/${id}`;
}

/** The in-memory store. */
export class MemoryStore implements Store {
  readonly name: string = 'memory';
  readonly decidesInProcess: boolean = true;
  protected readonly artifacts = new Map<string, ArtifactRecord>();
  readonly #queues = new Map<string, PendingQueue<ArtifactRecord>>();
  readonly #leases = new Map<string, LeaseEntry>();
  /** Ids of ended leases, oldest first from #endedNext once full (a ring of #endedMemory). */
  readonly #endedRing: string[] = [];
  #endedNext = 0;
  readonly #endedMemory: number;

  /** `endedMemory`: how many ended leases are remembered (default 200,000). */
  constructor(options: { endedMemory?: number } = {}) {
    this.#endedMemory = Math.max(1, options.endedMemory ?? ENDED_MEMORY);
  }
  readonly #tags = new Map<string, Set<string>>();
  protected readonly sessions = new Map<string, SessionRecord>();
  readonly #counts: Record<StateName, number> = { PENDING: 0, LEASED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0, EXPIRED: 0 };
  /** Sequence number of the artifact accepted last. */
  #lastSeq = 0;
  /**
   * Terminal records in the order they ended, and when (ATP_SPEC §3.11), from #endedHead on: what
   * forget() looks at. The times are not a field of the record: a clock reading is a double, which
   * V8 would keep in a box of its own in every record (16 B more per pending artifact, measured), and
   * a field that starts as 0 would change every record's shape when the first one ends.
   */
  #endedOrder: Array<ArtifactRecord | undefined> = [];
  #endedTimes: number[] = [];
  #endedHead = 0;

  open(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Called when a record becomes terminal; a durable store keeps the time for the record's row. */
  protected onEnded(_rec: ArtifactRecord, _now: number): void {}

  /** Called with the records forget() let go of; durable stores delete them. Resolves when durable. */
  protected commitForgotten(recs: readonly ArtifactRecord[]): Promise<number> {
    return Promise.resolve(recs.length);
  }

  /** Called after every change of a record; durable stores journal it. Resolves when durable. */
  protected commit<T>(value: T, _changed: readonly ArtifactRecord[]): Promise<T> {
    return Promise.resolve(value);
  }

  // ---- transitions -------------------------------------------------------------------------

  submit(batch: readonly NewArtifact[], now: number): Promise<SubmitOutcome[]> {
    const out: SubmitOutcome[] = [];
    const changed: ArtifactRecord[] = [];
    for (const a of batch) {
      const key = keyOf(a.tenant, a.id);
      const existing = this.artifacts.get(key);
      if (existing !== undefined) {
        out.push(
          existing.digest === a.digest
            ? { kind: 'accepted', view: viewOf(existing), duplicate: true }
            : { kind: 'conflict', existingDigest: existing.digest },
        );
        continue;
      }
      let parent: ArtifactRecord | undefined;
      if (a.parentId !== null) {
        parent = this.artifacts.get(keyOf(a.tenant, a.parentId));
        if (parent === undefined) {
          out.push({ kind: 'parent-not-found' });
          continue;
        }
      }
      const rec = this.insert(a, now);
      if (parent !== undefined) {
        (parent.children ??= new Set()).add(a.id);
        // ATP_SPEC §8.3: a descendant of a cancelled subtree is born cancelled.
        if (parent.subtreeCancelled) {
          rec.subtreeCancelled = true;
          this.#setState(rec, 'CANCELLED');
          rec.code = 'ATP_ERR_CANCELLED';
          rec.message = 'an ancestor was cancelled with its subtree';
          this.#ended(rec, now);
        }
      }
      if (rec.state === 'PENDING') this.#enqueue(rec, false);
      changed.push(rec);
      out.push({ kind: 'accepted', view: viewOf(rec), duplicate: false });
    }
    return this.commit(out, changed);
  }

  /** Create a record (also used when loading a durable store). */
  protected insert(a: NewArtifact, now: number): ArtifactRecord {
    const rec = new ArtifactRecord(a, now);
    rec.seq = ++this.#lastSeq;
    this.artifacts.set(keyOf(a.tenant, a.id), rec);
    this.#counts.PENDING++;
    for (const t of a.tags) {
      const k = `${a.tenant}\0${t}`;
      let s = this.#tags.get(k);
      if (s === undefined) this.#tags.set(k, (s = new Set()));
      s.add(a.id);
    }
    return rec;
  }

  acquire(req: AcquireRequest): Promise<Grant[]> {
    const grants: Grant[] = [];
    const changed: ArtifactRecord[] = [];
    const queues: PendingQueue<ArtifactRecord>[] = [];
    for (const k of req.kinds) {
      const q = this.#queues.get(`${req.tenant}\0${k}`);
      if (q !== undefined && q.size > 0) queues.push(q);
    }
    const skipped: ArtifactRecord[] = [];
    while (grants.length < req.max && queues.length > 0) {
      let best: PendingQueue<ArtifactRecord> | undefined;
      for (const q of queues) if (q.size > 0 && (best === undefined || before(q, best))) best = q;
      if (best === undefined) break;
      const rec = best.pop()!;
      if (!this.#leasable(rec, req.now)) continue;
      if (
        (rec.quorumN > 1 && rec.quorumNodes?.includes(req.nodeId)) ||
        !leaseFits(rec.payload.length, rec.checkpoint?.length ?? 0, rec.kind, req.maxMessageBytes)
      ) {
        // Not for this worker (a quorum node already, or a LEASE larger than it accepts): it stays queued.
        skipped.push(rec);
        continue;
      }
      grants.push(this.#grant(rec, req));
      changed.push(rec);
      // Quorum: keep it queued until n leases are out (ATP_SPEC §10.3).
      if (this.#leasesWanted(rec) > 0) best.add(rec.priority, rec, true);
    }
    for (const rec of skipped) this.#enqueue(rec, true);
    return this.commit(grants, changed);
  }

  #leasable(rec: ArtifactRecord, now: number): boolean {
    if (isTerminal(rec.state)) return false;
    if (rec.deadlineAt > 0 && now >= rec.deadlineAt) return false; // the deadline timer expires it
    return this.#leasesWanted(rec) > 0;
  }

  #leasesWanted(rec: ArtifactRecord): number {
    if (isTerminal(rec.state)) return 0;
    const held = rec.leases?.length ?? 0;
    if (rec.quorumN <= 1) return held === 0 ? 1 : 0;
    let votes = 0;
    if (rec.votes !== null) for (const v of rec.votes.values()) votes += v.count;
    return Math.max(0, rec.quorumN - votes - held);
  }

  #grant(rec: ArtifactRecord, req: AcquireRequest): Grant {
    const lease: LeaseRecord = {
      leaseId: req.newLeaseId(),
      tenant: rec.tenant,
      artifactId: rec.id,
      epoch: ++rec.epoch,
      sessionId: req.sessionId,
      nodeId: req.nodeId,
      grantedAt: req.now,
      ttlMs: rec.leaseTtlMs,
      maxDurationMs: rec.maxDurationMs,
    };
    this.attachLease(rec, lease);
    if (rec.quorumN > 1) (rec.quorumNodes ??= []).push(req.nodeId);
    return {
      leaseId: lease.leaseId,
      tenant: lease.tenant,
      artifactId: lease.artifactId,
      epoch: lease.epoch,
      sessionId: lease.sessionId,
      nodeId: lease.nodeId,
      grantedAt: lease.grantedAt,
      ttlMs: lease.ttlMs,
      maxDurationMs: lease.maxDurationMs,
      kind: rec.kind,
      parentId: rec.parentId,
      digest: rec.digest,
      payload: rec.payload,
      checkpoint: rec.checkpoint ?? EMPTY,
      lastPartialSeq: rec.lastPartialSeq,
      deadlineAt: rec.deadlineAt,
      latePolicy: rec.latePolicy,
    };
  }

  /** Record a lease on an artifact (also used when loading a durable store). */
  protected attachLease(rec: ArtifactRecord, lease: LeaseRecord): void {
    (rec.leases ??= []).push(lease);
    this.#leases.set(lease.leaseId, heldEntry(lease, rec));
    if (rec.state !== 'LEASED') this.#setState(rec, 'LEASED');
  }

  #current(ref: LeaseRef): HeldEntry | Stale {
    const e = this.#leases.get(ref.leaseId);
    if (e === undefined) return { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: null };
    if (e.ended !== null) return { kind: 'stale', code: e.ended, artifactId: e.artifactId };
    if (e.lease.epoch === ref.epoch && e.lease.sessionId === ref.sessionId) return e;
    return { kind: 'stale', code: 'ATP_ERR_STALE_LEASE', artifactId: e.lease.artifactId };
  }

  #endLease(rec: ArtifactRecord, lease: LeaseRecord, code: ErrorCode): void {
    if (rec.leases !== null) {
      const i = rec.leases.indexOf(lease);
      if (i >= 0) rec.leases.splice(i, 1);
      if (rec.leases.length === 0) rec.leases = null;
    }
    const e = this.#leases.get(lease.leaseId);
    if (e === undefined || e.ended !== null || e.lease !== lease) return;
    const ending: Ending = e;
    ending.lease = null;
    ending.rec = null;
    ending.ended = code;
    // Remember the last #endedMemory ended leases: the oldest one is forgotten as a new one ends.
    const ring = this.#endedRing;
    if (ring.length < this.#endedMemory) ring.push(lease.leaseId);
    else {
      const oldest = ring[this.#endedNext]!;
      const old = this.#leases.get(oldest);
      if (old !== undefined && old.ended !== null) this.#leases.delete(oldest);
      ring[this.#endedNext] = lease.leaseId;
      this.#endedNext = (this.#endedNext + 1) % this.#endedMemory;
    }
  }

  /** End every lease of a record that became terminal; returns the revoke orders. */
  #revokeAll(rec: ArtifactRecord, code: ErrorCode, reason: string): RevokeOrder[] {
    const out: RevokeOrder[] = [];
    for (const lease of rec.leases ?? []) out.push({ lease, code, reason });
    for (const o of out) this.#endLease(rec, o.lease, code);
    return out;
  }

  #finish(rec: ArtifactRecord, state: StateName, code: ErrorCode | null, message: string, now: number): ArtifactResult {
    this.#setState(rec, state);
    rec.code = code;
    rec.message = message;
    rec.votes = null;
    this.#ended(rec, now);
    return resultOf(rec);
  }

  /** A record became terminal at `now`: its retention starts (ATP_SPEC §3.11). */
  #ended(rec: ArtifactRecord, now: number): void {
    this.#endedOrder.push(rec);
    this.#endedTimes.push(now);
    this.onEnded(rec, now);
  }

  complete(ref: LeaseRef, result: Uint8Array, now: number): Promise<CompleteOutcome> {
    const cur = this.#current(ref);
    if ('kind' in cur) {
      // ATP_SPEC §10.2: accept-if-unresolved takes a result from an expired lease.
      const e = this.#leases.get(ref.leaseId);
      const ended = e === undefined || e.ended === null ? undefined : e;
      const rec = ended === undefined ? undefined : this.artifacts.get(keyOf(ended.tenant, ended.artifactId));
      if (
        rec !== undefined &&
        ended !== undefined &&
        rec.seq === ended.seq &&
        rec.latePolicy === 1 &&
        ended.ended === 'ATP_ERR_LEASE_EXPIRED' &&
        ended.epoch === ref.epoch &&
        ended.sessionId === ref.sessionId &&
        !isTerminal(rec.state)
      ) {
        return this.commit(this.#accept(rec, result, now, 'superseded by a late result'), [rec]);
      }
      return this.commit(cur, []);
    }
    const { lease, rec } = cur;
    if (rec.quorumN > 1) return this.commit(this.#vote(rec, lease, result, now), [rec]);
    this.#endLease(rec, lease, 'ATP_ERR_STALE_LEASE');
    return this.commit(this.#accept(rec, result, now, 'completed by another lease'), [rec]);
  }

  #accept(rec: ArtifactRecord, result: Uint8Array, now: number, revokeReason: string): Changed {
    rec.result = copy(result);
    rec.resultDigest = digestHex(result);
    const revoke = this.#revokeAll(rec, 'ATP_ERR_STALE_LEASE', revokeReason);
    const r = this.#finish(rec, 'COMPLETED', null, '', now);
    return { kind: 'ok', view: viewOf(rec), result: r, revoke };
  }

  #vote(rec: ArtifactRecord, lease: LeaseRecord, result: Uint8Array, now: number): CompleteOutcome {
    this.#endLease(rec, lease, 'ATP_ERR_STALE_LEASE');
    const d = digestHex(result);
    const votes = (rec.votes ??= new Map<string, { count: number; result: Uint8Array }>());
    const v = votes.get(d);
    if (v === undefined) votes.set(d, { count: 1, result: copy(result) });
    else v.count++;
    const winner = [...votes.values()].find((x) => x.count >= rec.quorumK);
    if (winner !== undefined) return this.#accept(rec, winner.result, now, 'quorum reached');
    let answered = 0;
    for (const x of votes.values()) answered += x.count;
    if (answered >= rec.quorumN) {
      const summary = [...votes.entries()].map(([dg, x]) => `${dg.slice(0, 16)}×${x.count}`).join(', ');
      const revoke = this.#revokeAll(rec, 'ATP_ERR_QUORUM_DISAGREEMENT', 'quorum failed');
      const r = this.#finish(
        rec,
        'FAILED',
        'ATP_ERR_QUORUM_DISAGREEMENT',
        `no ${rec.quorumK} of ${rec.quorumN} results agreed: ${summary}`,
        now,
      );
      return { kind: 'ok', view: viewOf(rec), result: r, revoke };
    }
    if (rec.leases === null && this.#leasesWanted(rec) > 0) {
      this.#setState(rec, 'PENDING');
      this.#enqueue(rec, true);
    }
    return { kind: 'recorded', view: viewOf(rec) };
  }

  fail(ref: LeaseRef, code: ErrorCode, retryable: boolean, message: string, now: number): Promise<Changed | Stale> {
    const cur = this.#current(ref);
    if ('kind' in cur) return this.commit(cur, []);
    const { lease, rec } = cur;
    this.#endLease(rec, lease, 'ATP_ERR_STALE_LEASE');
    if (!retryable) {
      const revoke = this.#revokeAll(rec, code, 'the artifact failed');
      const r = this.#finish(rec, 'FAILED', code, message, now);
      return this.commit({ kind: 'ok', view: viewOf(rec), result: r, revoke }, [rec]);
    }
    return this.commit(this.#failedAttempt(rec, code, message, now), [rec]);
  }

  /** ATP_SPEC §6.2: count a failed attempt; FAILED when attempts are exhausted, else pending again. */
  #failedAttempt(rec: ArtifactRecord, code: ErrorCode, message: string, now: number): Changed {
    rec.failedAttempts++;
    if (rec.failedAttempts >= rec.maxAttempts) {
      const revoke = this.#revokeAll(rec, 'ATP_ERR_ATTEMPTS_EXHAUSTED', 'attempts exhausted');
      const r = this.#finish(
        rec,
        'FAILED',
        'ATP_ERR_ATTEMPTS_EXHAUSTED',
        `failed ${rec.failedAttempts} of ${rec.maxAttempts} attempts; last: ${code} ${message}`.slice(0, 1000),
        now,
      );
      return { kind: 'ok', view: viewOf(rec), result: r, revoke };
    }
    rec.message = `${code} ${message}`.slice(0, 1000);
    this.#requeue(rec, false);
    return { kind: 'ok', view: viewOf(rec), revoke: [] };
  }

  #requeue(rec: ArtifactRecord, front: boolean): void {
    if (rec.leases === null) this.#setState(rec, 'PENDING');
    if (this.#leasesWanted(rec) > 0) this.#enqueue(rec, front);
  }

  release(ref: LeaseRef, checkpoint: Uint8Array | undefined, _now: number): Promise<Changed | Stale> {
    const cur = this.#current(ref);
    if ('kind' in cur) return this.commit(cur, []);
    const { lease, rec } = cur;
    if (checkpoint !== undefined) rec.checkpoint = copy(checkpoint);
    this.#endLease(rec, lease, 'ATP_ERR_STALE_LEASE');
    if (rec.quorumNodes !== null) rec.quorumNodes = rec.quorumNodes.filter((n) => n !== lease.nodeId);
    this.#requeue(rec, true);
    return this.commit({ kind: 'ok', view: viewOf(rec), revoke: [] }, [rec]);
  }

  loseLeases(refs: readonly LeaseRef[], code: ErrorCode, now: number): Promise<LossOutcome[]> {
    const out: LossOutcome[] = [];
    const changed: ArtifactRecord[] = [];
    for (const ref of refs) {
      const cur = this.#current(ref);
      if ('kind' in cur) continue;
      const { lease, rec } = cur;
      this.#endLease(rec, lease, 'ATP_ERR_LEASE_EXPIRED');
      out.push({ lease, changed: this.#failedAttempt(rec, code, 'lease lost', now) });
      changed.push(rec);
    }
    return this.commit(out, changed);
  }

  partial(ref: LeaseRef, seq: number, data: Uint8Array, _now: number): Promise<PartialOutcome> {
    const cur = this.#current(ref);
    if ('kind' in cur) return this.commit(cur, []);
    const { rec } = cur;
    if (seq <= rec.lastPartialSeq) return this.commit({ kind: 'duplicate' }, []);
    if (seq !== rec.lastPartialSeq + 1) return this.commit({ kind: 'gap', expected: rec.lastPartialSeq + 1 }, []);
    rec.lastPartialSeq = seq;
    rec.lastPartial = copy(data);
    return this.commit({ kind: 'ok', view: viewOf(rec), seq }, [rec]);
  }

  checkpoint(ref: LeaseRef, data: Uint8Array, _now: number): Promise<{ kind: 'ok' } | Stale> {
    const cur = this.#current(ref);
    if ('kind' in cur) return this.commit(cur, []);
    cur.rec.checkpoint = copy(data);
    return this.commit({ kind: 'ok' as const }, [cur.rec]);
  }

  cancel(tenant: string, id: string, subtree: boolean, reason: string, now: number): Promise<CancelOutcome> {
    const root = this.artifacts.get(keyOf(tenant, id));
    const out: CancelOutcome = { found: root !== undefined, cancelled: [], alreadyFinished: 0, revoke: [], results: new Map() };
    if (root === undefined) return this.commit(out, []);
    const changed: ArtifactRecord[] = [];
    const stack = [root];
    while (stack.length > 0) {
      const rec = stack.pop()!;
      if (subtree) {
        rec.subtreeCancelled = true;
        for (const c of rec.children ?? []) {
          const child = this.artifacts.get(keyOf(tenant, c));
          if (child !== undefined) stack.push(child);
        }
      }
      changed.push(rec);
      if (isTerminal(rec.state)) {
        out.alreadyFinished++;
        continue;
      }
      for (const o of this.#revokeAll(rec, 'ATP_ERR_CANCELLED', reason)) out.revoke.push(o);
      out.results.set(rec.id, this.#finish(rec, 'CANCELLED', 'ATP_ERR_CANCELLED', reason, now));
      out.cancelled.push(viewOf(rec));
    }
    return this.commit(out, changed);
  }

  expire(tenant: string, id: string, now: number): Promise<Changed | undefined> {
    const rec = this.artifacts.get(keyOf(tenant, id));
    if (rec === undefined || isTerminal(rec.state) || rec.deadlineAt === 0 || now < rec.deadlineAt) return this.commit(undefined, []);
    const revoke = this.#revokeAll(rec, 'ATP_ERR_EXPIRED', 'the artifact deadline passed');
    const r = this.#finish(rec, 'EXPIRED', 'ATP_ERR_EXPIRED', 'the deadline passed before the artifact completed', now);
    return this.commit({ kind: 'ok', view: viewOf(rec), result: r, revoke }, [rec]);
  }

  leaseStatus(ref: LeaseRef): Promise<{ kind: 'current'; lease: LeaseRecord } | Stale> {
    const cur = this.#current(ref);
    return Promise.resolve('kind' in cur ? cur : { kind: 'current' as const, lease: cur.lease });
  }

  forget(endedBy: number, max: number): Promise<number> {
    const gone: ArtifactRecord[] = [];
    const order = this.#endedOrder;
    const times = this.#endedTimes;
    while (this.#endedHead < order.length && gone.length < max) {
      if (times[this.#endedHead]! > endedBy) break;
      const rec = order[this.#endedHead]!;
      order[this.#endedHead++] = undefined;
      // Not this record any more: forgotten already, its id since taken by a new artifact.
      if (this.artifacts.get(keyOf(rec.tenant, rec.id)) !== rec) continue;
      // A parent waits for its children (ATP_SPEC ATP-3.11-2); the last child to go takes it along.
      if (rec.children !== null) rec.forgetDue = true;
      else this.#forgetWithAncestors(rec, gone);
    }
    if (this.#endedHead >= 1024 && this.#endedHead * 2 >= order.length) {
      this.#endedOrder = order.slice(this.#endedHead);
      this.#endedTimes = times.slice(this.#endedHead);
      this.#endedHead = 0;
    }
    return gone.length === 0 ? Promise.resolve(0) : this.commitForgotten(gone);
  }

  /** Forget `rec`, then each ancestor that was only waiting for its last child. */
  #forgetWithAncestors(first: ArtifactRecord, gone: ArtifactRecord[]): void {
    let rec = first;
    for (;;) {
      this.artifacts.delete(keyOf(rec.tenant, rec.id));
      this.#counts[rec.state]--;
      for (const t of rec.tags) {
        const k = `${rec.tenant}\0${t}`;
        const ids = this.#tags.get(k);
        if (ids !== undefined && ids.delete(rec.id) && ids.size === 0) this.#tags.delete(k);
      }
      gone.push(rec);
      if (rec.parentId === null) return;
      const parent = this.artifacts.get(keyOf(rec.tenant, rec.parentId));
      const siblings = parent?.children;
      if (parent === undefined || siblings === null || siblings === undefined || !siblings.delete(rec.id) || siblings.size > 0) return;
      parent.children = null;
      if (!parent.forgetDue) return;
      rec = parent;
    }
  }

  // ---- reads -------------------------------------------------------------------------------

  get(tenant: string, id: string): Promise<ArtifactView | undefined> {
    const rec = this.artifacts.get(keyOf(tenant, id));
    return Promise.resolve(rec === undefined ? undefined : viewOf(rec));
  }

  result(tenant: string, id: string): Promise<ArtifactResult | undefined> {
    const rec = this.artifacts.get(keyOf(tenant, id));
    return Promise.resolve(rec !== undefined && isTerminal(rec.state) ? resultOf(rec) : undefined);
  }

  ancestors(tenant: string, id: string): Promise<string[]> {
    const out: string[] = [];
    let rec = this.artifacts.get(keyOf(tenant, id));
    while (rec?.parentId !== null && rec?.parentId !== undefined && out.length < 10_000) {
      out.push(rec.parentId);
      rec = this.artifacts.get(keyOf(tenant, rec.parentId));
    }
    return Promise.resolve(out);
  }

  subtree(tenant: string, id: string): Promise<ArtifactView[]> {
    const out: ArtifactView[] = [];
    const root = this.artifacts.get(keyOf(tenant, id));
    const stack = root === undefined ? [] : [root];
    while (stack.length > 0) {
      const rec = stack.pop()!;
      out.push(viewOf(rec));
      for (const c of rec.children ?? []) {
        const child = this.artifacts.get(keyOf(tenant, c));
        if (child !== undefined) stack.push(child);
      }
    }
    return Promise.resolve(out);
  }

  byTag(tenant: string, tag: string): Promise<ArtifactView[]> {
    const ids = this.#tags.get(`${tenant}\0${tag}`) ?? new Set<string>();
    const out: ArtifactView[] = [];
    for (const id of ids) {
      const rec = this.artifacts.get(keyOf(tenant, id));
      if (rec !== undefined) out.push(viewOf(rec));
    }
    return Promise.resolve(out);
  }

  heldLeases(): Promise<LeaseRecord[]> {
    const held: LeaseRecord[] = [];
    for (const e of this.#leases.values()) if (e.ended === null) held.push(e.lease);
    return Promise.resolve(held);
  }

  pendingDeadlines(): Promise<Array<{ tenant: string; id: string; deadlineAt: number }>> {
    const out: Array<{ tenant: string; id: string; deadlineAt: number }> = [];
    for (const rec of this.artifacts.values())
      if (rec.deadlineAt > 0 && !isTerminal(rec.state)) out.push({ tenant: rec.tenant, id: rec.id, deadlineAt: rec.deadlineAt });
    return Promise.resolve(out);
  }

  counts(): Promise<Record<StateName, number>> {
    return Promise.resolve({ ...this.#counts });
  }

  saveSession(s: SessionRecord): Promise<void> {
    this.sessions.set(s.sessionId, s);
    return Promise.resolve();
  }

  loadSessions(): Promise<SessionRecord[]> {
    return Promise.resolve([...this.sessions.values()]);
  }

  dropSession(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
    return Promise.resolve();
  }

  // ---- internals ---------------------------------------------------------------------------

  #setState(rec: ArtifactRecord, state: StateName): void {
    this.#counts[rec.state]--;
    this.#counts[state]++;
    rec.state = state;
    // A terminal artifact is never leased again, and nothing else reads its payload (a duplicate
    // SUBMIT compares digests): let it go, or every payload ever accepted stays in memory.
    if (TERMINAL.has(state)) rec.payload = EMPTY;
  }

  #enqueue(rec: ArtifactRecord, front: boolean): void {
    const k = `${rec.tenant}\0${rec.kind}`;
    let q = this.#queues.get(k);
    if (q === undefined) this.#queues.set(k, (q = new PendingQueue()));
    q.add(rec.priority, rec, front);
  }

  /** Put a loaded record back into the queues (durable stores, after open). */
  protected restore(rec: ArtifactRecord): void {
    const key = keyOf(rec.tenant, rec.id);
    // Uniqueness is decided here, in memory, at acceptance; a file that breaks it was not written
    // by this store, and loading it would hide one of the two records.
    if (this.artifacts.has(key)) throw new Error(`the store holds artifact ${JSON.stringify(rec.tenant)}/${rec.id} twice`);
    this.artifacts.set(key, rec);
    if (rec.seq > this.#lastSeq) this.#lastSeq = rec.seq;
    this.#counts[rec.state]++;
    for (const t of rec.tags) {
      const k = `${rec.tenant}\0${t}`;
      let s = this.#tags.get(k);
      if (s === undefined) this.#tags.set(k, (s = new Set()));
      s.add(rec.id);
    }
    if (rec.parentId !== null) {
      const parent = this.artifacts.get(keyOf(rec.tenant, rec.parentId));
      if (parent !== undefined) (parent.children ??= new Set()).add(rec.id);
    }
  }

  /**
   * After loading: queue the pending ones, index the leases, and line the terminal ones up for
   * forget() in the order they ended (`endedAt`: when each terminal record ended).
   */
  protected reindex(endedAt: ReadonlyMap<ArtifactRecord, number>): void {
    const ended: Array<[ArtifactRecord, number]> = [];
    for (const rec of this.artifacts.values()) {
      for (const lease of rec.leases ?? []) this.#leases.set(lease.leaseId, heldEntry(lease, rec));
      if (isTerminal(rec.state)) ended.push([rec, endedAt.get(rec) ?? 0]);
      else if (this.#leasesWanted(rec) > 0) this.#enqueue(rec, false);
    }
    ended.sort((a, b) => a[1] - b[1] || a[0].seq - b[0].seq);
    for (const [rec, t] of ended) {
      this.#endedOrder.push(rec);
      this.#endedTimes.push(t);
    }
  }
}

/** Whether queue `a`'s next artifact goes before `b`'s: higher priority, then accepted earlier (ATP_SPEC §3.9). */
function before(a: PendingQueue<ArtifactRecord>, b: PendingQueue<ArtifactRecord>): boolean {
  if (a.topPriority !== b.topPriority) return a.topPriority > b.topPriority;
  return (a.peek()?.seq ?? 0) < (b.peek()?.seq ?? 0);
}

/** SHA-256 of the empty result, which many artifacts return. */
const EMPTY_DIGEST_HEX = toHex(sha256(EMPTY));

function digestHex(result: Uint8Array): string {
  return result.length === 0 ? EMPTY_DIGEST_HEX : toHex(sha256(result));
}

/** Bytes to keep: not a view into a frame's read chunk (ownedBytes), and one shared empty array. */
function copy(b: Uint8Array): Uint8Array {
  return b.length === 0 ? EMPTY : ownedBytes(b);
}

/** The view of a record. */
export function viewOf(rec: ArtifactRecord): ArtifactView {
  return {
    tenant: rec.tenant,
    id: rec.id,
    digest: rec.digest,
    kind: rec.kind,
    state: rec.state,
    parentId: rec.parentId,
    tags: rec.tags,
    epoch: rec.epoch,
    failedAttempts: rec.failedAttempts,
    code: rec.code,
    message: rec.message,
    lastPartialSeq: rec.lastPartialSeq,
    deadlineAt: rec.deadlineAt,
  };
}

/** The result of a terminal record. */
export function resultOf(rec: ArtifactRecord): ArtifactResult {
  return {
    state: rec.state,
    code: rec.code,
    message: rec.message,
    result: rec.state === 'COMPLETED' ? (rec.result ?? EMPTY) : (rec.lastPartial ?? EMPTY),
    resultDigest: rec.resultDigest,
    checkpoint: rec.checkpoint ?? EMPTY,
  };
}
