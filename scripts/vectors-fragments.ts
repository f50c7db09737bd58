/**
 * Declarative definitions of the fragmented-message vectors (ATP_WIRE §3.7): byte streams of
 * several frames, built from messages with encodeFragments() and from named parts, never from hex.
 */
import { FrameFlags, Limits, MessageType, encodeFragments, encodeFrame } from '../src/wire/index.js';
import type { Message, MessageOf } from '../src/wire/index.js';
import type { ErrorCode } from '../src/errors.js';
import { bodyOf, cat, header } from './vectors-bytes.js';
import { VALID, idOf, sha256 } from './vectors-valid.js';

/** A valid stream of frames, with the messages a receiver delivers, in order. */
export interface FragmentedDef {
  readonly id: string;
  readonly description: string;
  /** The frames in order: each fragment and each whole frame. */
  readonly frames: readonly Uint8Array[];
  /** The messages delivered, in order: a fragmented one when its last fragment arrives. */
  readonly decoded: readonly Message[];
  /** The fragmented messages, each also as one whole frame (its body is the reassembled body). */
  readonly unfragmented: readonly Message[];
  readonly maxMessageBytes?: number;
  readonly requirements: readonly string[];
}

/** An invalid stream: frames that are fine up to the one that must be refused. */
export interface FragmentsInvalidDef {
  readonly id: string;
  readonly description: string;
  readonly bytes: Uint8Array;
  readonly error: ErrorCode;
  readonly detectAfterBytes?: number;
  /** 0: before WELCOME, when no message may be fragmented. */
  readonly maxMessageBytes?: number;
  readonly requirements: readonly string[];
}

const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const T = MessageType;
const { MORE, CONTINUATION } = FrameFlags;
const first = <T>(list: readonly T[]): T => {
  const v = list[0];
  if (v === undefined) throw new Error('empty definition list');
  return v;
};

/** The maximum message size of the fragmented vectors: a small one, so that the limit vectors stay short. */
export const VECTOR_MAX_MESSAGE_BYTES = 1024 * 1024;

/** A payload of `n` bytes, deterministic: SHA-256 blocks of a label. */
function bulk(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0, k = 0; off < n; off += 32, k++) out.set(sha256(`${label}:${k}`).subarray(0, Math.min(32, n - off)), off);
  return out;
}

const kind = 'render.tile';
const tilePayload = bulk('tile', 300);
const tileDigest = sha256(kind, Uint8Array.of(0), tilePayload);
const submit: Message = {
  type: 'SUBMIT',
  stream: 5,
  artifactId: tileDigest.slice(0, 16),
  kind,
  priority: 0,
  latePolicy: 0,
  quorumK: 0,
  quorumN: 0,
  leaseTtlMs: 0,
  maxDurationMs: 0,
  deadlineMs: 0,
  maxAttempts: 0,
  watch: 1,
  parentId: new Uint8Array(16),
  tags: [],
  payload: tilePayload,
};
const ping: Message = { type: 'PING', stream: 0, nonce: 0x5eed0003 };
const cancel: Message = { type: 'CANCEL', stream: 7, artifactId: idOf('artifact:other'), subtree: 0, reason: 'not needed' };
const renew: Message = { type: 'RENEW', stream: 9, leaseIds: [] };
const smallLease = first(VALID.LEASE).msg as MessageOf<'LEASE'>;
const bigLease: Message = { ...smallLease, leaseId: idOf('lease:big'), artifactId: idOf('artifact:big'), payload: bulk('big', 200) };

const frags = (msg: Message, size: number): Uint8Array[] => encodeFragments(msg, size);
const [s1, s2, s3] = frags(submit, 128) as [Uint8Array, Uint8Array, Uint8Array];

