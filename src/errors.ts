/**
 * The error catalog: every error ATP can report, with its stable string code, its numeric wire
 * code and its class. This table is the registry's error table (docs/ATP_REGISTRY.md §4); a test
 * fails when the two disagree.
 *
 * Wire codes are u16 laid out as 0xNCxx: N = namespace (0 core), C = class.
 */

/** Error classes (ATP_REGISTRY §4.1): what a receiver does with a code, even one it does not know. */
export const ErrorClass = {
  /** The connection is closed after the frame that carries it. */
  CONNECTION: 0,
  /** The operation may be retried (and the artifact re-leased). */
  RETRYABLE: 1,
  /** The operation must not be retried as it is. */
  PERMANENT: 2,
  /** Authentication or permission. */
  AUTH: 3,
} as const;
/** An error class number. */
export type ErrorClass = (typeof ErrorClass)[keyof typeof ErrorClass];

interface CatalogEntry {
  readonly wire: number;
  readonly summary: string;
}

/** The catalog, keyed by stable string code. Append only: a code is never renumbered or reused. */
export const ERROR_CATALOG = {
  ATP_ERR_NONE: { wire: 0x0000, summary: 'No error; a graceful close.' },
  ATP_ERR_PROTOCOL: { wire: 0x0001, summary: 'A frame broke a protocol rule (wrong state, wrong role, wrong scope).' },
  ATP_ERR_INTERNAL: { wire: 0x0002, summary: 'The sender failed internally.' },
  ATP_ERR_FRAME_TOO_LARGE: { wire: 0x0003, summary: 'A frame or message length exceeds the negotiated maximum or the limits of its type.' },
  ATP_ERR_ENCODING: { wire: 0x0004, summary: 'A message body is malformed: truncated, overlong, bad UTF-8, bad extension tail.' },
  ATP_ERR_UNSUPPORTED_VERSION: { wire: 0x0005, summary: 'No protocol version in common.' },
  ATP_ERR_WRONG_PROTOCOL: {
    wire: 0x0006,
    summary: 'The connection preface is not ATP (for example an HTTP request or a TLS hello on a plain port).',
  },
  ATP_ERR_HANDSHAKE_TIMEOUT: { wire: 0x0007, summary: 'The preface or HELLO (or, at a client, WELCOME) did not arrive in time.' },
  ATP_ERR_IDLE_TIMEOUT: {
    wire: 0x0008,
    summary:
      'No complete frame arrived within the idle timeout, or a fragmented message stopped arriving for that long, or crawled below the minimum rate while other messages waited for memory (ATP-4.8-7).',
  },
  ATP_ERR_ENHANCE_YOUR_CALM: { wire: 0x0009, summary: 'The peer exceeded a rate budget (pings, errors, unknown frames).' },
  ATP_ERR_PARAM: { wire: 0x000a, summary: 'A HELLO or WELCOME parameter is invalid.' },
  ATP_ERR_SHUTTING_DOWN: { wire: 0x000b, summary: 'The sender is shutting down.' },
  ATP_ERR_FLOW_CONTROL: {
    wire: 0x000c,
    summary: 'Credit was violated: more leases than credits, a credit overflow, or fragments beyond the window.',
  },
  ATP_ERR_SESSION_REPLACED: { wire: 0x000d, summary: 'The session was resumed on another connection.' },
  ATP_ERR_TRANSIENT: { wire: 0x0100, summary: 'A temporary failure; retry.' },
  ATP_ERR_OVERLOADED: { wire: 0x0101, summary: 'The coordinator is overloaded; retry later.' },
  ATP_ERR_UNAVAILABLE: { wire: 0x0102, summary: 'A dependency (the store) is unavailable; retry later.' },
  ATP_ERR_WORKER_LEAVING: { wire: 0x0103, summary: 'The worker is leaving; the lease was handed back.' },
  ATP_ERR_LEASE_EXPIRED: {
    wire: 0x0104,
    summary: 'The lease expired (ttl, maximum duration, or the resume window passed) and the artifact may be re-leased.',
  },
  ATP_ERR_HANDLER: { wire: 0x0105, summary: 'The handler failed; the artifact may be retried.' },
  ATP_ERR_PERMANENT: { wire: 0x0200, summary: 'A permanent failure; do not retry as is.' },
  ATP_ERR_CONFLICT: { wire: 0x0201, summary: 'The artifact id is bound to other content.' },
  ATP_ERR_NOT_FOUND: { wire: 0x0202, summary: 'No such artifact or lease.' },
  ATP_ERR_INVALID_ARGUMENT: { wire: 0x0203, summary: 'A field value is out of range or inconsistent.' },
  ATP_ERR_STALE_LEASE: { wire: 0x0204, summary: 'The lease is not current: the frame is fenced and refused.' },
  ATP_ERR_CANCELLED: { wire: 0x0205, summary: 'The artifact was cancelled.' },
  ATP_ERR_EXPIRED: { wire: 0x0206, summary: 'The artifact deadline passed before it completed.' },
  ATP_ERR_PAYLOAD_TOO_LARGE: { wire: 0x0207, summary: 'A payload, result, partial or checkpoint exceeds its limit.' },
  ATP_ERR_INTEGRITY: { wire: 0x0208, summary: 'A digest does not match the bytes it names.' },
  ATP_ERR_HANDLER_FATAL: { wire: 0x0209, summary: 'The handler failed and said the failure is not retryable.' },
  ATP_ERR_ATTEMPTS_EXHAUSTED: { wire: 0x020a, summary: 'The artifact failed on every allowed attempt.' },
  ATP_ERR_QUORUM_DISAGREEMENT: { wire: 0x020b, summary: 'Quorum results disagreed: no k of n results had equal digests.' },
  ATP_ERR_NO_HANDLER: { wire: 0x020c, summary: 'The worker has no handler for the artifact kind.' },
  ATP_ERR_UNAUTHORIZED: { wire: 0x0300, summary: 'Authentication is required.' },
  ATP_ERR_AUTH_FAILED: { wire: 0x0301, summary: 'The credentials were refused.' },
  ATP_ERR_FORBIDDEN: { wire: 0x0302, summary: 'The role or tenant may not perform this operation.' },
} as const satisfies Record<string, CatalogEntry>;

