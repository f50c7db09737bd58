/**
 * How `atp dump` shows a frame: one readable line (names for states, roles, policies and error
 * codes; long bytes shortened; secrets hidden) or one JSON object in the form of test-vectors/.
 */
import { ERROR_CATALOG, classOfWire, codeOfWire } from '../errors.js';
import {
  ARTIFACT_STATE_NAMES,
  FrameFlags,
  GoawayMode,
  LatePolicy,
  MESSAGES,
  Role,
  WatchFlags,
  bodyBytes,
  WatchScope,
  isGrease,
  messageNameOf,
  messageToJson,
  toHex,
} from '../wire/index.js';
import type { Digest, FieldSpec, JsonValue, Message, MessageSpec } from '../wire/index.js';

/** One thing found in the input. */
export type DumpEvent =
  | { kind: 'preface'; offset: number; version: string }
  | {
      kind: 'frame';
      offset: number;
      code: number;
      flags: number;
      stream: number;
      length: number;
      msg?: Message;
      payload: Uint8Array;
      /** A message reassembled from this many fragments (ATP_WIRE §3.7), at the offset of the first. */
      fragments?: number;
    }
  | {
      kind: 'fragment';
      offset: number;
      code: number;
      flags: number;
      stream: number;
      /** Payload length of the fragment frame. */
      length: number;
      /** Length of the whole message body, and how much of it has arrived with this fragment. */
      messageLength: number;
      received: number;
    }
  | { kind: 'error'; offset: number; code: string; wire: number; message: string };

/** Display options. */
export interface FormatOptions {
  /** Show tokens instead of hiding them. */
  showSecrets: boolean;
}

/** Fields that hold credentials: hidden unless asked (ATP_SPEC: tokens are never logged). */
const SECRETS = new Set(['HELLO.authToken', 'HELLO.resumeToken', 'WELCOME.resumeToken']);
const SHORT_BYTES = 32;

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
const lower = (o: Record<string, number>): Record<number, string> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [v, k.toLowerCase()]));

function named(names: Record<number, string>): (v: number) => string {
  return (v) => names[v] ?? String(v);
}

function bits(names: Record<number, string>): (v: number) => string {
  return (v) => {
    if (v === 0) return 'none';
    const parts: string[] = [];
    for (let bit = 1; bit <= 0x80; bit <<= 1) if (v & bit) parts.push(names[bit] ?? `0x${bit.toString(16).padStart(2, '0')}`);
    return parts.join('|');
  };
}

function errorName(wire: number): string {
  const code = codeOfWire(wire);
  if (ERROR_CATALOG[code].wire === wire) return code;
  return `${hex4(wire)}(unregistered, class ${classOfWire(wire)})`;
}

const typeName = (code: number): string => messageNameOf(code) ?? hex4(code);

/** Names for numeric fields, by `TYPE.field` or by field name. */
const ENUMS: Record<string, (v: number) => string> = {
  code: errorName,
  state: named(ARTIFACT_STATE_NAMES),
  roles: bits(lower(Role)),
  'WATCH.flags': bits(lower(WatchFlags)),
  'SUBMIT.watch': bits({ 1: 'result', 2: 'states', 4: 'partials' }),
  'ERROR.offendingType': typeName,
  'ACK.ackedType': typeName,
};
// The constants map names to numbers; the display needs numbers to names.
for (const [key, obj] of [
  ['SUBMIT.latePolicy', LatePolicy],
  ['GOAWAY.mode', GoawayMode],
  ['WATCH.scope', WatchScope],
] as const) {
  ENUMS[key] = named(Object.fromEntries(Object.entries(obj).map(([k, v]) => [v, k])));
}

