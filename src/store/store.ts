/**
 * The Store contract (ATP_SPEC §3.5): where artifacts, leases and results live. Each method is one
 * atomic, named transition, guarded by the lease id and epoch where a lease is named, returning a
 * typed outcome; a stale caller can never overwrite a newer holder. Implementations: memory,
 * SQLite (embedded default), PostgreSQL (several coordinators). One conformance suite
 * (test/store/conformance.ts) runs against each.
 *
 * Times are milliseconds on the coordinator's clock, passed in by the caller (`now`): a store
 * never reads a clock itself.
 */
import type { ErrorCode } from '../errors.js';

/** Artifact states, by name (numbers as on the wire: ATP_REGISTRY §6). */
export type StateName = 'PENDING' | 'LEASED' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'EXPIRED';

/** A new artifact as submitted (already validated and digested by the coordinator). */
export interface NewArtifact {
  tenant: string;
  id: string; // hex
  digest: string; // hex of the SHA-256 content digest
  kind: string;
  payload: Uint8Array;
  priority: number;
  latePolicy: number;
  quorumK: number;
  quorumN: number;
  leaseTtlMs: number;
  maxDurationMs: number;
  /** Absolute clock time after which the artifact expires; 0 for none. */
  deadlineAt: number;
  maxAttempts: number;
  parentId: string | null; // hex
  tags: readonly string[];
}

/** What a watcher or a QUERY sees of an artifact. */
export interface ArtifactView {
  tenant: string;
  id: string;
  digest: string;
  kind: string;
  state: StateName;
  parentId: string | null;
  tags: readonly string[];
  /** Epoch of the newest lease (0 before the first). */
  epoch: number;
  failedAttempts: number;
  code: ErrorCode | null;
  message: string;
  lastPartialSeq: number;
  deadlineAt: number;
}

/** The outcome of a terminal artifact. */
export interface ArtifactResult {
  state: StateName;
  code: ErrorCode | null;
  message: string;
  /** Result bytes if COMPLETED, else the last partial result. */
  result: Uint8Array;
  resultDigest: string | null;
  checkpoint: Uint8Array;
}

/** Outcome of one SUBMIT. */
export type SubmitOutcome =
  | { kind: 'accepted'; view: ArtifactView; duplicate: boolean }
  | { kind: 'conflict'; existingDigest: string }
  | { kind: 'parent-not-found' };

/** A lease as the store keeps it. */
export interface LeaseRecord {
  leaseId: string;
  tenant: string;
  artifactId: string;
  epoch: number;
  sessionId: string;
  nodeId: string;
  grantedAt: number;
  ttlMs: number;
  maxDurationMs: number;
}

/** A granted lease with everything the LEASE frame carries. */
export interface Grant extends LeaseRecord {
  kind: string;
  parentId: string | null;
  digest: string;
  payload: Uint8Array;
  checkpoint: Uint8Array;
  lastPartialSeq: number;
  deadlineAt: number;
  latePolicy: number;
}

/**
 * Who asks for leases: a session that was saved first (saveSession). A shared store grants
 * nothing under a session that this coordinator does not own (ATP_SPEC ATP-11.8-6).
 */
export interface AcquireRequest {
  tenant: string;
  sessionId: string;
  nodeId: string;
  kinds: ReadonlySet<string>;
  max: number;
  now: number;
  /** Lease ids to use, one per grant (the coordinator makes them). */
  newLeaseId: () => string;
  /**
   * The largest message the worker accepts (ATP_SPEC ATP-3.10-6): an artifact whose LEASE would be
   * larger (payload, checkpoint and kind plus LEASE_OVERHEAD_BYTES) is not granted to it and stays
   * queued for another worker.
   */
  maxMessageBytes?: number | undefined;
}

/** What a LEASE adds to an artifact's payload, checkpoint and kind, at most (header, fixed part, extensions). */
export const LEASE_OVERHEAD_BYTES = 512;

/** True when an artifact's LEASE fits a worker's maximum message size. */
export function leaseFits(payloadBytes: number, checkpointBytes: number, kind: string, maxMessageBytes: number | undefined): boolean {
  return maxMessageBytes === undefined || payloadBytes + checkpointBytes + kind.length + LEASE_OVERHEAD_BYTES <= maxMessageBytes;
}

