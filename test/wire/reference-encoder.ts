/**
 * A second, deliberately plain encoder written from the wire rules (ATP_WIRE §3–§5) with Buffer
 * methods, sharing nothing with src/wire/codec.ts but the schema table. The vector tests compare
 * its output with the committed hex, so that a mistake made alike in the codec's encoder and
 * decoder (a byte order, a length prefix width) cannot hide behind a passing round trip.
 */
import { MESSAGES } from '../../src/wire/schema.js';
import type { FieldSpec, MessageSpec } from '../../src/wire/schema.js';
import type { MessageJson } from '../../src/wire/message-json.js';

function u(n: number, bytes: 1 | 2 | 4): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUIntBE(n, 0, bytes);
  return b;
}

function field(fs: FieldSpec, v: unknown): Buffer {
  switch (fs.kind) {
    case 'u8':
      return u(v as number, 1);
    case 'u16':
      return u(v as number, 2);
    case 'u32':
      return u(v as number, 4);
    case 'u53': {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(v as number));
      return b;
    }
    case 'id':
      return Buffer.from(v as string, 'hex');
    case 'digest': {
      const d = v as { alg: number; value: string };
      const value = Buffer.from(d.value, 'hex');
      return Buffer.concat([u(d.alg, 1), u(value.length, 1), value]);
    }
    case 'str': {
      const s = Buffer.from(v as string, 'utf8');
      return Buffer.concat([u(s.length, 2), s]);
    }
    case 'sbytes': {
      const b = Buffer.from(v as string, 'hex');
      return Buffer.concat([u(b.length, 2), b]);
    }
    case 'bytes': {
      const b = Buffer.from(v as string, 'hex');
      return Buffer.concat([u(b.length, 4), b]);
    }
    case 'strs': {
      const list = v as string[];
      return Buffer.concat([u(list.length, 2), ...list.map((s) => field({ ...fs, kind: 'str' }, s))]);
    }
    case 'ids': {
      const list = v as string[];
      return Buffer.concat([u(list.length, 4), ...list.map((id) => Buffer.from(id, 'hex'))]);
    }
  }
}

/** The frame of a message in JSON form: header, fixed part in order, known extensions by ascending id. */
export function referenceEncode(msg: MessageJson): Buffer {
  const spec: MessageSpec = MESSAGES[msg.type];
  const parts = spec.fields.map((fs) => field(fs, msg[fs.name]));
  for (const xs of [...spec.ext].sort((a, b) => a.id - b.id)) {
    if (msg[xs.name] === undefined) continue;
    const value = field(xs, msg[xs.name]);
    parts.push(u(xs.id, 2), u(value.length, 2), value);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([u(body.length, 4), u(spec.code, 2), u(0, 1), u(0, 1), u(msg.stream, 4), body]);
}