/** A quoted string with invisible and direction-changing characters escaped, so that what is shown is what was sent. */
function quote(s: string): string {
  return JSON.stringify(s).replace(/[\p{Cf}\p{Zl}\p{Zp}\u007f-\u009f]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function bytesText(b: Uint8Array): string {
  if (b.length === 0) return '<empty>';
  if (b.length <= SHORT_BYTES) return toHex(b);
  return `<${b.length} bytes: ${toHex(b.subarray(0, 16))}…>`;
}

function digestText(d: Digest): string {
  if (d.alg === 0 && d.value.length === 0) return 'none';
  return `${d.alg === 1 ? 'sha256' : `alg${d.alg}`}:${toHex(d.value)}`;
}

function valueText(type: string, fs: FieldSpec, v: unknown, opts: FormatOptions): string {
  const key = `${type}.${fs.name}`;
  if (SECRETS.has(key) && !opts.showSecrets) return `<secret, ${(v as Uint8Array).length} bytes>`;
  switch (fs.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u53': {
      const name = ENUMS[key] ?? ENUMS[fs.name];
      return name ? name(v as number) : String(v);
    }
    case 'id':
      return toHex(v as Uint8Array);
    case 'digest':
      return digestText(v as Digest);
    case 'str':
      return quote(v as string);
    case 'sbytes':
    case 'bytes':
      return bytesText(v as Uint8Array);
    case 'strs':
      return `[${(v as string[]).map(quote).join(',')}]`;
    case 'ids': {
      const ids = v as Uint8Array[];
      const shown = ids.slice(0, 4).map(toHex).join(',');
      return ids.length <= 4 ? `[${shown}]` : `[${shown},… ${ids.length} ids]`;
    }
  }
}

/** The name of a frame type: registered, GREASE or unknown. */
function frameTypeName(code: number): string {
  return messageNameOf(code) ?? (isGrease(code) ? `GREASE(${hex4(code)})` : `UNKNOWN(${hex4(code)})`);
}

/** Flags as hex with the names of the assigned bits. */
function flagsText(flags: number): string {
  const names = [flags & FrameFlags.MORE ? 'MORE' : '', flags & FrameFlags.CONTINUATION ? 'CONTINUATION' : ''].filter(Boolean);
  return `0x${flags.toString(16).padStart(2, '0')}${names.length > 0 ? `(${names.join('|')})` : ''}`;
}

/** Payload bytes a decoded message does not account for: extension entries the receiver ignored. */
function ignoredBytes(msg: Message, payload: Uint8Array): number {
  return payload.length - bodyBytes(msg);
}

/** The readable line of an event. */
export function eventLine(e: DumpEvent, opts: FormatOptions): string {
  if (e.kind === 'preface') return `@${e.offset} preface ${e.version}`;
  if (e.kind === 'error') return `error ${e.code} at offset ${e.offset}: ${e.message}`;
  if (e.kind === 'fragment') {
    const role = (e.flags & FrameFlags.CONTINUATION) === 0 ? 'first' : (e.flags & FrameFlags.MORE) !== 0 ? 'middle' : 'last';
    return `@${e.offset} fragment ${frameTypeName(e.code)} stream=${e.stream} len=${e.length} flags=${flagsText(e.flags)} ${role}, ${e.received} of ${e.messageLength} bytes`;
  }
  const name = e.msg?.type ?? frameTypeName(e.code);
  const parts = [`@${e.offset}`, name, `stream=${e.stream}`, `len=${e.length}`];
  if (e.fragments !== undefined) parts.push(`fragments=${e.fragments}`);
  if (e.flags !== 0) parts.push(`flags=${flagsText(e.flags)}`);
  if (e.msg === undefined) {
    parts.push(`payload=${bytesText(e.payload)}`);
    return parts.join(' ');
  }
  const spec: MessageSpec = MESSAGES[e.msg.type];
  const rec = e.msg as unknown as Record<string, unknown>;
  for (const fs of spec.fields) parts.push(`${fs.name}=${valueText(e.msg.type, fs, rec[fs.name], opts)}`);
  for (const xs of spec.ext) if (rec[xs.name] !== undefined) parts.push(`${xs.name}=${valueText(e.msg.type, xs, rec[xs.name], opts)}`);
  const ignored = ignoredBytes(e.msg, e.payload);
  if (ignored > 0) parts.push(`(+${ignored} bytes of ignored extensions)`);
  return parts.join(' ');
}

/** The JSON object of an event (messages in the JSON form of test-vectors/README.md). */
export function eventJson(e: DumpEvent, opts: FormatOptions): Record<string, JsonValue> {
  if (e.kind === 'preface') return { offset: e.offset, preface: e.version };
  if (e.kind === 'error') return { offset: e.offset, error: { code: e.code, wire: e.wire, message: e.message } };
  const type = messageNameOf(e.code) ?? (isGrease(e.code) ? 'GREASE' : 'UNKNOWN');
  if (e.kind === 'fragment') {
    const { offset, code, stream, length, flags, messageLength, received } = e;
    return { offset, fragment: { type, code, stream, length, flags, messageLength, received } };
  }
  const out: Record<string, JsonValue> = { offset: e.offset, type, code: e.code, stream: e.stream, length: e.length, flags: e.flags };
  if (e.fragments !== undefined) out['fragments'] = e.fragments;
  if (e.msg === undefined) {
    out['payload'] = toHex(e.payload);
    return out;
  }
  const message = messageToJson(e.msg);
  if (!opts.showSecrets) {
    for (const key of SECRETS) {
      const [t, field = ''] = key.split('.');
      const v = message[field];
      if (t === e.msg.type && typeof v === 'string') message[field] = `<secret, ${v.length / 2} bytes>`;
    }
  }
  out['message'] = message;
  const ignored = ignoredBytes(e.msg, e.payload);
  if (ignored > 0) out['ignoredBytes'] = ignored;
  return out;
}
