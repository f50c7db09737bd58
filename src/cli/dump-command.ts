/** `atp dump`: decode the frames of a capture (hex text or raw bytes) and print one line per frame. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { AtpError } from '../errors.js';
import { FrameDecoder, FrameFlags, HEADER_BYTES, Limits, PREFACE, checkPreface, decodeBody } from '../wire/index.js';
import { eventJson, eventLine } from './frame-format.js';
import type { DumpEvent } from './frame-format.js';
import { HexInputError, isBinary, parseHexText } from './hex-input.js';

interface DumpFlags {
  raw?: boolean;
  json?: boolean;
  maxFrameBytes: number;
  maxMessageBytes: number;
  showSecrets?: boolean;
}

/** Exit codes: 1 a malformed frame or preface; 2 input that cannot be read. */
const EXIT_MALFORMED = 1;
const EXIT_BAD_INPUT = 2;

function maxFrameBytesFlag(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 0xffffffff) {
    throw new InvalidArgumentError(
      `--max-frame-bytes takes a byte count from 1 to 4294967295, got ${JSON.stringify(value)} (for example --max-frame-bytes 1048576)`,
    );
  }
  return n;
}

function maxMessageBytesFlag(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 0xffffffff) {
    throw new InvalidArgumentError(`--max-message-bytes takes a byte count from 0 to 4294967295, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Does the input start like another protocol (HTTP, HTTP/2, TLS) rather than like frames? */
function looksLikeOtherProtocol(bytes: Uint8Array): boolean {
  const head = String.fromCharCode(...bytes.subarray(0, 8));
  return /^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT|PRI) /.test(head) || (bytes[0] === 0x16 && bytes[1] === 0x03);
}

/**
 * Everything found in the bytes: an optional preface, then frames, then at most one error. A
 * fragmented message (ATP_WIRE §3.7) shows as one event per fragment, then one for the message at the
 * offset of its first fragment; `maxMessageBytes` 0 refuses fragments, as before WELCOME.
 */
export function dumpEvents(bytes: Uint8Array, maxFrameBytes: number, maxMessageBytes: number = Limits.MAX_MAX_MESSAGE_BYTES): DumpEvent[] {
  const events: DumpEvent[] = [];
  const fail = (offset: number, err: AtpError): DumpEvent[] => {
    events.push({ kind: 'error', offset, code: err.code, wire: err.wire, message: err.message });
    return events;
  };
  let start = 0;
  const startsLikeAtp = bytes.length >= 3 && bytes[0] === PREFACE[0] && bytes[1] === PREFACE[1] && bytes[2] === PREFACE[2];
  if (startsLikeAtp || looksLikeOtherProtocol(bytes)) {
    const r = checkPreface(bytes.subarray(0, PREFACE.length));
    if (!r.ok && !r.needMore) return fail(0, r.error);
    if (!r.ok)
      return fail(0, new AtpError('ATP_ERR_ENCODING', `input ends inside the preface (${bytes.length} of ${PREFACE.length} bytes)`));
    events.push({ kind: 'preface', offset: 0, version: 'ATP1' });
    start = PREFACE.length;
  }
  const decoder = new FrameDecoder(maxFrameBytes, maxMessageBytes);
  let offset = start;
  let messageOffset = start;
  try {
    decoder.push(
      bytes.subarray(start),
      (f) => {
        const at = f.frames === 1 ? offset : messageOffset;
        let msg;
        try {
          msg = decodeBody(f.code, f.stream, f.payload);
        } catch (err) {
          // A reassembled body that does not decode is reported where its message starts.
          offset = at;
          throw err;
        }
        const length = f.payload.length;
        events.push({
          kind: 'frame',
          offset: at,
          code: f.code,
          flags: f.flags,
          stream: f.stream,
          length,
          payload: f.payload,
          ...(msg ? { msg } : {}),
          ...(f.frames > 1 ? { fragments: f.frames } : {}),
        });
        if (f.frames === 1) offset += HEADER_BYTES + length;
      },
      (frag) => {
        if ((frag.flags & FrameFlags.CONTINUATION) === 0) messageOffset = offset;
        events.push({
          kind: 'fragment',
          offset,
          code: frag.code,
          flags: frag.flags,
          stream: frag.stream,
          length: frag.length,
          messageLength: frag.messageLength,
          received: frag.received,
        });
        offset += HEADER_BYTES + frag.length;
      },
    );
  } catch (err) {
    if (err instanceof AtpError) return fail(offset, err);
    throw err;
  }
  if (offset === bytes.length && decoder.inMessage) {
    return fail(messageOffset, new AtpError('ATP_ERR_ENCODING', 'input ends inside a fragmented message: its last fragment is missing'));
  }
  const left = bytes.length - offset;
  if (left > 0) {
    const declared = left >= HEADER_BYTES ? new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0) : undefined;
    const message =
      declared === undefined
        ? `input ends inside a frame header (${left} of ${HEADER_BYTES} bytes)`
        : `input ends inside a frame: the header says ${declared} payload bytes, ${left - HEADER_BYTES} are present`;
    return fail(offset, new AtpError('ATP_ERR_ENCODING', message));
  }
  return events;
}

function readInput(file: string | undefined): Uint8Array {
  return new Uint8Array(file === undefined || file === '-' ? readFileSync(0) : readFileSync(file));
}

function runDump(file: string | undefined, flags: DumpFlags): number {
  let input: Uint8Array;
  try {
    input = readInput(file);
  } catch (err) {
    process.stderr.write(`atp dump: cannot read ${file ?? 'stdin'}: ${(err as Error).message}\n`);
    return EXIT_BAD_INPUT;
  }
  let bytes = input;
  if (!flags.raw && !isBinary(input)) {
    try {
      bytes = parseHexText(new TextDecoder().decode(input));
    } catch (err) {
      if (!(err instanceof HexInputError)) throw err;
      process.stderr.write(`atp dump: ${file ?? 'stdin'} ${err.message}\n`);
      return EXIT_BAD_INPUT;
    }
  }
  const opts = { showSecrets: flags.showSecrets === true };
  const events = dumpEvents(bytes, flags.maxFrameBytes, flags.maxMessageBytes);
  let out = '';
  for (const e of events) {
    out += (flags.json ? JSON.stringify(eventJson(e, opts)) : eventLine(e, opts)) + '\n';
    if (out.length > 1 << 16) {
      process.stdout.write(out);
      out = '';
    }
  }
  process.stdout.write(out);
  return events.some((e) => e.kind === 'error') ? EXIT_MALFORMED : 0;
}

/** Register `atp dump [file]`. */
export function registerDump(program: Command): void {
  program
    .command('dump')
    .description('decode ATP frames from a capture and print one line per frame')
    .argument('[file]', 'hex text (plain, xxd or hexdump -C) or a raw binary capture; "-" or none reads stdin')
    .option('--raw', 'read the input as raw bytes (the default for input that is not text)')
    .option('--json', 'print one JSON object per line (messages in the form of test-vectors/README.md)')
    .option(
      '--max-frame-bytes <n>',
      'largest frame payload accepted; larger frames are an error',
      maxFrameBytesFlag,
      Limits.MAX_MAX_FRAME_BYTES,
    )
    .option(
      '--max-message-bytes <n>',
      'largest fragmented message accepted (0 refuses fragments, as before WELCOME)',
      maxMessageBytesFlag,
      Limits.MAX_MAX_MESSAGE_BYTES,
    )
    .option('--show-secrets', 'print auth and resume tokens instead of hiding them')
    .addHelpText(
      'after',
      '\nAn input may start with the preface "ATP1\\r\\n\\r\\n". Exit status: 0 all frames decoded, 1 a malformed frame\n' +
        '(printed as "error ATP_ERR_... at offset N: ..."), 2 the input could not be read.\n\n' +
        'Examples:\n  atp dump capture.hex\n  xxd capture.bin | atp dump\n  atp dump --raw --json capture.bin',
    )
    .action((file: string | undefined, flags: DumpFlags) => {
      process.exitCode = runDump(file, flags);
    });
}
