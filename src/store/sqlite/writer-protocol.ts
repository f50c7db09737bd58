/** Messages between the SQLite store and its writer thread (writer-thread.ts). */
import type { SessionRecord } from '../store.js';

/** A bound parameter of a prepared statement. */
export type Param = string | number | Uint8Array | null;

/** What the writer thread opens. */
export interface WriterConfig {
  path: string;
  synchronous: 'FULL' | 'NORMAL';
  exclusive: boolean;
}

/** The rows of one batch, written in one transaction. */
export interface WriteBatch {
  type: 'write';
  id: number;
  /** INSERT_SQL parameters of records new in this batch. */
  inserts: Param[][];
  /** Their payloads: [seq, bytes] (none for an artifact already terminal). */
  payloads: Array<[number, Uint8Array]>;
  /** Rows of artifacts that became terminal, whose payloads are deleted. */
  dropPayloads: number[];
  /** UPDATE_SQL parameters of records changed since their last write. */
  updates: Param[][];
  /** Rows of forgotten artifacts (ATP_SPEC §3.11), deleted after the batch's other artifact rows. */
  forgets: number[];
  /** Quorum votes, replaced per artifact: [digest, count, result]. */
  votes: Array<{ seq: number; rows: Array<[string, number, Uint8Array]> }>;
  /** Sessions to save, or to drop (null). */
  sessions: Array<[string, SessionRecord | null]>;
}

/** Store → writer. */
export type WriterRequest = WriteBatch | { type: 'close' };

/** Writer → store: `ready` once open, `done`/`failed` per batch id, `closed` after close. */
export interface WriterReply {
  type: 'ready' | 'done' | 'failed' | 'closed';
  id: number;
  message?: string;
}
