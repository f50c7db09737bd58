/**
 * Declarative definitions of the valid test vectors: at least one realistic message per type.
 * gen-vectors.ts encodes them; nothing here is hex. Ids and digests are derived with SHA-256 from
 * labels and contents, so that the files are deterministic and the digests are the real ones.
 */
import { createHash } from 'node:crypto';
import { ArtifactState, GoawayMode, LatePolicy, Limits, MessageType, Role, WatchFlags, WatchScope } from '../src/wire/index.js';
import type { Digest, Message, MessageName } from '../src/wire/index.js';
import { wireCodeOf } from '../src/errors.js';

/** One valid message vector, before encoding. */
export interface ValidDef {
  readonly id: string;
  readonly description: string;
  readonly msg: Message;
  /** The receiver's limit; the default maximum unless the message travels before WELCOME. */
  readonly maxFrameBytes?: number;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** SHA-256 of the concatenated parts (strings as UTF-8). */
export function sha256(...parts: (string | Uint8Array)[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? utf8(p) : p);
  return new Uint8Array(h.digest());
}

/** A deterministic 16-byte id standing in for a random one (lease, node and session ids). */
export const idOf = (label: string): Uint8Array => sha256(label).slice(0, 16);

/** ATP_SPEC §4: digest = SHA-256(utf8(kind) || 0x00 || payload); default id = its first 16 bytes. */
function artifact(kind: string, payload: Uint8Array): { kind: string; payload: Uint8Array; id: Uint8Array; digest: Digest } {
  const value = sha256(kind, Uint8Array.of(0), payload);
  return { kind, payload, id: value.slice(0, 16), digest: { alg: 1, value } };
}

/** REVOKE.more (leaseId, epoch, artifactId) or REVOKE_ACK.more (leaseId, epoch) entries, packed. */
function revokeEntries(entries: ReadonlyArray<readonly [Uint8Array, number, Uint8Array?]>): Uint8Array {
  const parts: number[] = [];
  for (const [leaseId, epoch, artifactId] of entries) {
    parts.push(...leaseId, epoch >>> 24, (epoch >>> 16) & 0xff, (epoch >>> 8) & 0xff, epoch & 0xff);
    if (artifactId !== undefined) parts.push(...artifactId);
  }
  return Uint8Array.from(parts);
}

const ZERO_ID = new Uint8Array(16);
const NONE: Digest = { alg: 0, value: new Uint8Array(0) };
const PRE_WELCOME = Limits.PRE_WELCOME_MAX_FRAME_BYTES;
const err = wireCodeOf;

const plan = artifact('batch.plan', utf8('{"batch":"2026-11-25/thumbs","items":2}'));
const thumb = artifact('thumbnail.render', utf8('{"src":"s3://media/img-0042.png","width":256,"height":256,"format":"webp"}'));
const video = artifact('video/transcode:h264', utf8('{"src":"s3://media/clip-7.mov","crf":23,"preset":"medium"}'));
const node = idOf('node:worker-eu-1');
const session = idOf('session:1');
const resumeToken = sha256('resume-token:session:1');
const lease1 = idOf('lease:1');
const lease2 = idOf('lease:2');
const lease3 = idOf('lease:3');
const thumbResult = utf8('RIFF\u0000\u0010\u0000\u0000WEBPVP8 thumbnail-bytes-of-img-0042 (256x256)');
const checkpoint = utf8('{"frame":1440,"of":4320,"segment":"seg-0003.ts"}');

/** Valid vectors by message type, each type with at least one. */
export const VALID: { readonly [N in MessageName]: readonly ValidDef[] } = {
  HELLO: [
    {
      id: 'worker',
      description: 'A worker opens a session: two kinds, 8 credits, a GREASE capability name, no extensions.',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'HELLO',
        stream: 0,
        minVersion: 1,
        maxVersion: 1,
        roles: Role.WORKER,
        nodeId: node,
        credits: 8,
        maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
        idleTimeoutMs: 30_000,
        agent: 'atp-js/0.1.0 node/20.11',
        kinds: ['thumbnail.render', 'video/transcode:h264'],
        capabilities: ['grease.q7rk2'],
      },
    },
    {
      id: 'producer-with-auth-and-tenant',
      description: 'A producer and observer authenticates with a bearer token and names its tenant (extensions 0x0001 and 0x0004).',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'HELLO',
        stream: 0,
        minVersion: 1,
        maxVersion: 3,
        roles: Role.PRODUCER | Role.OBSERVER,
        nodeId: idOf('node:api-gateway-2'),
        credits: 0,
        maxFrameBytes: 4 * 1024 * 1024,
        idleTimeoutMs: 0,
        agent: 'atp-py/0.3.1 cpython/3.12',
        kinds: [],
        capabilities: [],
        authToken: utf8('atp_tok_3f9c2a71e4b84d0c9a5e'),
        tenant: 'acme-media',
      },
    },
    {
      id: 'worker-resume',
      description: 'A worker reconnects within the resume window: extensions 0x0002 resumeSessionId and 0x0003 resumeToken.',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'HELLO',
        stream: 0,
        minVersion: 1,
        maxVersion: 1,
        roles: Role.WORKER | Role.PRODUCER,
        nodeId: node,
        credits: 6,
        maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
        idleTimeoutMs: 30_000,
        agent: 'atp-js/0.1.0 node/20.11',
        kinds: ['thumbnail.render'],
        capabilities: [],
        resumeSessionId: session,
        resumeToken,
      },
    },
    {
      id: 'all-extensions',
      description:
        'Every HELLO extension at once, in ascending id order; the tenant name is not ASCII, and the client accepts messages of up to 64 MiB in fragments (0x0005).',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'HELLO',
        stream: 0,
        minVersion: 1,
        maxVersion: 1,
        roles: Role.WORKER | Role.PRODUCER | Role.OBSERVER,
        nodeId: node,
        credits: 1,
        maxFrameBytes: Limits.MIN_MAX_FRAME_BYTES,
        idleTimeoutMs: 15_000,
        agent: 'atp-go/1.0.0',
        kinds: ['batch.plan'],
        capabilities: ['grease.x1', 'grease.k0q'],
        authToken: utf8('atp_tok_9d1e'),
        resumeSessionId: session,
        resumeToken,
        tenant: 'société-générale',
        maxMessageBytes: 64 * 1024 * 1024,
      },
    },
  ],
  WELCOME: [
    {
      id: 'new-session',
      description: 'The coordinator accepts a new session with the default limits and a 32-byte resume token.',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'WELCOME',
        stream: 0,
        version: 1,
        roles: Role.WORKER,
        resumed: 0,
        sessionId: session,
        resumeToken,
        heartbeatMs: 10_000,
        idleTimeoutMs: 30_000,
        maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
        resumeWindowMs: 5_000,
        cancelDeadlineMs: 5_000,
        agent: 'atp-js/0.1.0 coordinator',
        capabilities: [],
      },
    },
    {
      id: 'resumed-session',
      description: 'A resumed session: same session id, resumed=1, the leases are kept.',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'WELCOME',
        stream: 0,
        version: 1,
        roles: Role.WORKER | Role.PRODUCER,
        resumed: 1,
        sessionId: session,
        resumeToken: sha256('resume-token:session:1:2'),
        heartbeatMs: 5_000,
        idleTimeoutMs: 15_000,
        maxFrameBytes: Limits.MIN_MAX_FRAME_BYTES,
        resumeWindowMs: 5_000,
        cancelDeadlineMs: 2_000,
        agent: 'atp-js/0.1.0 coordinator',
        capabilities: ['trace-context'],
      },
    },
    {
      id: 'max-message',
      description: 'A new session whose coordinator accepts messages of up to 256 MiB in fragments of up to 1 MiB (extension 0x0001).',
      maxFrameBytes: PRE_WELCOME,
      msg: {
        type: 'WELCOME',
        stream: 0,
        version: 1,
        roles: Role.PRODUCER | Role.OBSERVER,
        resumed: 0,
        sessionId: idOf('session:2'),
        resumeToken: sha256('resume-token:session:2'),
        heartbeatMs: 10_000,
        idleTimeoutMs: 30_000,
        maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
        resumeWindowMs: 5_000,
        cancelDeadlineMs: 5_000,
        agent: 'atp-js/0.1.0 coordinator',
        capabilities: [],
        maxMessageBytes: Limits.DEFAULT_MAX_MESSAGE_BYTES,
      },
    },
  ],
  WINDOW: [
    {
      id: 'grant',
      description: "The receiver of a fragmented message has taken in 64 KiB of fragments and gives them back to the sender's window.",
      msg: { type: 'WINDOW', stream: 0, bytes: 64 * 1024 },
    },
  ],
  PING: [{ id: 'nonce', description: 'A keepalive probe on stream 0.', msg: { type: 'PING', stream: 0, nonce: 0x5eed0001 } }],
  PONG: [{ id: 'nonce', description: 'The answer to that PING, echoing the nonce.', msg: { type: 'PONG', stream: 0, nonce: 0x5eed0001 } }],
  GOAWAY: [
    {
      id: 'drain-finish',
      description: 'A worker drains: no new leases, finish the held ones within 30 s.',
      msg: {
        type: 'GOAWAY',
        stream: 0,
        code: err('ATP_ERR_NONE'),
        mode: GoawayMode.DRAIN_FINISH,
        deadlineMs: 30_000,
        reason: 'rolling restart',
      },
    },
    {
      id: 'shutting-down',
      description: 'The coordinator shuts down and closes at once.',
      msg: {
        type: 'GOAWAY',
        stream: 0,
        code: err('ATP_ERR_SHUTTING_DOWN'),
        mode: GoawayMode.CLOSE,
        deadlineMs: 0,
        reason: 'coordinator shutting down',
      },
    },
  ],
  ERROR: [
    {
      id: 'forbidden',
      description: 'A SUBMIT from a session without the producer role is refused on its stream.',
      msg: {
        type: 'ERROR',
        stream: 3,
        code: err('ATP_ERR_FORBIDDEN'),
        offendingType: MessageType.SUBMIT,
        subject: ZERO_ID,
        message: 'role producer is not granted to this session',
      },
    },
    {
      id: 'conflict',
      description: 'The artifact id is already bound to other content; the subject names it.',
      msg: {
        type: 'ERROR',
        stream: 7,
        code: err('ATP_ERR_CONFLICT'),
        offendingType: MessageType.SUBMIT,
        subject: thumb.id,
        message: 'artifact id is bound to digest 5f1c… (other content)',
      },
    },
    {
      id: 'message-with-bom',
      description: 'A message that begins with U+FEFF and holds a 4-byte character: a decoder keeps the BOM (no stripping).',
      msg: {
        type: 'ERROR',
        stream: 0,
        code: err('ATP_ERR_PROTOCOL'),
        offendingType: 0,
        subject: ZERO_ID,
        message: '\uFEFFpasted from a file 📎',
      },
    },
  ],
  SUBMIT: [
    {
      id: 'with-result-watch',
      description: 'A producer submits a thumbnail job under a parent, with tags, asking for the result on this stream.',
      msg: {
        type: 'SUBMIT',
        stream: 5,
        artifactId: thumb.id,
        kind: thumb.kind,
        priority: 10,
        latePolicy: LatePolicy.REJECT,
        quorumK: 0,
        quorumN: 0,
        leaseTtlMs: 0,
        maxDurationMs: 120_000,
        deadlineMs: 3_600_000,
        maxAttempts: 0,
        watch: 1,
        parentId: plan.id,
        tags: ['batch:2026-11-25/thumbs', 'région-eu'],
        payload: thumb.payload,
      },
    },
    {
      id: 'quorum',
      description: 'A transcode that must be done by 3 workers with 2 equal results, watching states and partials.',
      msg: {
        type: 'SUBMIT',
        stream: 9,
        artifactId: video.id,
        kind: video.kind,
        priority: 255,
        latePolicy: LatePolicy.QUORUM,
        quorumK: 2,
        quorumN: 3,
        leaseTtlMs: 10_000,
        maxDurationMs: 0,
        deadlineMs: 0,
        maxAttempts: 5,
        watch: 1 | 2 | 4,
        parentId: ZERO_ID,
        tags: [],
        payload: video.payload,
      },
    },
    {
      id: 'empty-payload',
      description: 'A root artifact with an empty payload and default options.',
      msg: {
        type: 'SUBMIT',
        stream: 1,
        artifactId: artifact('noop', new Uint8Array(0)).id,
        kind: 'noop',
        priority: 0,
        latePolicy: LatePolicy.ACCEPT_IF_UNRESOLVED,
        quorumK: 0,
        quorumN: 0,
        leaseTtlMs: 0,
        maxDurationMs: 0,
        deadlineMs: 0,
        maxAttempts: 0,
        watch: 0,
        parentId: ZERO_ID,
        tags: [],
        payload: new Uint8Array(0),
      },
    },
  ],
  ACCEPTED: [
    {
      id: 'new',
      description: 'The thumbnail job is durable and pending.',
      msg: { type: 'ACCEPTED', stream: 5, artifactId: thumb.id, digest: thumb.digest, state: ArtifactState.PENDING, duplicate: 0 },
    },
    {
      id: 'duplicate-completed',
      description: 'The same content was submitted before and has completed: a memoized duplicate.',
      msg: { type: 'ACCEPTED', stream: 11, artifactId: thumb.id, digest: thumb.digest, state: ArtifactState.COMPLETED, duplicate: 1 },
    },
  ],
  CANCEL: [
    {
      id: 'subtree',
      description: 'Cancel a batch and every descendant, present and future.',
      msg: { type: 'CANCEL', stream: 13, artifactId: plan.id, subtree: 1, reason: 'batch aborted by operator' },
    },
  ],
  CANCEL_RESULT: [
    {
      id: 'counts',
      description: 'The answer: 12 cancelled, 3 already finished, 2 leased ones still stopping.',
      msg: { type: 'CANCEL_RESULT', stream: 13, artifactId: plan.id, cancelled: 12, alreadyFinished: 3, stopping: 2 },
    },
  ],
  WATCH: [
    {
      id: 'tag-with-replay',
      description: 'Watch every artifact with a tag, with partial results, replaying current states first.',
      msg: {
        type: 'WATCH',
        stream: 15,
        scope: WatchScope.TAG,
        flags: WatchFlags.PARTIALS | WatchFlags.REPLAY,
        artifactId: ZERO_ID,
        tag: 'batch:2026-11-25/thumbs',
      },
    },
    {
      id: 'subtree',
      description: 'Watch a subtree, without partial results.',
      msg: { type: 'WATCH', stream: 17, scope: WatchScope.SUBTREE, flags: 0, artifactId: plan.id, tag: '' },
    },
  ],
  UNWATCH: [{ id: 'stream', description: 'End the watch opened on stream 15.', msg: { type: 'UNWATCH', stream: 19, watchStream: 15 } }],
  QUERY: [
    {
      id: 'with-result',
      description: 'Ask for the state of an artifact and its result if terminal.',
      msg: { type: 'QUERY', stream: 21, artifactId: thumb.id, withResult: 1 },
    },
  ],
  STATE: [
    {
      id: 'leased',
      description: 'A watch event: the artifact was leased for the second time.',
      msg: {
        type: 'STATE',
        stream: 15,
        artifactId: thumb.id,
        state: ArtifactState.LEASED,
        attempts: 2,
        epoch: 2,
        code: 0,
        lastPartialSeq: 4,
        parentId: plan.id,
        kind: thumb.kind,
        message: '',
      },
    },
    {
      id: 'failed-exhausted',
      description: 'A QUERY answer: failed on every allowed attempt.',
      msg: {
        type: 'STATE',
        stream: 21,
        artifactId: video.id,
        state: ArtifactState.FAILED,
        attempts: 3,
        epoch: 3,
        code: err('ATP_ERR_ATTEMPTS_EXHAUSTED'),
        lastPartialSeq: 0,
        parentId: ZERO_ID,
        kind: video.kind,
        message: 'lease expired on attempt 3 of 3',
      },
    },
    {
      id: 'unknown',
      description: 'A QUERY answer for an artifact the coordinator does not know: state 0.',
      msg: {
        type: 'STATE',
        stream: 23,
        artifactId: idOf('artifact:missing'),
        state: ArtifactState.UNKNOWN,
        attempts: 0,
        epoch: 0,
        code: 0,
        lastPartialSeq: 0,
        parentId: ZERO_ID,
        kind: '',
        message: '',
      },
    },
  ],
  RESULT: [
    {
      id: 'completed',
      description: 'The thumbnail completed: result bytes and their SHA-256 digest.',
      msg: {
        type: 'RESULT',
        stream: 5,
        artifactId: thumb.id,
        state: ArtifactState.COMPLETED,
        code: 0,
        digest: { alg: 1, value: sha256(thumbResult) },
        message: '',
        result: thumbResult,
        checkpoint: new Uint8Array(0),
      },
    },
    {
      id: 'failed',
      description: 'A failed transcode: no digest, the last partial result and the last checkpoint.',
      msg: {
        type: 'RESULT',
        stream: 9,
        artifactId: video.id,
        state: ArtifactState.FAILED,
        code: err('ATP_ERR_HANDLER_FATAL'),
        digest: NONE,
        message: 'ffmpeg exited with status 1: unsupported codec prores_ks',
        result: utf8('{"progress":0.33}'),
        checkpoint,
      },
    },
  ],
  PARTIAL_RESULT: [
    {
      id: 'progress',
      description: 'A partial result fanned out to a watcher.',
      msg: { type: 'PARTIAL_RESULT', stream: 9, artifactId: video.id, seq: 3, epoch: 1, data: utf8('{"progress":0.33}') },
    },
  ],
  CREDIT: [{ id: 'slots', description: 'A worker frees 2 slots.', msg: { type: 'CREDIT', stream: 0, credits: 2 } }],
  LEASE: [
    {
      id: 'first',
      description: 'The first lease of the thumbnail job: no checkpoint yet.',
      msg: {
        type: 'LEASE',
        stream: 0,
        leaseId: lease1,
        artifactId: thumb.id,
        epoch: 1,
        attempt: 1,
        ttlMs: 30_000,
        maxDurationMs: 120_000,
        deadlineMs: 3_599_250,
        lastPartialSeq: 0,
        kind: thumb.kind,
        parentId: plan.id,
        digest: thumb.digest,
        checkpoint: new Uint8Array(0),
        payload: thumb.payload,
      },
    },
    {
      id: 'resume-from-checkpoint',
      description: 'A re-issued lease at epoch 3 that carries the last checkpoint and partial sequence.',
      msg: {
        type: 'LEASE',
        stream: 0,
        leaseId: lease3,
        artifactId: video.id,
        epoch: 3,
        attempt: 3,
        ttlMs: 10_000,
        maxDurationMs: 0,
        deadlineMs: 0,
        lastPartialSeq: 3,
        kind: video.kind,
        parentId: ZERO_ID,
        digest: video.digest,
        checkpoint,
        payload: video.payload,
      },
    },
  ],
  RENEW: [
    { id: 'all', description: 'Renew every lease of the session (empty list).', msg: { type: 'RENEW', stream: 25, leaseIds: [] } },
    {
      id: 'listed',
      description: 'Renew three listed leases.',
      msg: { type: 'RENEW', stream: 27, leaseIds: [lease1, lease2, lease3] },
    },
  ],
  RENEWED: [
    {
      id: 'all',
      description: 'The answer: 3 leases renewed, the shortest ttl is 10 s.',
      msg: { type: 'RENEWED', stream: 25, ttlMs: 10_000, renewed: 3 },
    },
  ],
  LEASE_LOST: [
    {
      id: 'stale',
      description: 'A stale reply to a COMPLETE under a lease that is no longer current.',
      msg: {
        type: 'LEASE_LOST',
        stream: 29,
        leaseId: lease2,
        epoch: 2,
        artifactId: video.id,
        code: err('ATP_ERR_STALE_LEASE'),
        message: 'lease epoch 2 is not current (epoch 3)',
      },
    },
    {
      id: 'expired-notice',
      description: 'A pushed notice on stream 0: the lease expired.',
      msg: {
        type: 'LEASE_LOST',
        stream: 0,
        leaseId: lease1,
        epoch: 1,
        artifactId: thumb.id,
        code: err('ATP_ERR_LEASE_EXPIRED'),
        message: 'not renewed within 30000 ms',
      },
    },
  ],
  PARTIAL: [
    {
      id: 'progress',
      description: 'A worker reports progress under its lease.',
      msg: { type: 'PARTIAL', stream: 31, leaseId: lease3, epoch: 3, seq: 4, data: utf8('{"progress":0.5}') },
    },
  ],
  CHECKPOINT: [
    {
      id: 'segment',
      description: 'A worker stores a checkpoint.',
      msg: { type: 'CHECKPOINT', stream: 33, leaseId: lease3, epoch: 3, data: checkpoint },
    },
  ],
  COMPLETE: [
    {
      id: 'thumbnail',
      description: 'A worker completes the thumbnail.',
      msg: { type: 'COMPLETE', stream: 35, leaseId: lease1, epoch: 1, result: thumbResult },
    },
  ],
  FAIL: [
    {
      id: 'retryable',
      description: 'A retryable failure.',
      msg: {
        type: 'FAIL',
        stream: 37,
        leaseId: lease2,
        epoch: 2,
        code: err('ATP_ERR_HANDLER'),
        retryable: 1,
        message: 'ECONNRESET while fetching s3://media/clip-7.mov',
      },
    },
    {
      id: 'fatal',
      description: 'A failure the handler says is not retryable.',
      msg: {
        type: 'FAIL',
        stream: 39,
        leaseId: lease3,
        epoch: 3,
        code: err('ATP_ERR_HANDLER_FATAL'),
        retryable: 0,
        message: 'unsupported codec prores_ks',
      },
    },
  ],
  RELEASE: [
    {
      id: 'handback',
      description: 'A draining worker hands a lease back with a final checkpoint.',
      msg: { type: 'RELEASE', stream: 41, leaseId: lease3, epoch: 3, hasCheckpoint: 1, checkpoint, reason: 'worker draining (handback)' },
    },
  ],
  REVOKE: [
    {
      id: 'cancelled',
      description: 'The coordinator revokes a lease whose artifact was cancelled; 5 s to acknowledge.',
      msg: {
        type: 'REVOKE',
        stream: 0,
        leaseId: lease1,
        epoch: 1,
        artifactId: thumb.id,
        code: err('ATP_ERR_CANCELLED'),
        deadlineMs: 5_000,
        reason: 'batch aborted by operator',
      },
    },
    {
      id: 'batch',
      description: 'revoke-batch agreed: a subtree cancel revokes three leases in one REVOKE, two of them in `more` (36 bytes each).',
      msg: {
        type: 'REVOKE',
        stream: 0,
        leaseId: lease1,
        epoch: 1,
        artifactId: thumb.id,
        code: err('ATP_ERR_CANCELLED'),
        deadlineMs: 5_000,
        reason: 'subtree pruned',
        more: revokeEntries([
          [lease2, 2, idOf('artifact-2')],
          [lease3, 3, idOf('artifact-3')],
        ]),
      },
    },
  ],
  REVOKE_ACK: [
    { id: 'stopped', description: 'The revoked handler has stopped.', msg: { type: 'REVOKE_ACK', stream: 43, leaseId: lease1, epoch: 1 } },
    {
      id: 'batch',
      description: 'revoke-batch agreed: three handlers stopped, acknowledged in one REVOKE_ACK, two of them in `more` (20 bytes each).',
      msg: {
        type: 'REVOKE_ACK',
        stream: 0,
        leaseId: lease1,
        epoch: 1,
        more: revokeEntries([
          [lease2, 2],
          [lease3, 3],
        ]),
      },
    },
  ],
  ACK: [
    {
      id: 'complete',
      description: 'The COMPLETE is durable.',
      msg: { type: 'ACK', stream: 35, ackedType: MessageType.COMPLETE, subject: lease1 },
    },
    {
      id: 'unwatch',
      description: 'The UNWATCH is done; no subject.',
      msg: { type: 'ACK', stream: 19, ackedType: MessageType.UNWATCH, subject: ZERO_ID },
    },
  ],
};
