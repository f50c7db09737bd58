/**
 * The message schema of ATP v1: one declaration per message type, giving its code, its fixed part
 * (frozen for v1) and the extension fields it knows. The codec, the dump tool, the docs check and
 * the test vectors all read this table; docs/ATP_WIRE.md §6 is its prose form.
 */
import { Limits } from './constants.js';

/** Field encodings (ATP_WIRE §4). */
export type FieldKind =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u53' // u64 on the wire, at most 2^53-1
  | 'id' // 16 raw bytes
  | 'digest' // u8 algorithm, u8 length, value
  | 'str' // u16 length, UTF-8
  | 'sbytes' // u16 length, bytes
  | 'bytes' // u32 length, bytes
  | 'strs' // u16 count, then str each
  | 'ids'; // u32 count, then 16 bytes each

/** One field of a message's fixed part. `max` bounds a length or a count. */
export interface FieldSpec {
  readonly name: string;
  readonly kind: FieldKind;
  readonly max?: number;
  readonly doc: string;
}

/** One known extension field of a message (ATP_WIRE §5). */
export interface ExtSpec extends FieldSpec {
  readonly id: number;
}

/** Which side may send a message: the connecting side, the coordinator, or both. */
export type Sender = 'client' | 'coordinator' | 'both';
/** The role a client needs to send (or receive) a message; null for session messages. */
export type NeedsRole = 'worker' | 'producer' | 'observer' | null;

/** A message type's declaration. */
export interface MessageSpec {
  readonly code: number;
  readonly sender: Sender;
  readonly role: NeedsRole;
  readonly doc: string;
  readonly fields: readonly FieldSpec[];
  readonly ext: readonly ExtSpec[];
}

const f = <const N extends string, const K extends FieldKind>(name: N, kind: K, doc: string, max?: number) =>
  ({ name, kind, doc, ...(max === undefined ? {} : { max }) }) as {
    readonly name: N;
    readonly kind: K;
    readonly max?: number;
    readonly doc: string;
  };
const x = <const N extends string, const K extends FieldKind>(id: number, name: N, kind: K, doc: string, max?: number) =>
  ({ id, name, kind, doc, ...(max === undefined ? {} : { max }) }) as {
    readonly id: number;
    readonly name: N;
    readonly kind: K;
    readonly max?: number;
    readonly doc: string;
  };

const L = Limits;
const leaseRef = [f('leaseId', 'id', 'Lease being reported on.'), f('epoch', 'u32', 'Epoch of that lease.')] as const;

