/** What every handler sees, in process or in a worker thread (ATP_SPEC §2.3). */

/** The artifact a handler receives. */
export interface LeasedArtifact {
  id: string;
  kind: string;
  payload: Uint8Array;
  parentId: string | null;
  digest: string;
  /** 1 for the first lease, rising with every re-issue. */
  attempt: number;
}

/** What a handler can do with its lease. */
export interface HandlerContext {
  /** Aborted when the lease is revoked (cancel, deadline, drain) or lost; `signal.reason` says why. */
  readonly signal: AbortSignal;
  readonly leaseId: string;
  readonly epoch: number;
  /** The last checkpoint stored by an earlier lease of this artifact, if any. */
  readonly checkpointData: Uint8Array | undefined;
  /** Sequence of the last accepted partial result; ctx.partial() continues from it. */
  readonly lastPartialSeq: number;
  /** Stream a partial result to watchers (ordered; numbered by the SDK). */
  partial(data: Uint8Array | string): void;
  /** Store a checkpoint; the next lease of this artifact receives it. Resolves when durable. */
  checkpoint(data: Uint8Array | string): Promise<void>;
}
