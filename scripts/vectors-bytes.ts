/**
 * Declarative definitions of the vectors that are built from parts rather than from a message:
 * invalid frames with the error each must produce, frames a decoder must skip or read past, and
 * connection prefaces. Every byte comes from a named builder (u16, str, ext ...), never from hex.
 */
import { encodeFrame, Limits, MessageType, PREFACE } from '../src/wire/index.js';
import type { Message } from '../src/wire/index.js';
import type { ErrorCode } from '../src/errors.js';
import { VALID, idOf, sha256 } from './vectors-valid.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Concatenate byte parts; numbers are single bytes. */
export function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
const u8 = (n: number): number[] => [n & 0xff];
const u16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];
const u24 = (n: number): number[] => [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
/** A str field: u16 length then UTF-8. */
const str = (s: string): Uint8Array => cat(u16(utf8(s).length), utf8(s));
/** A str field whose value is given as raw bytes (for invalid UTF-8). */
const strRaw = (b: number[]): Uint8Array => cat(u16(b.length), b);
const repeat = (byte: number, n: number): Uint8Array => new Uint8Array(n).fill(byte);

/** An extension entry: u16 id, u16 length, value. */
export const ext = (id: number, value: Uint8Array | number[]): Uint8Array => cat(u16(id), u16(value.length), value);

/** A frame header: u32 length, u16 type, u8 flags, u8 reserved, u32 stream (R bit included). */
export function header(length: number, type: number, streamField = 0, flags = 0, reserved = 0): Uint8Array {
  return cat(u32(length), u16(type), u8(flags), u8(reserved), u32(streamField));
}

/** A whole frame around a body, with the length taken from the body. */
export const frame = (type: number, stream: number, body: Uint8Array): Uint8Array => cat(header(body.length, type, stream), body);

/** The encoded body (without header) of a message. */
export const bodyOf = (msg: Message): Uint8Array => encodeFrame(msg).subarray(12);

/** A message's frame with extra bytes appended to its body (and the length adjusted). */
export const withTail = (msg: Message, ...tail: Uint8Array[]): Uint8Array =>
  frame(MessageType[msg.type], msg.stream, cat(bodyOf(msg), ...tail));

/** A frame that must be rejected, with its error. */
export interface InvalidDef {
  readonly id: string;
  readonly description: string;
  readonly bytes: Uint8Array;
  readonly error: ErrorCode;
  /** Set when the error must be raised from the first N bytes alone (the header), before buffering. */
  readonly detectAfterBytes?: number;
  readonly maxFrameBytes?: number;
  /** ATP_SPEC requirement ids the case checks; gen-vectors.ts supplies a default from the error. */
  readonly requirements?: readonly string[];
}

/** A frame built from parts that decodes (to a message, or to nothing when it must be skipped). */
export interface BytesDef {
  readonly id: string;
  readonly description: string;
  readonly bytes: Uint8Array;
  readonly decoded: Message | null;
  readonly maxFrameBytes?: number;
  readonly requirements: readonly string[];
}

const first = <T>(list: readonly T[]): T => {
  const v = list[0];
  if (v === undefined) throw new Error('empty definition list');
  return v;
};
const ping = first(VALID.PING).msg;
const helloWorker = first(VALID.HELLO).msg;
const node = idOf('node:worker-eu-1');
const session = idOf('session:1');
const DEFAULT = Limits.DEFAULT_MAX_FRAME_BYTES;
const T = MessageType;

/** The fixed part of a HELLO up to and including `agent`, for lists built by hand. */
const helloHead = cat(u16(1), u16(1), u8(1), node, u32(8), u32(DEFAULT), u32(30_000), str('atp-js/0.1.0'));
/** The fixed part of an ERROR up to `message`. */
const errorHead = cat(u16(4), u16(T.SUBMIT), new Uint8Array(16));

/** The 256 GREASE values 0x?A?A in ascending order. */
const GREASE_IDS = Array.from({ length: 256 }, (_, k) => ((k >> 4) << 12) | 0x0a00 | ((k & 15) << 4) | 0x0a);

/** Valid frames built from parts, by the file they go to. */
export const VALID_BYTES: { readonly [file: string]: readonly BytesDef[] } = {
  PING: [
    {
      id: 'PING/reserved-bits-ignored',
      description:
        'Every flag bit but MORE and CONTINUATION (flags 0xfc), reserved byte 0xff and the stream R bit set: v1 ignores all three (stream 5).',
      bytes: cat(header(4, T.PING, 0x80000005, 0xfc, 0xff), u32(0x5eed0002)),
      decoded: { type: 'PING', stream: 5, nonce: 0x5eed0002 },
      requirements: ['ATP-14.3-2'],
    },
    {
      id: 'PING/64-grease-extensions',
      description: 'The most extension entries a body may carry (64), all GREASE, all empty: ignored.',
      bytes: withTail(ping, ...GREASE_IDS.slice(0, 64).map((id) => ext(id, []))),
      decoded: ping,
      requirements: ['ATP-4.4-4'],
    },
  ],
  ignored: [
    {
      id: 'ignored/grease-type-0a0a',
      description: 'A frame of GREASE type 0x0a0a: skipped by its length and ignored.',
      bytes: frame(0x0a0a, 0, utf8('grease')),
      decoded: null,
      requirements: ['ATP-4.4-5'],
    },
    {
      id: 'ignored/grease-type-fafa-empty',
      description: 'An empty frame of GREASE type 0xfafa on a request stream: ignored.',
      bytes: frame(0xfafa, 7, new Uint8Array(0)),
      decoded: null,
      requirements: ['ATP-4.4-5'],
    },
    {
      id: 'ignored/grease-type-4a7a-large',
      description: 'A GREASE frame of 300 bytes: ignored whole, the next frame still parses.',
      bytes: frame(0x4a7a, 0, repeat(0x5a, 300)),
      decoded: null,
      requirements: ['ATP-4.4-5'],
    },
  ],
};

/** Invalid frames, by the file they go to. */
export const INVALID: { readonly [file: string]: readonly InvalidDef[] } = {
  header: [
    {
      id: 'header/length-max-u32',
      description: 'Length 0xffffffff: refused from the 12-byte header alone, before any buffer is allocated.',
      bytes: cat(header(0xffffffff, T.PING), u32(1)),
      error: 'ATP_ERR_FRAME_TOO_LARGE',
      detectAfterBytes: 12,
    },
    {
      id: 'header/length-over-pre-welcome-limit',
      description: 'A HELLO of 16385 bytes before WELCOME (limit 16384): refused from the header alone.',
      bytes: cat(header(Limits.PRE_WELCOME_MAX_FRAME_BYTES + 1, T.HELLO), bodyOf(helloWorker)),
      error: 'ATP_ERR_FRAME_TOO_LARGE',
      detectAfterBytes: 12,
      maxFrameBytes: Limits.PRE_WELCOME_MAX_FRAME_BYTES,
      requirements: ['ATP-4.5-1', 'ATP-4.5-3'],
    },
    {
      id: 'header/length-over-limit-grease-type',
      description: 'The length limit applies to types the receiver ignores too.',
      bytes: cat(header(DEFAULT + 1, 0x1a1a), utf8('grease')),
      error: 'ATP_ERR_FRAME_TOO_LARGE',
      detectAfterBytes: 12,
    },
    {
      id: 'header/http-request-as-frame',
      description: '"GET / HTTP/1.1" where a frame is expected reads as length 0x47455420: refused from the header.',
      bytes: utf8('GET / HTTP/1.1\r\nHost: atp.example\r\n\r\n'),
      error: 'ATP_ERR_FRAME_TOO_LARGE',
      detectAfterBytes: 12,
    },
    {
      id: 'header/type-0000',
      description: 'Type 0x0000 is reserved.',
      bytes: header(0, 0x0000),
      error: 'ATP_ERR_PROTOCOL',
      detectAfterBytes: 12,
    },
    {
      id: 'header/type-ff01',
      description: 'Types 0xff00-0xffff are reserved.',
      bytes: cat(header(4, 0xff01), u32(1)),
      error: 'ATP_ERR_PROTOCOL',
      detectAfterBytes: 12,
    },
    {
      id: 'header/type-ffff',
      description: 'Type 0xffff is reserved.',
      bytes: header(0, 0xffff, 1),
      error: 'ATP_ERR_PROTOCOL',
      detectAfterBytes: 12,
    },
    {
      id: 'header/ping-shorter-than-fixed-part',
      description: 'A PING of 3 bytes: its fixed part needs 4. Refused from the header.',
      bytes: cat(header(3, T.PING), [0, 0, 1]),
      error: 'ATP_ERR_ENCODING',
      detectAfterBytes: 12,
    },
    {
      id: 'header/empty-lease',
      description: 'An empty LEASE: shorter than its fixed part.',
      bytes: header(0, T.LEASE),
      error: 'ATP_ERR_ENCODING',
      detectAfterBytes: 12,
    },
  ],
  fields: [
    {
      id: 'fields/str-truncated',
      description: 'WATCH tag says 10 bytes, the body ends after 5.',
      bytes: frame(T.WATCH, 15, cat(u8(3), u8(0), new Uint8Array(16), u16(10), utf8('batch'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/str-over-max',
      description: 'WATCH tag of 129 bytes: the limit is 128.',
      bytes: frame(T.WATCH, 15, cat(u8(3), u8(0), new Uint8Array(16), u16(129), repeat(0x61, 129))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/strs-entry-over-max',
      description: 'A HELLO kind of 129 bytes: list entries are at most 128.',
      bytes: frame(T.HELLO, 0, cat(helloHead, u16(1), u16(129), repeat(0x6b, 129), u16(0))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/utf8-invalid-continuation',
      description: 'ERROR message bytes c3 28: a lead byte without its continuation.',
      bytes: frame(T.ERROR, 1, cat(errorHead, strRaw([0x6f, 0x6b, 0xc3, 0x28]))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/utf8-overlong',
      description: 'ERROR message bytes c0 af: an overlong encoding of "/".',
      bytes: frame(T.ERROR, 1, cat(errorHead, strRaw([0x2e, 0x2e, 0xc0, 0xaf]))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/utf8-surrogate',
      description: 'ERROR message bytes ed a0 80: a UTF-16 surrogate encoded in UTF-8.',
      bytes: frame(T.ERROR, 1, cat(errorHead, strRaw([0xed, 0xa0, 0x80]))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/utf8-truncated-sequence',
      description: 'ERROR message ending inside a 3-byte sequence (e2 82 of the euro sign).',
      bytes: frame(T.ERROR, 1, cat(errorHead, strRaw([0x31, 0x30, 0xe2, 0x82]))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/utf8-byte-ff',
      description: 'A kind containing byte ff, which never occurs in UTF-8.',
      bytes: frame(T.HELLO, 0, cat(helloHead, u16(1), strRaw([0x6b, 0xff]), u16(0))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/digest-sha256-length-31',
      description: 'ACCEPTED digest with algorithm 1 (SHA-256) and length 31: SHA-256 has 32.',
      bytes: frame(T.ACCEPTED, 5, cat(idOf('artifact:x'), u8(1), u8(31), sha256('x').subarray(0, 31), u8(1), u8(0))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/digest-none-with-bytes',
      description: 'Digest algorithm 0 (none) with 4 value bytes: none has 0.',
      bytes: frame(T.ACCEPTED, 5, cat(idOf('artifact:x'), u8(0), u8(4), [1, 2, 3, 4], u8(1), u8(0))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/digest-value-truncated',
      description: 'Digest of an unknown algorithm 7 that says 200 bytes; 10 remain.',
      bytes: frame(T.ACCEPTED, 5, cat(idOf('artifact:x'), u8(7), u8(200), repeat(0x77, 10))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/strs-count-over-limit',
      description: 'HELLO kinds count 60000 (limit 256) followed by 6 bytes: refused before any loop.',
      bytes: frame(T.HELLO, 0, cat(helloHead, u16(60_000), u16(1), utf8('a'), u16(1), utf8('b'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/strs-count-amplification',
      description: 'HELLO kinds count 200 (within the limit) with 6 bytes left: count x 2 > remaining, refused before looping.',
      bytes: frame(T.HELLO, 0, cat(helloHead, u16(200), u16(1), utf8('a'), u16(1), utf8('b'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/ids-count-amplification',
      description: 'RENEW ids count 60000 with 2 ids present: count x 16 > remaining, refused before allocating.',
      bytes: frame(T.RENEW, 25, cat(u32(60_000), idOf('lease:1'), idOf('lease:2'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/ids-count-max-u32',
      description: 'RENEW ids count 0xffffffff (over the 65536 limit).',
      bytes: frame(T.RENEW, 25, cat(u32(0xffffffff), idOf('lease:1'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/bytes-length-past-end',
      description: 'PARTIAL_RESULT data length 0xfffffff0 with 3 bytes present.',
      bytes: frame(T.PARTIAL_RESULT, 9, cat(idOf('artifact:x'), u32(1), u32(1), u32(0xfffffff0), [1, 2, 3])),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'fields/sbytes-over-max',
      description: 'WELCOME resume token of 65 bytes: the limit is 64.',
      bytes: frame(
        T.WELCOME,
        0,
        cat(u16(1), u8(1), u8(0), session, u16(65), repeat(0x72, 65), u32(10_000), u32(30_000), u32(DEFAULT), u32(5_000), u32(5_000)),
      ),
      error: 'ATP_ERR_ENCODING',
    },
  ],
  extensions: [
    {
      id: 'extensions/not-ascending',
      description: 'HELLO extension 0x0004 (tenant) before 0x0001 (authToken).',
      bytes: withTail(helloWorker, ext(0x0004, str('acme')), ext(0x0001, utf8('tok'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/duplicate-known',
      description: 'HELLO extension 0x0004 twice.',
      bytes: withTail(helloWorker, ext(0x0004, str('acme')), ext(0x0004, str('evil'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/duplicate-grease',
      description: 'A GREASE extension id twice: ignored ids still follow the ordering rule.',
      bytes: withTail(ping, ext(0x1a1a, [1]), ext(0x1a1a, [2])),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/length-past-end',
      description: 'HELLO extension 0x0004 says 50 bytes; 6 remain.',
      bytes: withTail(helloWorker, cat(u16(0x0004), u16(50), str('acme'))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/header-truncated',
      description: 'Three bytes after the fixed part: too few for an extension header.',
      bytes: withTail(ping, Uint8Array.of(0x1a, 0x1a, 0x00)),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/known-trailing-bytes',
      description: 'HELLO resumeSessionId (0x0002) with 17 bytes: an id is 16, the extra byte is refused.',
      bytes: withTail(helloWorker, ext(0x0002, cat(session, [0]))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/known-string-shorter-than-entry',
      description: 'HELLO tenant (0x0004) whose string says 4 bytes inside an entry of 7.',
      bytes: withTail(helloWorker, ext(0x0004, cat(str('acme'), utf8('xyz')))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/known-value-truncated',
      description: 'HELLO resumeSessionId (0x0002) with 15 bytes.',
      bytes: withTail(helloWorker, ext(0x0002, session.subarray(0, 15))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/known-over-max',
      description: 'HELLO resumeToken (0x0003) of 65 bytes: the limit is 64.',
      bytes: withTail(helloWorker, ext(0x0003, cat(u16(65), repeat(0x72, 65)))),
      error: 'ATP_ERR_ENCODING',
    },
    {
      id: 'extensions/more-than-64',
      description: '65 empty GREASE extension entries: the limit is 64 per body.',
      bytes: withTail(ping, ...GREASE_IDS.slice(0, 65).map((id) => ext(id, []))),
      error: 'ATP_ERR_ENCODING',
    },
  ],
};

/** A connection preface case. */
export interface PrefaceDef {
  readonly id: string;
  readonly description: string;
  readonly bytes: Uint8Array;
  readonly outcome: 'ok' | 'need-more' | 'error';
  readonly error?: ErrorCode;
  /** For errors: the first N bytes are enough to decide, N-1 are not. */
  readonly detectAfterBytes?: number;
  readonly requirements: readonly string[];
}

/** Bytes that look random and do not begin like an ATP preface. */
function randomBytes(): Uint8Array {
  const b = cat(sha256('random preface bytes'), sha256('random preface bytes 2')).subarray(0, 40);
  if (b[0] === PREFACE[0]) throw new Error('random preface bytes begin with "A": pick another seed');
  return b;
}

/** Connection preface cases (TCP and TLS). */
export const PREFACES: readonly PrefaceDef[] = [
  { id: 'preface/atp1', description: 'The ATP v1 preface "ATP1\\r\\n\\r\\n".', bytes: PREFACE, outcome: 'ok', requirements: ['ATP-4.1-1'] },
  {
    id: 'preface/atp1-partial',
    description: 'The first 6 bytes of the preface: wait for more.',
    bytes: PREFACE.subarray(0, 6),
    outcome: 'need-more',
    requirements: ['ATP-4.1-1'],
  },
  {
    id: 'preface/http-get',
    description: 'An HTTP/1.1 request on the ATP port.',
    bytes: utf8('GET / HTTP/1.1\r\nHost: atp.example:7411\r\n\r\n'),
    outcome: 'error',
    error: 'ATP_ERR_WRONG_PROTOCOL',
    detectAfterBytes: 1,
    requirements: ['ATP-4.1-3'],
  },
  {
    id: 'preface/http2',
    description: 'An HTTP/2 connection preface.',
    bytes: utf8('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    outcome: 'error',
    error: 'ATP_ERR_WRONG_PROTOCOL',
    detectAfterBytes: 1,
    requirements: ['ATP-4.1-3'],
  },
  {
    id: 'preface/tls-client-hello',
    description: 'The start of a TLS 1.2+ ClientHello record (16 03 01 ...) on a plain port.',
    bytes: cat([0x16, 0x03, 0x01], u16(0x00c8), [0x01], u24(0x00c4), [0x03, 0x03], sha256('client random')),
    outcome: 'error',
    error: 'ATP_ERR_WRONG_PROTOCOL',
    detectAfterBytes: 1,
    requirements: ['ATP-4.1-3'],
  },
  {
    id: 'preface/atp2',
    description: '"ATP2\\r\\n\\r\\n": a future major version. The coordinator answers with its own preface and closes.',
    bytes: utf8('ATP2\r\n\r\n'),
    outcome: 'error',
    error: 'ATP_ERR_UNSUPPORTED_VERSION',
    detectAfterBytes: 4,
    requirements: ['ATP-4.1-4'],
  },
  {
    id: 'preface/atp1-lf-only',
    description: '"ATP1\\n\\n": the right version with the wrong line ending.',
    bytes: utf8('ATP1\n\n'),
    outcome: 'error',
    error: 'ATP_ERR_WRONG_PROTOCOL',
    detectAfterBytes: 5,
    requirements: ['ATP-4.1-3'],
  },
  {
    id: 'preface/random',
    description: '40 bytes that look random.',
    bytes: randomBytes(),
    outcome: 'error',
    error: 'ATP_ERR_WRONG_PROTOCOL',
    detectAfterBytes: 1,
    requirements: ['ATP-4.1-3'],
  },
];
