/**
 * Wire constants of ATP v1: the preface, the frame header, limits, and the small enumerations that
 * travel in message fields. Layouts are in docs/ATP_WIRE.md; codes in docs/ATP_REGISTRY.md.
 */

/** ATP_WIRE §2: the 8-byte connection preface `ATP1\r\n\r\n` (TCP and TLS only). */
export const PREFACE = Uint8Array.of(0x41, 0x54, 0x50, 0x31, 0x0d, 0x0a, 0x0d, 0x0a);
/** The protocol major version carried by the preface, and the only version of this codec. */
export const PROTOCOL_VERSION = 1;
/** ALPN protocol id for TLS (ATP_WIRE §9.2). */
export const ALPN_ID = 'atp/1';
/** WebSocket subprotocol (ATP_WIRE §9.3). */
export const WS_SUBPROTOCOL = 'atp.1';

/** ATP_WIRE §3: the frame header is 12 bytes. */
export const HEADER_BYTES = 12;

/** ATP_WIRE §3.4: the bits of the header's Flags byte. Other bits are sent as 0 and ignored. */
export const FrameFlags = {
  /** More fragments of this message follow (ATP_WIRE §3.7). */
  MORE: 0x01,
  /** This frame continues the fragmented message in progress (ATP_WIRE §3.7). */
  CONTINUATION: 0x02,
} as const;

/** ATP_WIRE §3.7: the first fragment's payload starts with the length of the whole message (u32). */
export const FIRST_FRAGMENT_PREFIX_BYTES = 4;

/** ATP_WIRE §8: limits (bytes unless named otherwise). */
export const Limits = {
  /** Every implementation accepts frame payloads at least this large once WELCOME is exchanged. */
  MIN_MAX_FRAME_BYTES: 64 * 1024,
  /** Default advertised maximum frame payload. */
  DEFAULT_MAX_FRAME_BYTES: 1024 * 1024,
  /** No peer may advertise more. */
  MAX_MAX_FRAME_BYTES: 16 * 1024 * 1024,
  /** Until WELCOME, frames are at most this large (and no message is fragmented). */
  PRE_WELCOME_MAX_FRAME_BYTES: 16 * 1024,
  /** Default advertised maximum message body, fragmented or not (ATP_WIRE §3.7, §8). */
  DEFAULT_MAX_MESSAGE_BYTES: 256 * 1024 * 1024,
  /** The largest maximum message a peer may advertise: the u32 of the first fragment. */
  MAX_MAX_MESSAGE_BYTES: 0xffffffff,
  /** ATP_WIRE §3.8: fragment bytes each side may send before the peer has sent any WINDOW. */
  INITIAL_FRAGMENT_WINDOW: 64 * 1024,
  /** ATP_WIRE §3.8: the flow-control window never exceeds 2^31 - 1 bytes. */
  MAX_FRAGMENT_WINDOW: 0x7fffffff,
  /** Extension tail: entries per message. */
  MAX_EXTENSIONS: 64,
  /** Strings: kinds, tags, node agent. */
  MAX_NAME_BYTES: 128,
  MAX_AGENT_BYTES: 256,
  /** Human-readable reasons and messages. */
  MAX_REASON_BYTES: 1024,
  /** Tags per artifact; kinds and capabilities per HELLO. */
  MAX_TAGS: 32,
  MAX_KINDS: 256,
  MAX_CAPABILITIES: 64,
  /** Lease ids per RENEW. */
  MAX_RENEW_IDS: 65536,
  /**
   * revoke-batch: leases one REVOKE or REVOKE_ACK names in its `more` extension (ATP_WIRE §6.31), so
   * that it stays a small control frame (under 16 KiB, never fragmented).
   */
  MAX_REVOKE_BATCH: 256,
  /** Opaque tokens. */
  MAX_TOKEN_BYTES: 4096,
  MAX_RESUME_TOKEN_BYTES: 64,
  /** 2^53 - 1: the largest u64 value ATP carries. */
  MAX_U53: Number.MAX_SAFE_INTEGER,
} as const;

/** Registered capability names (ATP_REGISTRY §5). */
export const Capability = {
  /** One REVOKE, and one REVOKE_ACK, for many leases (ATP_WIRE §6.31, §6.32). */
  REVOKE_BATCH: 'revoke-batch',
} as const;

/** revoke-batch: bytes per entry of REVOKE.more (leaseId, epoch, artifactId) and REVOKE_ACK.more (leaseId, epoch). */
export const REVOKE_ENTRY_BYTES = 36;
export const REVOKE_ACK_ENTRY_BYTES = 20;

/** ATP_SPEC §3.4: artifact states, as carried in STATE, ACCEPTED and RESULT. */
export const ArtifactState = {
  UNKNOWN: 0,
  PENDING: 1,
  LEASED: 2,
  COMPLETED: 3,
  FAILED: 4,
  CANCELLED: 5,
  EXPIRED: 6,
} as const;
/** An artifact state number. */
export type ArtifactState = (typeof ArtifactState)[keyof typeof ArtifactState];

/** Names of artifact states, by number. */
export const ARTIFACT_STATE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(ArtifactState).map(([k, v]) => [v, k]),
);

/** True for COMPLETED, FAILED, CANCELLED and EXPIRED: states that never change again. */
export function isTerminalState(state: number): boolean {
  return state >= ArtifactState.COMPLETED && state <= ArtifactState.EXPIRED;
}

/** ATP_SPEC §2: role bits in HELLO and WELCOME. */
export const Role = {
  WORKER: 1,
  PRODUCER: 2,
  OBSERVER: 4,
} as const;
/** A role bit. */
export type Role = (typeof Role)[keyof typeof Role];

/** ATP_SPEC §9: late-result policies. */
export const LatePolicy = {
  REJECT: 0,
  ACCEPT_IF_UNRESOLVED: 1,
  QUORUM: 2,
} as const;
/** A late-result policy number. */
export type LatePolicy = (typeof LatePolicy)[keyof typeof LatePolicy];

/** ATP_SPEC §7: WATCH scopes. */
export const WatchScope = {
  ARTIFACT: 1,
  SUBTREE: 2,
  TAG: 3,
} as const;
/** A watch scope number. */
export type WatchScope = (typeof WatchScope)[keyof typeof WatchScope];

/** WATCH flags (ATP_WIRE §6.15). */
export const WatchFlags = {
  /** Deliver PARTIAL_RESULT events. */
  PARTIALS: 1,
  /** Send the current STATE of every matching artifact first (and RESULT where terminal). */
  REPLAY: 2,
} as const;

/** ATP_SPEC §8: GOAWAY modes. */
export const GoawayMode = {
  /** Leave now; leases still held are released at once (not a failed attempt, no resume window). */
  CLOSE: 0,
  /** Drain: take no new leases, finish the held ones, then close. */
  DRAIN_FINISH: 1,
  /** Drain: stop the held leases, hand each back with a checkpoint, then close. */
  DRAIN_HANDBACK: 2,
} as const;
/** A GOAWAY mode number. */
export type GoawayMode = (typeof GoawayMode)[keyof typeof GoawayMode];

/** ATP_WIRE §4.6: digest algorithms. */
export const DigestAlg = {
  NONE: 0,
  SHA256: 1,
} as const;

/** Byte length of each digest algorithm's value. */
export const DIGEST_BYTES: Readonly<Record<number, number>> = { 0: 0, 1: 32 };

/** True for a GREASE value 0x?A?A (ATP_REGISTRY §1.3): reserved, never assigned, always ignored. */
export function isGrease(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a;
}
