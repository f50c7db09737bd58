/**
 * Artifact digests that do not block the event loop (ATP_SPEC §3.2): SHA-256 over
 * kind ‖ 0x00 ‖ payload is computed at once for a payload of up to 1 MiB (about a millisecond), and
 * in 256 KiB slices across event-loop turns for a larger one, so that a 100 MB payload does not stall
 * every other connection for the 50–100 ms its hash takes. Answers come in the order they were asked
 * for, per key (a session, a client): a small SUBMIT behind a large one waits for it, so that the
 * order of submissions (a parent before its child) is kept.
 */
import { createHash } from 'node:crypto';
import { artifactDigest } from './ids.js';

/** Bytes hashed per event-loop turn (0.2–0.3 ms here): what a frame that arrives meanwhile can wait. */
export const DIGEST_SLICE_BYTES = 256 * 1024;
/** Payloads up to this size are hashed at once. */
export const DIGEST_AT_ONCE_BYTES = 1024 * 1024;

const ZERO_BYTE = new Uint8Array(1);

/** SHA-256(utf8(kind) ‖ 0x00 ‖ payload) in slices across event-loop turns; `done` gets the digest. */
export function artifactDigestSliced(kind: string, payload: Uint8Array, done: (digest: Uint8Array) => void): void {
  const h = createHash('sha256');
  h.update(kind, 'utf8');
  h.update(ZERO_BYTE);
  let off = 0;
  const step = (): void => {
    const end = Math.min(off + DIGEST_SLICE_BYTES, payload.length);
    h.update(payload.subarray(off, end));
    off = end;
    if (off < payload.length) setImmediate(step);
    else done(new Uint8Array(h.digest()));
  };
  step();
}

/** The artifact digest as a promise: sliced across event-loop turns when the payload is large. */
export function artifactDigestAsync(kind: string, payload: Uint8Array): Promise<Uint8Array> {
  if (payload.length <= DIGEST_AT_ONCE_BYTES) return Promise.resolve(artifactDigest(kind, payload));
  return new Promise((resolve) => artifactDigestSliced(kind, payload, resolve));
}

interface Job {
  kind: string;
  payload: Uint8Array | undefined;
  then: (digest: Uint8Array | undefined) => void;
}

/** Digests answered in order per key; see the top of this file. */
export class OrderedDigests<K> {
  readonly #queues = new Map<K, Job[]>();

  /**
   * Calls `then` with the digest of `payload` (undefined for an undefined payload: nothing to hash,
   * the call only keeps its place in the order). Synchronously when nothing is waiting under `key`
   * and the payload is small; otherwise once every earlier call under `key` has been answered.
   */
  run(key: K, kind: string, payload: Uint8Array | undefined, then: (digest: Uint8Array | undefined) => void): void {
    const queue = this.#queues.get(key);
    if (queue !== undefined) {
      queue.push({ kind, payload, then });
      return;
    }
    if (payload === undefined || payload.length <= DIGEST_AT_ONCE_BYTES) {
      then(payload === undefined ? undefined : artifactDigest(kind, payload));
      return;
    }
    this.#queues.set(key, [{ kind, payload, then }]);
    this.#drain(key);
  }

  /**
   * The digest of `payload` now, when nothing waits under `key` and the payload is small enough to
   * hash at once; undefined otherwise (then use run(), which keeps the order).
   */
  now(key: K, kind: string, payload: Uint8Array): Uint8Array | undefined {
    if (payload.length > DIGEST_AT_ONCE_BYTES || this.#queues.has(key)) return undefined;
    return artifactDigest(kind, payload);
  }

  /** Keys with calls still waiting. */
  get pending(): number {
    return this.#queues.size;
  }

  #drain(key: K): void {
    const queue = this.#queues.get(key)!;
    for (;;) {
      const job = queue[0];
      if (job === undefined) {
        this.#queues.delete(key);
        return;
      }
      if (job.payload !== undefined && job.payload.length > DIGEST_AT_ONCE_BYTES) {
        artifactDigestSliced(job.kind, job.payload, (digest) => {
          queue.shift();
          try {
            job.then(digest);
          } finally {
            this.#drain(key);
          }
        });
        return;
      }
      queue.shift();
      job.then(job.payload === undefined ? undefined : artifactDigest(job.kind, job.payload));
    }
  }
}