/** All message types of ATP v1, by name. Codes are fixed by docs/ATP_REGISTRY.md §2. */
export const MESSAGES = {
  HELLO: {
    code: 0x0001,
    sender: 'client',
    role: null,
    doc: 'Opens a session: versions, roles, identity, credits and limits.',
    fields: [
      f('minVersion', 'u16', 'Lowest protocol version the sender speaks.'),
      f('maxVersion', 'u16', 'Highest protocol version the sender speaks.'),
      f('roles', 'u8', 'Role bits requested: 1 worker, 2 producer, 4 observer.'),
      f('nodeId', 'id', 'Stable identity of the sending node, kept across reconnects.'),
      f('credits', 'u32', 'Worker: leases it will take now (its free slots).'),
      f('maxFrameBytes', 'u32', 'Largest frame payload the sender accepts.'),
      f('idleTimeoutMs', 'u32', 'Idle timeout the sender wants; 0 for none.'),
      f('agent', 'str', 'Implementation name and version, informational.', L.MAX_AGENT_BYTES),
      f('kinds', 'strs', 'Worker: the artifact kinds it handles.', L.MAX_KINDS),
      f('capabilities', 'strs', 'Optional features the sender supports.', L.MAX_CAPABILITIES),
    ],
    ext: [
      x(0x0001, 'authToken', 'sbytes', 'Bearer token for authentication. Never logged.', L.MAX_TOKEN_BYTES),
      x(0x0002, 'resumeSessionId', 'id', 'Session to resume.'),
      x(0x0003, 'resumeToken', 'sbytes', 'Resume token of that session.', L.MAX_RESUME_TOKEN_BYTES),
      x(0x0004, 'tenant', 'str', 'Tenant the session acts for.', L.MAX_NAME_BYTES),
      x(0x0005, 'maxMessageBytes', 'u32', 'Largest message body the sender accepts, fragmented or not; absent: its maxFrameBytes.'),
    ],
  },
  WELCOME: {
    code: 0x0002,
    sender: 'coordinator',
    role: null,
    doc: 'Accepts a session: chosen version, granted roles, effective limits, resume token.',
    fields: [
      f('version', 'u16', 'Chosen protocol version.'),
      f('roles', 'u8', 'Role bits granted.'),
      f('resumed', 'u8', '1 when an earlier session (and its leases) was resumed, else 0.'),
      f('sessionId', 'id', 'Id of this session.'),
      f('resumeToken', 'sbytes', 'Secret that resumes this session within the resume window.', L.MAX_RESUME_TOKEN_BYTES),
      f('heartbeatMs', 'u32', 'Interval at which the client sends RENEW or PING.'),
      f('idleTimeoutMs', 'u32', 'Effective idle timeout: the smaller non-zero of both.'),
      f('maxFrameBytes', 'u32', 'Largest frame payload the coordinator accepts.'),
      f('resumeWindowMs', 'u32', 'How long a dropped session may be resumed.'),
      f('cancelDeadlineMs', 'u32', 'How long a worker has to acknowledge a REVOKE.'),
      f('agent', 'str', 'Implementation name and version, informational.', L.MAX_AGENT_BYTES),
      f('capabilities', 'strs', 'The agreed optional features: on only when both sides list them.', L.MAX_CAPABILITIES),
    ],
    ext: [
      x(0x0001, 'maxMessageBytes', 'u32', 'Largest message body the coordinator accepts, fragmented or not; absent: its maxFrameBytes.'),
    ],
  },
  PING: {
    code: 0x0003,
    sender: 'both',
    role: null,
    doc: 'Liveness probe; answered by PONG with the same nonce.',
    fields: [f('nonce', 'u32', 'Opaque value echoed by PONG.')],
    ext: [],
  },
  PONG: {
    code: 0x0004,
    sender: 'both',
    role: null,
    doc: 'Answer to PING.',
    fields: [f('nonce', 'u32', 'The PING nonce.')],
    ext: [],
  },
  GOAWAY: {
    code: 0x0005,
    sender: 'both',
    role: null,
    doc: 'Ends a session, at once or after a drain (finish or hand back).',
    fields: [
      f('code', 'u16', 'Error code; ATP_ERR_NONE for a graceful leave.'),
      f('mode', 'u8', '0 close now, 1 drain and finish, 2 drain and hand back.'),
      f('deadlineMs', 'u32', 'Drain deadline; 0 for the receiver default.'),
      f('reason', 'str', 'Human-readable reason.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  ERROR: {
    code: 0x0006,
    sender: 'both',
    role: null,
    doc: 'Refuses a request (on its stream) or reports a fatal error before close (stream 0).',
    fields: [
      f('code', 'u16', 'Registered error code.'),
      f('offendingType', 'u16', 'Type of the frame that caused it; 0 if none.'),
      f('subject', 'id', 'Artifact or lease concerned; zeros if none.'),
      f('message', 'str', 'Human-readable message.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  SUBMIT: {
    code: 0x0010,
    sender: 'client',
    role: 'producer',
    doc: 'Submits one artifact; answered by ACCEPTED or ERROR on the same stream.',
    fields: [
      f('artifactId', 'id', 'Artifact id: derived from the content digest, or chosen by the producer.'),
      f('kind', 'str', 'Artifact kind, which selects the worker handler.', L.MAX_NAME_BYTES),
      f('priority', 'u8', 'Higher is leased first.'),
      f('latePolicy', 'u8', '0 reject, 1 accept if unresolved, 2 quorum.'),
      f('quorumK', 'u8', 'Quorum: equal results needed.'),
      f('quorumN', 'u8', 'Quorum: leases issued on distinct workers.'),
      f('leaseTtlMs', 'u32', 'Lease ttl; 0 for the coordinator default.'),
      f('maxDurationMs', 'u32', 'Longest a single lease may be held, renewals included; 0 for no limit.'),
      f('deadlineMs', 'u32', 'Time from acceptance after which the artifact expires; 0 for none.'),
      f('maxAttempts', 'u16', 'Failed attempts after which it fails; 0 for the default.'),
      f('watch', 'u8', 'Events to send on this stream: 1 RESULT when terminal, 2 STATE changes, 4 partial results.'),
      f('parentId', 'id', 'Parent artifact; zeros for none.'),
      f('tags', 'strs', 'Tags for WATCH and QUERY.', L.MAX_TAGS),
      f('payload', 'bytes', 'Immutable payload bytes.'),
    ],
    ext: [],
  },
  ACCEPTED: {
    code: 0x0011,
    sender: 'coordinator',
    role: 'producer',
    doc: 'Answer to SUBMIT, sent once the artifact is durable.',
    fields: [
      f('artifactId', 'id', 'The artifact id.'),
      f('digest', 'digest', 'Content digest the id is bound to.'),
      f('state', 'u8', 'Current state (a duplicate may already be terminal).'),
      f('duplicate', 'u8', '1 when the same content was already submitted.'),
    ],
    ext: [],
  },
  CANCEL: {
    code: 0x0012,
    sender: 'client',
    role: 'producer',
    doc: 'Cancels one artifact or its subtree; answered by CANCEL_RESULT.',
    fields: [
      f('artifactId', 'id', 'Artifact to cancel.'),
      f('subtree', 'u8', '1 to cancel every descendant, present and future.'),
      f('reason', 'str', 'Reason, passed to the handlers.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  CANCEL_RESULT: {
    code: 0x0013,
    sender: 'coordinator',
    role: 'producer',
    doc: 'Answer to CANCEL: how many were cancelled, already finished, still stopping.',
    fields: [
      f('artifactId', 'id', 'The artifact named by CANCEL.'),
      f('cancelled', 'u32', 'Artifacts that became CANCELLED.'),
      f('alreadyFinished', 'u32', 'Artifacts that were already terminal.'),
      f('stopping', 'u32', 'Cancelled artifacts whose leases are being revoked.'),
    ],
    ext: [],
  },
  WATCH: {
    code: 0x0014,
    sender: 'client',
    role: 'observer',
    doc: 'Subscribes to state changes, partial results and results; events arrive on this stream.',
    fields: [
      f('scope', 'u8', '1 artifact, 2 subtree, 3 tag.'),
      f('flags', 'u8', 'Bit 1: partial results; bit 2: replay current state.'),
      f('artifactId', 'id', 'Artifact or subtree root (scope 1 and 2).'),
      f('tag', 'str', 'Tag (scope 3).', L.MAX_NAME_BYTES),
    ],
    ext: [],
  },
  UNWATCH: {
    code: 0x0015,
    sender: 'client',
    role: 'observer',
    doc: 'Ends the watch opened on the given stream.',
    fields: [f('watchStream', 'u32', 'Stream id of the WATCH.')],
    ext: [],
  },
  QUERY: {
    code: 0x0016,
    sender: 'client',
    role: 'observer',
    doc: 'Asks for the current state of an artifact; answered by STATE (and RESULT when terminal).',
    fields: [f('artifactId', 'id', 'Artifact to query.'), f('withResult', 'u8', '1 to also receive RESULT when terminal.')],
    ext: [],
  },
  STATE: {
    code: 0x0017,
    sender: 'coordinator',
    role: 'observer',
    doc: 'The state of an artifact: a watch event or a QUERY answer.',
    fields: [
      f('artifactId', 'id', 'The artifact.'),
      f('state', 'u8', 'Its state; 0 if unknown.'),
      f('attempts', 'u16', 'Leases issued so far.'),
      f('epoch', 'u32', 'Epoch of the current or last lease.'),
      f('code', 'u16', 'Error code of a FAILED, CANCELLED or EXPIRED artifact, else 0.'),
      f('lastPartialSeq', 'u32', 'Sequence of the last accepted partial result; 0 if none.'),
      f('parentId', 'id', 'Parent artifact; zeros for none.'),
      f('kind', 'str', 'Artifact kind.', L.MAX_NAME_BYTES),
      f('message', 'str', 'Reason or failure message.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  RESULT: {
    code: 0x0018,
    sender: 'coordinator',
    role: 'observer',
    doc: 'The outcome of a terminal artifact: its result, or its failure with the last partial and checkpoint.',
    fields: [
      f('artifactId', 'id', 'The artifact.'),
      f('state', 'u8', 'Terminal state.'),
      f('code', 'u16', 'Error code when not COMPLETED.'),
      f('digest', 'digest', 'Digest of the result bytes; none when not COMPLETED.'),
      f('message', 'str', 'Failure message.', L.MAX_REASON_BYTES),
      f('result', 'bytes', 'Result bytes (COMPLETED), else the last partial result.'),
      f('checkpoint', 'bytes', 'The last checkpoint, if any.'),
    ],
    ext: [],
  },
  PARTIAL_RESULT: {
    code: 0x0019,
    sender: 'coordinator',
    role: 'observer',
    doc: 'A partial result accepted from the current lease, fanned out to watchers in order.',
    fields: [
      f('artifactId', 'id', 'The artifact.'),
      f('seq', 'u32', 'Sequence number: 1, 2, 3 ... with no gap, across leases.'),
      f('epoch', 'u32', 'Epoch of the lease that produced it.'),
      f('data', 'bytes', 'Partial result bytes.'),
    ],
    ext: [],
  },
  CREDIT: {
    code: 0x0020,
    sender: 'client',
    role: 'worker',
    doc: 'Adds lease credits: free slots the worker now has.',
    fields: [f('credits', 'u32', 'Credits to add.')],
    ext: [],
  },
  LEASE: {
    code: 0x0021,
    sender: 'coordinator',
    role: 'worker',
    doc: 'Grants a lease on an artifact, with its payload and the last checkpoint.',
    fields: [
      f('leaseId', 'id', 'Id of this lease, unique.'),
      f('artifactId', 'id', 'The artifact.'),
      f('epoch', 'u32', 'Per-artifact epoch; rises with every lease.'),
      f('attempt', 'u16', 'Which attempt this lease is (1 for the first).'),
      f('ttlMs', 'u32', 'Lease ttl, renewed by RENEW.'),
      f('maxDurationMs', 'u32', 'Time after which the lease ends whatever the renewals; 0 for none.'),
      f('deadlineMs', 'u32', 'Time left before the artifact expires; 0 for none.'),
      f('lastPartialSeq', 'u32', 'Sequence of the last accepted partial result; the next is this + 1.'),
      f('kind', 'str', 'Artifact kind.', L.MAX_NAME_BYTES),
      f('parentId', 'id', 'Parent artifact; zeros for none.'),
      f('digest', 'digest', 'Content digest of the artifact.'),
      f('checkpoint', 'bytes', 'Last checkpoint stored by an earlier lease; empty if none.'),
      f('payload', 'bytes', 'The artifact payload.'),
    ],
    ext: [],
  },
  RENEW: {
    code: 0x0022,
    sender: 'client',
    role: 'worker',
    doc: 'Renews leases: the listed ones, or every lease of the session when the list is empty.',
    fields: [f('leaseIds', 'ids', 'Leases to renew; empty renews all.', L.MAX_RENEW_IDS)],
    ext: [],
  },
  RENEWED: {
    code: 0x0023,
    sender: 'coordinator',
    role: 'worker',
    doc: 'Answer to RENEW: the new ttl and how many leases it covers.',
    fields: [f('ttlMs', 'u32', 'Ttl granted from now, for the shortest-ttl lease renewed.'), f('renewed', 'u32', 'Leases renewed.')],
    ext: [],
  },
  LEASE_LOST: {
    code: 0x0024,
    sender: 'coordinator',
    role: 'worker',
    doc: 'The lease is not current: a stale reply to a fenced frame, or a notice that it ended.',
    fields: [
      ...leaseRef,
      f('artifactId', 'id', 'The artifact.'),
      f('code', 'u16', 'Why: ATP_ERR_STALE_LEASE, ATP_ERR_LEASE_EXPIRED, ATP_ERR_CANCELLED, ...'),
      f('message', 'str', 'Human-readable reason.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  PARTIAL: {
    code: 0x0025,
    sender: 'client',
    role: 'worker',
    doc: 'A partial result under a lease; sequence numbers rise by one.',
    fields: [...leaseRef, f('seq', 'u32', 'Sequence number: last accepted + 1.'), f('data', 'bytes', 'Partial result bytes.')],
    ext: [],
  },
  CHECKPOINT: {
    code: 0x0026,
    sender: 'client',
    role: 'worker',
    doc: 'Stores a checkpoint under a lease; it replaces the previous one and goes to the next lease.',
    fields: [...leaseRef, f('data', 'bytes', 'Checkpoint bytes.')],
    ext: [],
  },
  COMPLETE: {
    code: 0x0027,
    sender: 'client',
    role: 'worker',
    doc: 'Completes the artifact under a lease; answered by ACK or LEASE_LOST.',
    fields: [...leaseRef, f('result', 'bytes', 'Result bytes.')],
    ext: [],
  },
  FAIL: {
    code: 0x0028,
    sender: 'client',
    role: 'worker',
    doc: 'Reports a failed attempt; answered by ACK or LEASE_LOST.',
    fields: [
      ...leaseRef,
      f('code', 'u16', 'Error code of the failure.'),
      f('retryable', 'u8', '1 if another attempt may succeed.'),
      f('message', 'str', 'Failure message.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  RELEASE: {
    code: 0x0029,
    sender: 'client',
    role: 'worker',
    doc: 'Hands a lease back unfinished, with an optional final checkpoint, for immediate re-issue.',
    fields: [
      ...leaseRef,
      f('hasCheckpoint', 'u8', '1 when checkpoint replaces the stored one.'),
      f('checkpoint', 'bytes', 'Final checkpoint.'),
      f('reason', 'str', 'Why it is handed back.', L.MAX_REASON_BYTES),
    ],
    ext: [],
  },
  REVOKE: {
    code: 0x002a,
    sender: 'coordinator',
    role: 'worker',
    doc: 'Orders the worker to stop a lease (cancel, deadline, drain); acknowledged by REVOKE_ACK.',
    fields: [
      ...leaseRef,
      f('artifactId', 'id', 'The artifact.'),
      f('code', 'u16', 'Why: ATP_ERR_CANCELLED, ATP_ERR_EXPIRED, ATP_ERR_WORKER_LEAVING, ...'),
      f('deadlineMs', 'u32', 'Time to acknowledge before the lease is fenced anyway.'),
      f('reason', 'str', 'Human-readable reason.', L.MAX_REASON_BYTES),
    ],
    ext: [
      x(
        0x0001,
        'more',
        'sbytes',
        'revoke-batch: more leases revoked alike, 36 bytes each (leaseId, epoch, artifactId).',
        L.MAX_REVOKE_BATCH * 36,
      ),
    ],
  },
  REVOKE_ACK: {
    code: 0x002b,
    sender: 'client',
    role: 'worker',
    doc: 'The handler of a revoked lease has stopped.',
    fields: [...leaseRef],
    ext: [x(0x0001, 'more', 'sbytes', 'revoke-batch: more stopped leases, 20 bytes each (leaseId, epoch).', L.MAX_REVOKE_BATCH * 20)],
  },
  ACK: {
    code: 0x002c,
    sender: 'coordinator',
    role: null,
    doc: 'Positive answer to COMPLETE, FAIL, RELEASE, UNWATCH, WATCH and GOAWAY drains: the transition is durable.',
    fields: [f('ackedType', 'u16', 'Type of the acknowledged frame.'), f('subject', 'id', 'Lease or artifact concerned; zeros if none.')],
    ext: [],
  },
  // Types added after v1.0 come last, whatever their code: the position of a type in this table
  // picks the GREASE extension id of its test vectors (scripts/gen-vectors.ts), which must not move.
  WINDOW: {
    code: 0x0007,
    sender: 'both',
    role: null,
    doc: 'Flow control of fragmented messages: the peer may send this many more bytes of fragments.',
    fields: [f('bytes', 'u32', 'Fragment bytes added to the window of the peer (at least 1).')],
    ext: [],
  },
} as const satisfies Record<string, MessageSpec>;

/** A message type name, e.g. `'SUBMIT'`. */
export type MessageName = keyof typeof MESSAGES;

/** A digest: algorithm number and value bytes. Algorithm 0 with no bytes means none. */
export interface Digest {
  alg: number;
  value: Uint8Array;
}

interface KindValues {
  u8: number;
  u16: number;
  u32: number;
  u53: number;
  id: Uint8Array;
  digest: Digest;
  str: string;
  sbytes: Uint8Array;
  bytes: Uint8Array;
  strs: string[];
  ids: Uint8Array[];
}

type FixedFields<F extends readonly FieldSpec[]> = { [E in F[number] as E['name']]: KindValues[E['kind']] };
type ExtFields<X extends readonly ExtSpec[]> = { [E in X[number] as E['name']]?: KindValues[E['kind']] };

/** The typed message of one type: its name, the stream it travels on, and its fields. */
export type MessageOf<N extends MessageName> = { type: N; stream: number } & FixedFields<(typeof MESSAGES)[N]['fields']> &
  ExtFields<(typeof MESSAGES)[N]['ext']>;

/** Any ATP v1 message. */
export type Message = { [N in MessageName]: MessageOf<N> }[MessageName];

/** Message type codes by name (ATP_REGISTRY §2). */
export const MessageType = Object.fromEntries(Object.entries(MESSAGES).map(([n, s]) => [n, s.code])) as {
  readonly [N in MessageName]: (typeof MESSAGES)[N]['code'];
};

const nameByCode = new Map<number, MessageName>();
for (const [n, s] of Object.entries(MESSAGES)) nameByCode.set(s.code, n as MessageName);

/** Name of a registered message code, or undefined. */
export function messageNameOf(code: number): MessageName | undefined {
  return nameByCode.get(code);
}
