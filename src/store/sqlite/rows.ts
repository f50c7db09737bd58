/** Artifact records to SQLite rows and back (schema: src/store/migrations/sqlite-migrations.ts). */
import type { ErrorCode } from '../../errors.js';
import { ArtifactRecord } from '../memory-store.js';
import type { LeaseRecord, StateName } from '../store.js';

/** States as stored: the wire numbers (ATP_REGISTRY §6). */
const STATE_CODE: Record<StateName, number> = { PENDING: 1, LEASED: 2, COMPLETED: 3, FAILED: 4, CANCELLED: 5, EXPIRED: 6 };
const STATE_NAME: ReadonlyMap<number, StateName> = new Map(Object.entries(STATE_CODE).map(([k, v]) => [v, k as StateName]));

/** Stored codes of the non-terminal states (their payloads are loaded at open). */
export const LIVE_STATE_CODES = `${STATE_CODE.PENDING}, ${STATE_CODE.LEASED}`;

const EMPTY = new Uint8Array(0);

/** A row of `artifacts` joined with its payload (NULL when not loaded). */
export interface ArtifactRow {
  seq: number;
  tenant: string;
  id: string;
  digest: string;
  kind: string;
  priority: number;
  late_policy: number;
  quorum_k: number;
  quorum_n: number;
  lease_ttl_ms: number;
  max_duration_ms: number;
  deadline_at: number;
  max_attempts: number;
  parent_id: string | null;
  tags: string;
  created_at: number;
  state: number;
  epoch: number;
  failed_attempts: number;
  code: string | null;
  message: string;
  last_partial_seq: number;
  last_partial: Uint8Array | null;
  checkpoint: Uint8Array | null;
  result: Uint8Array | null;
  result_digest: string | null;
  subtree_cancelled: number;
  leases: string | null;
  quorum_nodes: string | null;
  ended_at: number;
  payload: Uint8Array | null;
}

/** A lease as kept in its artifact's row: the artifact's tenant and id are implied. */
interface StoredLease {
  leaseId: string;
  epoch: number;
  sessionId: string;
  nodeId: string;
  grantedAt: number;
  ttlMs: number;
  maxDurationMs: number;
}

/** Columns written on every change, in the order of UPDATE_SQL's placeholders. */
export const UPDATE_SQL = `UPDATE artifacts SET state = ?, epoch = ?, failed_attempts = ?, code = ?, message = ?, last_partial_seq = ?,
  last_partial = ?, checkpoint = ?, result = ?, result_digest = ?, subtree_cancelled = ?, leases = ?, quorum_nodes = ?,
  ended_at = COALESCE(?, ended_at) WHERE seq = ?`;

/** Every column but the payload, in the order of INSERT_SQL's placeholders. */
export const INSERT_SQL = `INSERT INTO artifacts (seq, tenant, id, digest, kind, priority, late_policy, quorum_k, quorum_n, lease_ttl_ms,
  max_duration_ms, deadline_at, max_attempts, parent_id, tags, created_at, state, epoch, failed_attempts, code, message,
  last_partial_seq, last_partial, checkpoint, result, result_digest, subtree_cancelled, leases, quorum_nodes, ended_at)
  VALUES (${Array.from({ length: 30 }, () => '?').join(', ')})`;

type Param = string | number | Uint8Array | null;

function mutableParams(rec: ArtifactRecord): Param[] {
  return [
    STATE_CODE[rec.state],
    rec.epoch,
    rec.failedAttempts,
    rec.code,
    rec.message,
    rec.lastPartialSeq,
    rec.lastPartial,
    rec.checkpoint,
    rec.result,
    rec.resultDigest,
    rec.subtreeCancelled ? 1 : 0,
    rec.leases === null ? null : JSON.stringify(rec.leases.map(storedLease)),
    rec.quorumNodes === null ? null : JSON.stringify(rec.quorumNodes),
  ];
}

/** Parameters of UPDATE_SQL for a record; `endedAt` when it ended since its last write (null keeps the column). */
export function updateParams(seq: number, rec: ArtifactRecord, endedAt: number | null): Param[] {
  const p = mutableParams(rec);
  p.push(endedAt, seq);
  return p;
}

/** Parameters of INSERT_SQL for a record; `endedAt` when it ended (born cancelled), else 0. */
export function insertParams(seq: number, rec: ArtifactRecord, endedAt: number): Param[] {
  return [
    seq,
    rec.tenant,
    rec.id,
    rec.digest,
    rec.kind,
    rec.priority,
    rec.latePolicy,
    rec.quorumK,
    rec.quorumN,
    rec.leaseTtlMs,
    rec.maxDurationMs,
    rec.deadlineAt,
    rec.maxAttempts,
    rec.parentId,
    JSON.stringify(rec.tags),
    rec.createdAt,
    ...mutableParams(rec),
    endedAt,
  ];
}

function storedLease(l: LeaseRecord): StoredLease {
  return {
    leaseId: l.leaseId,
    epoch: l.epoch,
    sessionId: l.sessionId,
    nodeId: l.nodeId,
    grantedAt: l.grantedAt,
    ttlMs: l.ttlMs,
    maxDurationMs: l.maxDurationMs,
  };
}

function bytes(b: Uint8Array | null): Uint8Array | null {
  if (b === null) return null;
  return b.length === 0 ? EMPTY : new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** A record from its row; quorum votes are attached by the caller. */
export function recordOf(row: ArtifactRow): ArtifactRecord {
  const state = STATE_NAME.get(row.state);
  if (state === undefined) throw new Error(`artifact ${row.tenant}/${row.id} has an unknown stored state ${row.state}`);
  const leases: LeaseRecord[] | null =
    row.leases === null ? null : (JSON.parse(row.leases) as StoredLease[]).map((l) => ({ ...l, tenant: row.tenant, artifactId: row.id }));
  const rec = new ArtifactRecord(
    {
      tenant: row.tenant,
      id: row.id,
      digest: row.digest,
      kind: row.kind,
      payload: bytes(row.payload) ?? EMPTY,
      priority: row.priority,
      latePolicy: row.late_policy,
      quorumK: row.quorum_k,
      quorumN: row.quorum_n,
      leaseTtlMs: row.lease_ttl_ms,
      maxDurationMs: row.max_duration_ms,
      deadlineAt: row.deadline_at,
      maxAttempts: row.max_attempts,
      parentId: row.parent_id,
      tags: JSON.parse(row.tags) as string[],
    },
    row.created_at,
  );
  rec.seq = row.seq;
  rec.state = state;
  rec.epoch = row.epoch;
  rec.failedAttempts = row.failed_attempts;
  rec.code = row.code as ErrorCode | null;
  rec.message = row.message;
  rec.lastPartialSeq = row.last_partial_seq;
  rec.lastPartial = bytes(row.last_partial);
  rec.checkpoint = bytes(row.checkpoint);
  rec.result = bytes(row.result);
  rec.resultDigest = row.result_digest;
  rec.leases = leases !== null && leases.length > 0 ? leases : null;
  rec.subtreeCancelled = row.subtree_cancelled !== 0;
  rec.quorumNodes = row.quorum_nodes === null ? null : (JSON.parse(row.quorum_nodes) as string[]);
  return rec;
}