/** Valid streams with fragmented messages. */
export const FRAGMENTED: readonly FragmentedDef[] = [
  {
    id: 'fragmented/submit-in-3-fragments',
    description:
      'A SUBMIT with a 300-byte payload in fragments of at most 128 payload bytes: the first carries the body length (u32) and 124 bytes, flags MORE; the second 128 bytes, flags MORE|CONTINUATION; the last the rest, flags CONTINUATION.',
    frames: [s1, s2, s3],
    decoded: [submit],
    unfragmented: [submit],
    requirements: ['ATP-4.5-5', 'ATP-4.5-7', 'ATP-14.3-2'],
  },
  {
    id: 'fragmented/interleaved-control-frames',
    description:
      'The same SUBMIT with a PING, a RENEW and a CANCEL of another artifact between its fragments: each is delivered when it arrives, the SUBMIT when its last fragment arrives.',
    frames: [s1, encodeFrame(ping), s2, encodeFrame(renew), encodeFrame(cancel), s3],
    decoded: [ping, renew, cancel, submit],
    unfragmented: [submit],
    requirements: ['ATP-4.5-7', 'ATP-4.5-9', 'ATP-4.7-8', 'ATP-14.3-2'],
  },
  {
    id: 'fragmented/same-type-and-stream-unfragmented',
    description:
      'A fragmented LEASE on stream 0 with a whole LEASE, also on stream 0, between its fragments: the whole frame has no flag, so it is its own message, not a continuation.',
    frames: (() => {
      const [a, ...rest] = frags(bigLease, 160) as [Uint8Array, ...Uint8Array[]];
      return [a, encodeFrame(smallLease), ...rest];
    })(),
    decoded: [smallLease, bigLease],
    unfragmented: [bigLease],
    requirements: ['ATP-4.5-7', 'ATP-4.5-9', 'ATP-14.3-2'],
  },
  {
    id: 'fragmented/smallest',
    description: 'A PING (4-byte body) in two fragments: the first holds the length and 1 byte, the second 3 bytes.',
    frames: frags(ping, 5),
    decoded: [ping],
    unfragmented: [ping],
    requirements: ['ATP-4.5-5', 'ATP-4.5-7', 'ATP-14.3-2'],
  },
  {
    id: 'fragmented/back-to-back',
    description: 'Two fragmented messages one after the other: the second starts once the last fragment of the first is sent.',
    frames: [...frags(bigLease, 100), ...frags(submit, 200)],
    decoded: [bigLease, submit],
    unfragmented: [bigLease, submit],
    requirements: ['ATP-4.5-7', 'ATP-14.3-2'],
  },
  {
    id: 'fragmented/grease-type',
    description:
      'A message of GREASE type 0x2a3a in fragments, then a PING: the fragments are checked and read past without being kept, and the message is ignored.',
    frames: [
      cat(header(4 + 40, 0x2a3a, 3, MORE), u32(100), bulk('grease', 40)),
      cat(header(60, 0x2a3a, 3, CONTINUATION), bulk('grease-2', 60)),
      encodeFrame(ping),
    ],
    decoded: [ping],
    unfragmented: [],
    requirements: ['ATP-4.4-5', 'ATP-4.5-7', 'ATP-14.3-2'],
  },
];

const bodySubmit = bodyOf(submit);
const sTotal = bodySubmit.length;
const firstOf = (type: number, stream: number, total: number, body: Uint8Array | number[]): Uint8Array =>
  cat(header(4 + body.length, type, stream, MORE), u32(total), body);
const contOf = (type: number, stream: number, body: Uint8Array, more: boolean): Uint8Array =>
  cat(header(body.length, type, stream, CONTINUATION | (more ? MORE : 0)), body);
const badKind = (() => {
  // The SUBMIT body with its kind replaced by an overlong UTF-8 sequence of the same length.
  const b = Uint8Array.from(bodySubmit);
  b.set([0xc0, 0xae], 16 + 2);
  return b;
})();

