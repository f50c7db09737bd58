/** A session as the coordinator keeps it (ATP_SPEC §4, §11). */
import type { HeapTimer } from '../internal/timer-heap.js';
import type { Channel } from '../protocol/channel.js';
import type { LeaseRecord } from '../store/store.js';
import type { ErrorCode } from '../errors.js';

/** A lease the session holds, with its renewal time. */
export interface HeldLease {
  lease: LeaseRecord;
  /** Last time this lease was renewed by a listed RENEW (session-wide renewals are on the session). */
  renewedAt: number;
  maxDurationTimer: HeapTimer | undefined;
  /**
   * False for a lease kept over a resume until the worker names it again: a LEASE sent just before
   * the drop may never have arrived, so session-wide renewals do not cover it (ATP_SPEC §11.6).
   */
  confirmed: boolean;
}

/** A lease revoked by the coordinator and not yet acknowledged (ATP_SPEC §8.3). */
export interface Revoking {
  lease: LeaseRecord;
  code: ErrorCode;
  batch: RevokeBatch;
}

/** The leases of one session revoked together, with their one deadline timer. */
export interface RevokeBatch {
  timer: HeapTimer | undefined;
  /** Entries not yet acknowledged; the timer is cancelled when none is left. */
  pending: number;
  readonly entries: Revoking[];
}

/** A watch registered by a session (ATP_SPEC §7). */
export interface Watch {
  session: ServerSession;
  stream: number;
  /** 1 artifact, 2 subtree, 3 tag. */
  scope: number;
  /** Key the watch is filed under: artifact key, subtree root key, or tenant\0tag. */
  key: string;
  states: boolean;
  results: boolean;
  partials: boolean;
  /** Removed after the RESULT (artifact-scope watches). */
  oneShot: boolean;
  /**
   * Watches opened with replay: artifacts whose terminal state was sent on this watch. The replay
   * reads the store while live events may still be on their way (a store with group commit), so
   * both can carry the same change; nothing about a finished artifact is sent twice (ATP_SPEC §7.3).
   */
  finished?: Set<string>;
}

/** One session: a connected (or detached, within the resume window) client. */
export class ServerSession {
  readonly id: string;
  /** SHA-256 of the current resume token (a new one with every WELCOME). */
  token: Uint8Array;
  readonly nodeId: string;
  readonly tenant: string;
  readonly roles: number;
  readonly kinds: ReadonlySet<string>;
  channel: Channel | undefined;
  /** Worker: leases it will take now. */
  credits = 0;
  acquiring = false;
  /** 0 none, 1 drain and finish, 2 drain and hand back. */
  draining = 0;
  drainTimer: HeapTimer | undefined;
  readonly leases = new Map<string, HeldLease>();
  readonly revoking = new Map<string, Revoking>();
  /** Session-level renewal: one RENEW renews every lease (ATP_SPEC §5.4). */
  lastRenewAt: number;
  expiryTimer: HeapTimer | undefined;
  expiryAt = Infinity;
  resumeTimer: HeapTimer | undefined;
  readonly watches = new Map<number, Watch>();
  /** Largest frame payload the client accepts. */
  readonly clientMaxFrameBytes: number;
  pings = 0;
  pingWindowStart = 0;
  /** The connection agreed revoke-batch: one REVOKE names many leases (ATP_WIRE §6.31). */
  revokeBatch = false;

  constructor(init: {
    id: string;
    token: Uint8Array;
    nodeId: string;
    tenant: string;
    roles: number;
    kinds: ReadonlySet<string>;
    now: number;
    clientMaxFrameBytes: number;
  }) {
    this.id = init.id;
    this.token = init.token;
    this.nodeId = init.nodeId;
    this.tenant = init.tenant;
    this.roles = init.roles;
    this.kinds = init.kinds;
    this.lastRenewAt = init.now;
    this.clientMaxFrameBytes = init.clientMaxFrameBytes;
  }

  /** True while a connection is attached. */
  get connected(): boolean {
    return this.channel !== undefined && !this.channel.closed;
  }

  /** The last instant at which a held lease is valid: it is lost once now is past this (ATP_SPEC §5.3–§5.6). */
  expiryOf(h: HeldLease): number {
    const base = Math.max(h.confirmed ? this.lastRenewAt : 0, h.renewedAt, h.lease.grantedAt);
    const ttlEnd = base + h.lease.ttlMs;
    return h.lease.maxDurationMs > 0 ? Math.min(ttlEnd, h.lease.grantedAt + h.lease.maxDurationMs) : ttlEnd;
  }
}
