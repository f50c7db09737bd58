/**
 * Generates test-vectors/ (format: test-vectors/README.md) from the declarative definitions in
 * vectors-valid.ts and vectors-bytes.ts. Run with `npm run vectors`; `--check` only compares and
 * exits 1 when the committed files differ. test/wire/vectors.test.ts runs the same comparison.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ERROR_CATALOG } from '../src/errors.js';
import { HEADER_BYTES, Limits, MESSAGES, PREFACE, encodeFrame, messageToJson, toHex } from '../src/wire/index.js';
import type { JsonValue, Message, MessageName } from '../src/wire/index.js';
import { INVALID, PREFACES, VALID_BYTES, ext, withTail } from './vectors-bytes.js';
import type { InvalidDef, PrefaceDef } from './vectors-bytes.js';
import { VALID, sha256 } from './vectors-valid.js';
import type { ValidDef } from './vectors-valid.js';
import { FRAGMENTED, FRAGMENTS_INVALID, VECTOR_MAX_MESSAGE_BYTES } from './vectors-fragments.js';
import type { FragmentedDef, FragmentsInvalidDef } from './vectors-fragments.js';

/** Identifies the file format; bumped only on an incompatible change. */
export const VECTOR_FORMAT = 'atp-test-vectors/1';

type Json = { [key: string]: JsonValue };

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function validVector(
  id: string,
  description: string,
  bytes: Uint8Array,
  decoded: Message | null,
  maxFrameBytes: number,
  requirements: readonly string[],
): Json {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const canonical = decoded === null ? undefined : encodeFrame(decoded);
  const roundTrip = canonical !== undefined && sameBytes(canonical, bytes);
  const out: Json = {
    id,
    description,
    requirements: [...requirements],
    valid: true,
    maxFrameBytes,
    hex: toHex(bytes),
    header: {
      length: view.getUint32(0),
      type: view.getUint16(4),
      flags: view.getUint8(6),
      reserved: view.getUint8(7),
      stream: view.getUint32(8) & 0x7fffffff,
    },
    decoded: decoded === null ? null : messageToJson(decoded),
    roundTrip,
  };
  if (!roundTrip && canonical !== undefined) out['canonicalHex'] = toHex(canonical);
  if (bytes.length !== HEADER_BYTES + view.getUint32(0)) throw new Error(`${id}: not exactly one frame`);
  return out;
}

/** ATP_SPEC ids an invalid frame checks: the size limit, a known extension that must parse, or the fatal-error list. */
function invalidRequirements(file: string, d: InvalidDef): string[] {
  if (d.requirements !== undefined) return [...d.requirements];
  if (d.error === 'ATP_ERR_FRAME_TOO_LARGE') return ['ATP-4.5-3'];
  if (file === 'extensions') return ['ATP-4.4-4', 'ATP-4.9-3'];
  return ['ATP-4.9-3'];
}

function invalidVector(file: string, d: InvalidDef): Json {
  const out: Json = {
    id: d.id,
    description: d.description,
    requirements: invalidRequirements(file, d),
    valid: false,
    maxFrameBytes: d.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES,
    hex: toHex(d.bytes),
    error: { code: d.error, wire: ERROR_CATALOG[d.error].wire },
  };
  if (d.detectAfterBytes !== undefined) out['detectAfterBytes'] = d.detectAfterBytes;
  return out;
}

/** A stream of frames with fragmented messages (test-vectors/README.md, "Fragmented messages"). */
function fragmentedVector(d: FragmentedDef): Json {
  const headers = d.frames.map((f) => {
    const view = new DataView(f.buffer, f.byteOffset, f.byteLength);
    if (f.length !== HEADER_BYTES + view.getUint32(0)) throw new Error(`${d.id}: a frame is not exactly one frame`);
    return {
      length: view.getUint32(0),
      type: view.getUint16(4),
      flags: view.getUint8(6),
      reserved: view.getUint8(7),
      stream: view.getUint32(8) & 0x7fffffff,
    };
  });
  return {
    id: d.id,
    description: d.description,
    requirements: [...d.requirements],
    valid: true,
    maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
    maxMessageBytes: d.maxMessageBytes ?? VECTOR_MAX_MESSAGE_BYTES,
    hex: d.frames.map(toHex).join(''),
    frames: headers,
    decoded: d.decoded.map(messageToJson),
    unfragmented: d.unfragmented.map((m) => toHex(encodeFrame(m))),
  };
}

function fragmentsInvalidVector(d: FragmentsInvalidDef): Json {
  const out: Json = {
    id: d.id,
    description: d.description,
    requirements: [...d.requirements],
    valid: false,
    maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
    maxMessageBytes: d.maxMessageBytes ?? VECTOR_MAX_MESSAGE_BYTES,
    hex: toHex(d.bytes),
    error: { code: d.error, wire: ERROR_CATALOG[d.error].wire },
  };
  if (d.detectAfterBytes !== undefined) out['detectAfterBytes'] = d.detectAfterBytes;
  return out;
}