/** Names one lease: the guard of every lease transition. */
export interface LeaseRef {
  leaseId: string;
  epoch: number;
  sessionId: string;
}

/** Why a lease transition was refused: the lease is not current (ATP_SPEC §5.7). */
export interface Stale {
  kind: 'stale';
  /** The most specific reason known: ATP_ERR_STALE_LEASE, ATP_ERR_LEASE_EXPIRED, ATP_ERR_CANCELLED, ATP_ERR_EXPIRED. */
  code: ErrorCode;
  artifactId: string | null;
}

/** Leases the coordinator must revoke because of a transition (cancel, deadline, quorum reached). */
export interface RevokeOrder {
  lease: LeaseRecord;
  code: ErrorCode;
  reason: string;
}

/** Result of a transition that changed an artifact. */
export interface Changed {
  kind: 'ok';
  view: ArtifactView;
  /** Set when the artifact became terminal. */
  result?: ArtifactResult;
  revoke: RevokeOrder[];
}

/** Outcome of COMPLETE. */
export type CompleteOutcome = Changed | Stale | { kind: 'recorded'; view: ArtifactView }; // recorded: a quorum vote that did not decide yet

/** Outcome of PARTIAL. */
export type PartialOutcome =
  { kind: 'ok'; view: ArtifactView; seq: number } | { kind: 'duplicate' } | { kind: 'gap'; expected: number } | Stale;

/** Outcome of CANCEL. */
export interface CancelOutcome {
  found: boolean;
  cancelled: ArtifactView[];
  alreadyFinished: number;
  revoke: RevokeOrder[];
  results: Map<string, ArtifactResult>;
}

/** Outcome of losing leases (expiry, session gone). */
export interface LossOutcome {
  lease: LeaseRecord;
  changed: Changed | undefined;
}

/** What a shared store's upkeep did: leases it lost, and sessions this coordinator no longer owns. */
export interface MaintainOutcome {
  lost: LossOutcome[];
  gone: string[];
}

/** The contract. */
export interface Store {
  /** Short name for diagnostics: memory, sqlite, postgres. */
  readonly name: string;
  /**
   * True when a transition decides in process, before its promise resolves, so that the next call
   * already sees it (memory, SQLite: the promise only waits for durability). The coordinator then
   * leases artifacts of a submit batch in the same group commit as their insertion: one write and
   * one commit fewer per artifact, and the LEASE still leaves only once both are durable.
   */
  readonly decidesInProcess?: boolean;
  /** Create or migrate the schema and load state. */
  open(): Promise<void>;
  /** Flush pending writes and release resources. */
  close(): Promise<void>;

  /** ATP_SPEC §3.2: accept new artifacts (idempotent by id and digest), in order. Durable when resolved. */
  submit(batch: readonly NewArtifact[], now: number): Promise<SubmitOutcome[]>;
  /** ATP_SPEC §5.1: lease up to `max` pending artifacts of the given kinds, highest priority first. */
  acquire(req: AcquireRequest): Promise<Grant[]>;
  /** ATP_SPEC §6.1: accept a result under the current lease (or a late one, per late policy). */
  complete(ref: LeaseRef, result: Uint8Array, now: number): Promise<CompleteOutcome>;
  /** ATP_SPEC §6.2: a failed attempt. */
  fail(ref: LeaseRef, code: ErrorCode, retryable: boolean, message: string, now: number): Promise<Changed | Stale>;
  /** ATP_SPEC §6.3: hand a lease back unfinished, with an optional final checkpoint (not a failed attempt). */
  release(ref: LeaseRef, checkpoint: Uint8Array | undefined, now: number): Promise<Changed | Stale>;
  /** ATP_SPEC §5.6: leases lost by expiry or a vanished session: each a failed attempt. */
  loseLeases(refs: readonly LeaseRef[], code: ErrorCode, now: number): Promise<LossOutcome[]>;
  /** ATP_SPEC §9.1: an ordered partial result. */
  partial(ref: LeaseRef, seq: number, data: Uint8Array, now: number): Promise<PartialOutcome>;
  /** ATP_SPEC §9.3: replace the checkpoint. */
  checkpoint(ref: LeaseRef, data: Uint8Array, now: number): Promise<{ kind: 'ok' } | Stale>;
  /** ATP_SPEC §8: cancel one artifact or its subtree (present and future). */
  cancel(tenant: string, id: string, subtree: boolean, reason: string, now: number): Promise<CancelOutcome>;
  /** ATP_SPEC §3.8: expire an artifact whose deadline passed (no-op if terminal). */
  expire(tenant: string, id: string, now: number): Promise<Changed | undefined>;
  /** A lease is current: the check behind fencing (ATP_SPEC §5.7). */
  leaseStatus(ref: LeaseRef): Promise<{ kind: 'current'; lease: LeaseRecord } | Stale>;

