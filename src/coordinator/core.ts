/** What the message handlers need of the coordinator (kept apart to keep the import graph acyclic). */
import type { ErrorCode } from '../errors.js';
import type { TimerHeap } from '../internal/timer-heap.js';
import type { ArtifactResult, ArtifactView, RevokeOrder, Store } from '../store/store.js';
import type { ResolvedOptions } from './options.js';
import type { ServerSession } from './session.js';
import type { WatchHub } from './watch-hub.js';

/** The coordinator's internals, as the handlers see them. */
export interface Core {
  readonly options: ResolvedOptions;
  readonly store: Store;
  readonly timers: TimerHeap;
  readonly watches: WatchHub;
  now(): number;
  /** Sessions by id. */
  session(id: string): ServerSession | undefined;
  /** Publish a state change (and result) to watchers. */
  publish(view: ArtifactView, result?: ArtifactResult): void;
  /** Publish an accepted partial result to watchers, in acceptance order with other events. */
  publishPartial(view: ArtifactView, seq: number, epoch: number, data: Uint8Array): void;
  /** Send REVOKE for each order and track the acknowledgement deadline. */
  revoke(orders: readonly RevokeOrder[]): void;
  /** Artifacts of this kind may be leasable now: wake hungry workers. */
  wake(tenant: string, kind: string): void;
  /** Grant leases to this session if it has credits. */
  dispatch(s: ServerSession): void;
  /** Serve the dispatches asked for so far now, instead of in their microtask. */
  dispatchNow(): void;
  /** Arm the artifact deadline timer. */
  armDeadline(tenant: string, id: string, deadlineAt: number): void;
  /** Re-arm a session's lease expiry check. */
  armExpiry(s: ServerSession): void;
  /** Release every lease of a session (graceful leave) and forget it. */
  endSession(s: ServerSession, how: 'release' | 'lose'): void;
  /** Report an internal failure of an operation (a store error). */
  fault(where: string, err: unknown, s?: ServerSession): void;
  /** Diagnostics event. */
  emit(event: string, detail: Record<string, unknown>): void;
  /** Stale-reply helper code lookup for a lease the session no longer holds. */
  revokedCode(s: ServerSession, leaseId: string): ErrorCode | undefined;
}