/** A stable string error code, e.g. `ATP_ERR_STALE_LEASE`. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

const byWire = new Map<number, ErrorCode>();
for (const [code, entry] of Object.entries(ERROR_CATALOG)) byWire.set(entry.wire, code as ErrorCode);

/** Numeric wire code of a string code. */
export function wireCodeOf(code: ErrorCode): number {
  return ERROR_CATALOG[code].wire;
}

/** The class nibble of any wire code, registered or not (ATP_REGISTRY §4.1). */
export function classOfWire(wire: number): ErrorClass {
  const c = (wire >> 8) & 0x0f;
  return (c <= 3 ? c : ErrorClass.PERMANENT) as ErrorClass;
}

/**
 * The string code of a wire code. An unregistered code maps to the generic code of its class,
 * so that a receiver can act on codes it does not know (ATP_REGISTRY §4.1).
 */
export function codeOfWire(wire: number): ErrorCode {
  const known = byWire.get(wire);
  if (known !== undefined) return known;
  switch (classOfWire(wire)) {
    case ErrorClass.CONNECTION:
      return 'ATP_ERR_INTERNAL';
    case ErrorClass.RETRYABLE:
      return 'ATP_ERR_TRANSIENT';
    case ErrorClass.AUTH:
      return 'ATP_ERR_UNAUTHORIZED';
    default:
      return 'ATP_ERR_PERMANENT';
  }
}

/** Whether the wire code is retryable by class. */
export function isRetryableWire(wire: number): boolean {
  return classOfWire(wire) === ErrorClass.RETRYABLE;
}

/** Every error ATP raises: a registered code, a message, and the wire code it travels as. */
export class AtpError extends Error {
  readonly code: ErrorCode;
  readonly wire: number;
  /** Extra context (an artifact id in hex, a message type) for diagnostics. */
  readonly detail: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'AtpError';
    this.code = code;
    this.wire = ERROR_CATALOG[code].wire;
    this.detail = detail;
  }

  /** The class of this error. */
  get errorClass(): ErrorClass {
    return classOfWire(this.wire);
  }

  /** Build an AtpError from a code received on the wire. */
  static fromWire(wire: number, message: string, detail?: Record<string, unknown>): AtpError {
    return new AtpError(codeOfWire(wire), message, { ...detail, wireCode: wire });
  }
}

/** True when the value is an AtpError, optionally with the given code. */
export function isAtpError(value: unknown, code?: ErrorCode): value is AtpError {
  return value instanceof AtpError && (code === undefined || value.code === code);
}