  /** Current state of an artifact. */
  get(tenant: string, id: string): Promise<ArtifactView | undefined>;
  /** Outcome of a terminal artifact. */
  result(tenant: string, id: string): Promise<ArtifactResult | undefined>;
  /** Ids of the ancestors of an artifact, nearest first. */
  ancestors(tenant: string, id: string): Promise<string[]>;
  /** Every artifact of a subtree (root included). */
  subtree(tenant: string, id: string): Promise<ArtifactView[]>;
  /** Every artifact carrying a tag. */
  byTag(tenant: string, tag: string): Promise<ArtifactView[]>;
  /** Every lease held now (for recovery after a restart). */
  heldLeases(): Promise<LeaseRecord[]>;
  /** Non-terminal artifacts with a deadline (for re-arming timers after a restart). */
  pendingDeadlines(): Promise<Array<{ tenant: string; id: string; deadlineAt: number }>>;
  /** Counts by state, for status and metrics. */
  counts(): Promise<Record<StateName, number>>;
  /**
   * ATP_SPEC §3.11: forget about `max` terminal artifacts that ended at or before `endedBy` and
   * have no child the store still remembers (a parent goes once its children have gone: with its
   * last child, which may take a call a few over `max`, or in a later call). Returns how many were
   * forgotten; fewer than `max` means the rest can wait for the next call.
   */
  forget(endedBy: number, max: number): Promise<number>;
  /** Shared stores (PostgreSQL): deliver what other coordinators decided (ATP_SPEC §11.8). */
  subscribe?(handler: (ev: ExternalEvent) => void): void;
  /** Shared stores: publish this coordinator's liveness (called every upkeep tick, even while `maintain` runs). */
  heartbeat?(now: number): Promise<void>;
  /**
   * Shared stores: periodic upkeep — the leases of sessions whose coordinator died and that nobody
   * resumed within the resume window, and which of `own` (the worker sessions this coordinator
   * serves) it no longer owns.
   */
  maintain?(now: number, resumeWindowMs: number, own?: readonly string[]): Promise<MaintainOutcome>;
  /** Shared stores: take over a session of another coordinator (a worker resuming here). */
  adoptSession?(sessionId: string, tokenHash: string, now: number): Promise<{ session: SessionRecord; leases: LeaseRecord[] } | undefined>;
  /** Sessions persisted for resume after a coordinator restart. */
  saveSession(s: SessionRecord): Promise<void>;
  loadSessions(): Promise<SessionRecord[]>;
  dropSession(sessionId: string): Promise<void>;
}

/** An event decided by another coordinator sharing the store. */
export type ExternalEvent =
  | { kind: 'changed'; tenant: string; id: string }
  | { kind: 'revoke'; lease: LeaseRecord; code: ErrorCode; reason: string }
  | { kind: 'pending'; tenant: string; kinds: string[] }
  /** Events may have been lost (the notification channel was down and is back): read again what matters. */
  | { kind: 'resync' };

/** What a store keeps of a worker session so that it can be resumed after a coordinator restart. */
export interface SessionRecord {
  sessionId: string;
  /** SHA-256 of the resume token, hex: the token itself is never stored. */
  tokenHash: string;
  nodeId: string;
  tenant: string;
  roles: number;
}
