/** Coordinator options and their defaults (ATP_SPEC Appendix A). */
import type { Clock } from '../internal/clock.js';
import { systemClock } from '../internal/clock.js';
import type { Store } from '../store/store.js';
import { MemoryStore } from '../store/memory-store.js';
import { Limits } from '../wire/index.js';

/** Default memory for fragmented messages being received at once, across connections: 1 GiB. */
export const DEFAULT_MESSAGE_BUDGET_BYTES = 4 * Limits.DEFAULT_MAX_MESSAGE_BYTES;

/** ATP-4.8-7: the least rate of a message that holds memory others wait for (512 kbit/s). */
export const DEFAULT_MIN_MESSAGE_BYTES_PER_SECOND = 64 * 1024;

/** Default retention of a terminal artifact (ATP_SPEC §3.11): 24 hours. */
export const DEFAULT_RETAIN_MS = 24 * 3600 * 1000;

/** What a bearer token grants (ATP_SPEC §4.5). */
export interface TokenGrant {
  /** Role bits the token may use (1 worker, 2 producer, 4 observer). */
  roles: number;
  tenant: string;
}

/** Options of a coordinator. Every duration is in milliseconds. */
export interface CoordinatorOptions {
  store?: Store;
  clock?: Clock;
  /** Default lease ttl for artifacts that do not set one. */
  leaseTtlMs?: number;
  /** How often clients send RENEW or PING. */
  heartbeatMs?: number;
  idleTimeoutMs?: number;
  resumeWindowMs?: number;
  cancelDeadlineMs?: number;
  drainDeadlineMs?: number;
  handshakeTimeoutMs?: number;
  maxAttempts?: number;
  /**
   * How long a terminal artifact is remembered after it ended (ATP_SPEC §3.11): meanwhile a
   * duplicate SUBMIT gets its stored result and QUERY, WATCH and CANCEL find it; afterwards it is
   * forgotten, once its children are. Infinity remembers every artifact for ever. Default 24 hours.
   */
  retainMs?: number;
  maxFrameBytes?: number;
  /** Largest message body accepted, whole or in fragments (WELCOME.maxMessageBytes, ATP_WIRE §3.7). Default 256 MiB. */
  maxMessageBytes?: number;
  /**
   * Memory for the bodies of fragmented messages being received, across all connections at once
   * (ATP-4.5-10). A message that does not fit waits, its connection's window closed, until others
   * are complete. At least maxMessageBytes. Default 1 GiB, or maxMessageBytes if that is larger.
   */
  messageBudgetBytes?: number;
  /**
   * ATP-4.8-7: while a message waits for memory of that budget, a fragmented message that holds
   * some must have arrived at this many bytes per second on average since it got it, once
   * minMessageRateGraceMs have passed; one slower ends its connection (ATP_ERR_IDLE_TIMEOUT), so
   * that a sender that trickles cannot keep memory that others wait for. 0: no minimum.
   * Default 65,536 (512 kbit/s).
   */
  minMessageBytesPerSecond?: number;
  /** Default 10 s. */
  minMessageRateGraceMs?: number;
  /** Bearer tokens; when set, every session must present one. Keys are the token strings. */
  tokens?: ReadonlyMap<string, TokenGrant>;
  /** Implementation name sent in WELCOME. */
  agent?: string;
}

/** Options with every default applied. */
export interface ResolvedOptions extends Required<Omit<CoordinatorOptions, 'tokens'>> {
  tokens: ReadonlyMap<string, TokenGrant> | undefined;
}

/** Apply defaults and check ranges (RangeError on a bad value). */
export function resolveOptions(o: CoordinatorOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    store: o.store ?? new MemoryStore(),
    clock: o.clock ?? systemClock,
    leaseTtlMs: o.leaseTtlMs ?? 30_000,
    heartbeatMs: o.heartbeatMs ?? 10_000,
    idleTimeoutMs: o.idleTimeoutMs ?? 30_000,
    resumeWindowMs: o.resumeWindowMs ?? 5_000,
    cancelDeadlineMs: o.cancelDeadlineMs ?? 5_000,
    drainDeadlineMs: o.drainDeadlineMs ?? 30_000,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    maxAttempts: o.maxAttempts ?? 3,
    retainMs: o.retainMs ?? DEFAULT_RETAIN_MS,
    maxFrameBytes: o.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES,
    maxMessageBytes: o.maxMessageBytes ?? Limits.DEFAULT_MAX_MESSAGE_BYTES,
    messageBudgetBytes: o.messageBudgetBytes ?? Math.max(DEFAULT_MESSAGE_BUDGET_BYTES, o.maxMessageBytes ?? 0),
    minMessageBytesPerSecond: o.minMessageBytesPerSecond ?? DEFAULT_MIN_MESSAGE_BYTES_PER_SECOND,
    minMessageRateGraceMs: o.minMessageRateGraceMs ?? 10_000,
    tokens: o.tokens,
    agent: o.agent ?? 'atp-ts/0.1',
  };
  const positive: Array<keyof ResolvedOptions> = [
    'leaseTtlMs',
    'heartbeatMs',
    'resumeWindowMs',
    'cancelDeadlineMs',
    'drainDeadlineMs',
    'handshakeTimeoutMs',
    'maxAttempts',
    'minMessageRateGraceMs',
  ];
  for (const k of positive) {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > 0xffffffff)
      throw new RangeError(`coordinator option ${k} must be a positive integer, got ${typeof v === 'number' ? v : typeof v}`);
  }
  if (!Number.isSafeInteger(r.minMessageBytesPerSecond) || r.minMessageBytesPerSecond < 0) {
    throw new RangeError(
      `coordinator option minMessageBytesPerSecond must be a non-negative integer (0 for no minimum), got ${r.minMessageBytesPerSecond}`,
    );
  }
  if (r.retainMs !== Infinity && (!Number.isSafeInteger(r.retainMs) || r.retainMs <= 0)) {
    throw new RangeError(`coordinator option retainMs must be a positive integer or Infinity, got ${r.retainMs}`);
  }
  if (r.maxFrameBytes < Limits.MIN_MAX_FRAME_BYTES || r.maxFrameBytes > Limits.MAX_MAX_FRAME_BYTES) {
    throw new RangeError(
      `coordinator option maxFrameBytes must be in [${Limits.MIN_MAX_FRAME_BYTES}, ${Limits.MAX_MAX_FRAME_BYTES}], got ${r.maxFrameBytes}`,
    );
  }
  if (!Number.isInteger(r.maxMessageBytes) || r.maxMessageBytes < r.maxFrameBytes || r.maxMessageBytes > Limits.MAX_MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `coordinator option maxMessageBytes must be an integer in [maxFrameBytes (${r.maxFrameBytes}), ${Limits.MAX_MAX_MESSAGE_BYTES}], got ${r.maxMessageBytes}`,
    );
  }
  if (!Number.isSafeInteger(r.messageBudgetBytes) || r.messageBudgetBytes < r.maxMessageBytes) {
    throw new RangeError(
      `coordinator option messageBudgetBytes must be an integer of at least maxMessageBytes (${r.maxMessageBytes}), got ${r.messageBudgetBytes}: a message of the largest size must fit`,
    );
  }
  return r;
}