function prefaceVector(d: PrefaceDef): Json {
  const out: Json = {
    id: d.id,
    description: d.description,
    requirements: [...d.requirements],
    valid: d.outcome === 'ok',
    hex: toHex(d.bytes),
    outcome: d.outcome,
  };
  if (d.error !== undefined) out['error'] = { code: d.error, wire: ERROR_CATALOG[d.error].wire };
  if (d.detectAfterBytes !== undefined) out['detectAfterBytes'] = d.detectAfterBytes;
  return out;
}

/** GREASE extension id for the k-th message type: 0x1a1a for the first, then other 0x?A?A values. */
const greaseExtId = (k: number): number => (((k + 1) % 16) << 12) | 0x0a00 | (((k * 7 + 1) % 16) << 4) | 0x0a;

/** The same message with a GREASE extension appended: it must decode to the very same message. */
function greaseVariant(name: MessageName, k: number, defs: readonly ValidDef[]): Json {
  const base =
    defs.find((d) => MESSAGES[name].ext.some((x) => (d.msg as unknown as Record<string, unknown>)[x.name] !== undefined)) ?? defs[0];
  if (base === undefined) throw new Error(`no valid definition for ${name}`);
  const id = greaseExtId(k);
  const value = sha256(`grease:${name}`).slice(0, k % 9);
  const bytes = withTail(base.msg, ext(id, value));
  const description = `${name}/${base.id} with a GREASE extension 0x${id.toString(16).padStart(4, '0')} (${value.length} bytes) appended: ignored, same message.`;
  return validVector(
    `${name}/${base.id}+grease-extension`,
    description,
    bytes,
    base.msg,
    base.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES,
    ['ATP-4.4-4', 'ATP-14.3-2'],
  );
}

const fileText = (body: Json): string => JSON.stringify({ format: VECTOR_FORMAT, ...body }, null, 2) + '\n';

/** Every vector file, by path relative to test-vectors/, with its exact contents. */
export function generateVectors(): Map<string, string> {
  const files = new Map<string, string>();
  for (const key of Object.keys(VALID_BYTES)) {
    if (key !== 'ignored' && !(key in MESSAGES)) throw new Error(`VALID_BYTES.${key} is neither a message type nor "ignored"`);
  }
  (Object.keys(MESSAGES) as MessageName[]).forEach((name, k) => {
    const defs = VALID[name];
    if (defs.length === 0) throw new Error(`no valid vector for ${name}`);
    const vectors: Json[] = defs.map((d) => {
      const max = d.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES;
      const reqs = max === Limits.PRE_WELCOME_MAX_FRAME_BYTES ? ['ATP-4.5-1', 'ATP-14.3-2'] : ['ATP-14.3-2'];
      return validVector(`${name}/${d.id}`, d.description, encodeFrame(d.msg), d.msg, max, reqs);
    });
    vectors.push(greaseVariant(name, k, defs));
    for (const d of VALID_BYTES[name] ?? [])
      vectors.push(validVector(d.id, d.description, d.bytes, d.decoded, d.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES, d.requirements));
    files.set(`valid/${name}.json`, fileText({ type: name, code: MESSAGES[name].code, vectors }));
  });
  const ignored = (VALID_BYTES['ignored'] ?? []).map((d) =>
    validVector(d.id, d.description, d.bytes, d.decoded, d.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES, d.requirements),
  );
  files.set('valid/ignored.json', fileText({ description: 'Frames a receiver skips by their length and ignores.', vectors: ignored }));
  files.set(
    'valid/fragmented.json',
    fileText({ description: 'Streams with fragmented messages (ATP_WIRE §3.7).', vectors: FRAGMENTED.map(fragmentedVector) }),
  );
  for (const [file, defs] of Object.entries(INVALID))
    files.set(`invalid/${file}.json`, fileText({ vectors: defs.map((d) => invalidVector(file, d)) }));
  files.set('invalid/fragments.json', fileText({ vectors: FRAGMENTS_INVALID.map(fragmentsInvalidVector) }));
  files.set('preface.json', fileText({ preface: toHex(PREFACE), vectors: PREFACES.map(prefaceVector) }));
  return files;
}

/** The JSON files currently under `dir` (relative paths), for finding stale ones. */
export function existingVectorFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['', 'valid/', 'invalid/']) {
    const d = join(dir, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) if (f.endsWith('.json')) out.push(sub + f);
  }
  return out.sort();
}

function main(argv: readonly string[]): number {
  const dir = fileURLToPath(new URL('../../test-vectors/', import.meta.url));
  const files = generateVectors();
  const stale = existingVectorFiles(dir).filter((f) => !files.has(f));
  if (argv.includes('--check')) {
    const differ = [...files]
      .filter(([f, text]) => !existsSync(join(dir, f)) || readFileSync(join(dir, f), 'utf8') !== text)
      .map(([f]) => f);
    for (const f of [...differ, ...stale]) console.error(`test-vectors/${f} is out of date; run "npm run vectors"`);
    return differ.length + stale.length === 0 ? 0 : 1;
  }
  for (const f of stale) rmSync(join(dir, f));
  for (const [f, text] of files) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  console.log(`wrote ${files.size} vector files to ${dir}${stale.length ? ` (removed ${stale.length} stale)` : ''}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = main(process.argv.slice(2));