/** Streams that must be refused. */
export const FRAGMENTS_INVALID: readonly FragmentsInvalidDef[] = [
  {
    id: 'fragments/continuation-without-message',
    description: 'A continuation fragment with no fragmented message in progress.',
    bytes: s2,
    error: 'ATP_ERR_PROTOCOL',
    detectAfterBytes: 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/continuation-of-another-type',
    description: 'A SUBMIT is in progress on stream 5; a continuation of type PING on stream 5 arrives.',
    bytes: cat(s1, contOf(T.PING, 5, bulk('x', 8), true)),
    error: 'ATP_ERR_PROTOCOL',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/continuation-on-another-stream',
    description: 'A SUBMIT is in progress on stream 5; a SUBMIT continuation on stream 7 arrives.',
    bytes: cat(s1, contOf(T.SUBMIT, 7, bodySubmit.subarray(124, 252), true)),
    error: 'ATP_ERR_PROTOCOL',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/second-message-in-progress',
    description:
      'A first fragment (MORE without CONTINUATION) while another fragmented message is in progress: one at a time per direction.',
    bytes: cat(s1, firstOf(T.SUBMIT, 7, sTotal, bodySubmit.subarray(0, 100))),
    error: 'ATP_ERR_PROTOCOL',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/message-over-limit',
    description: `A first fragment announcing a body of ${VECTOR_MAX_MESSAGE_BYTES + 1} bytes, one more than the receiver's limit: refused from the header and the length alone, before the message is allocated.`,
    bytes: firstOf(T.SUBMIT, 5, VECTOR_MAX_MESSAGE_BYTES + 1, bodySubmit.subarray(0, 100)),
    error: 'ATP_ERR_FRAME_TOO_LARGE',
    detectAfterBytes: 16,
    requirements: ['ATP-4.5-6'],
  },
  {
    id: 'fragments/message-length-max-u32',
    description: 'A first fragment announcing a body of 0xffffffff bytes: refused from its first 16 bytes.',
    bytes: firstOf(T.LEASE, 0, 0xffffffff, bulk('y', 64)),
    error: 'ATP_ERR_FRAME_TOO_LARGE',
    detectAfterBytes: 16,
    requirements: ['ATP-4.5-6'],
  },
  {
    id: 'fragments/fragment-over-frame-limit',
    description: 'A continuation whose frame length exceeds maxFrameBytes: the frame limit applies to every fragment.',
    bytes: cat(s1, header(Limits.DEFAULT_MAX_FRAME_BYTES + 1, T.SUBMIT, 5, CONTINUATION | MORE)),
    error: 'ATP_ERR_FRAME_TOO_LARGE',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-3'],
  },
  {
    id: 'fragments/runs-past-the-length',
    description: 'A continuation carrying more bytes than the message has left.',
    bytes: cat(s1, contOf(T.SUBMIT, 5, cat(bodySubmit.subarray(124), [0]), false)),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/last-fragment-short',
    description: 'A last fragment (CONTINUATION without MORE) that leaves the message one byte short.',
    bytes: cat(s1, contOf(T.SUBMIT, 5, bodySubmit.subarray(124, sTotal - 1), false)),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/more-on-the-last-bytes',
    description: 'A fragment that completes the message but is flagged MORE.',
    bytes: cat(s1, contOf(T.SUBMIT, 5, bodySubmit.subarray(124), true)),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/first-holds-everything',
    description: 'A first fragment (MORE) that already holds the whole body: a fragmented message spans at least two frames.',
    bytes: firstOf(T.SUBMIT, 5, sTotal, bodySubmit),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: 16,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/first-without-body',
    description: 'A first fragment of 4 bytes: the length, and no byte of the body.',
    bytes: cat(header(4, T.SUBMIT, 5, MORE), u32(sTotal)),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/empty-continuation',
    description: 'An empty continuation fragment.',
    bytes: cat(s1, header(0, T.SUBMIT, 5, CONTINUATION | MORE)),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: s1.length + 12,
    requirements: ['ATP-4.5-7'],
  },
  {
    id: 'fragments/length-below-fixed-part',
    description: 'A fragmented PING announcing a body of 3 bytes: its fixed part needs 4.',
    bytes: cat(firstOf(T.PING, 0, 3, [0, 0]), contOf(T.PING, 0, Uint8Array.of(1), false)),
    error: 'ATP_ERR_ENCODING',
    detectAfterBytes: 16,
    requirements: ['ATP-4.5-7', 'ATP-4.9-3'],
  },
  {
    id: 'fragments/before-welcome',
    description: 'A first fragment before WELCOME, when messages are not fragmented (the receiver has no message limit yet).',
    bytes: s1,
    error: 'ATP_ERR_PROTOCOL',
    detectAfterBytes: 12,
    maxMessageBytes: 0,
    requirements: ['ATP-4.5-5'],
  },
  {
    id: 'fragments/malformed-body',
    description:
      'Well-formed fragments whose reassembled SUBMIT body is not: its kind is an overlong UTF-8 sequence. Refused once the last fragment has arrived.',
    bytes: cat(...frags({ ...submit }, 128).map((f, i) => (i === 0 ? cat(f.subarray(0, 16), badKind.subarray(0, 124)) : f))),
    error: 'ATP_ERR_ENCODING',
    requirements: ['ATP-4.9-3'],
  },
];
