import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dumpEvents } from '../../src/cli/dump-command.js';
import { eventJson, eventLine } from '../../src/cli/frame-format.js';
import { HexInputError, isBinary, parseHexText } from '../../src/cli/hex-input.js';
import { PREFACE, encodeFrame, fromHex } from '../../src/wire/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
interface Vector {
  id: string;
  hex: string;
  maxFrameBytes: number;
  maxMessageBytes?: number;
  detectAfterBytes?: number;
  outcome?: string;
  error?: { code: string; wire: number };
}
const vectorsOf = (file: string): Vector[] =>
  (JSON.parse(readFileSync(join(root, 'test-vectors', file), 'utf8')) as { vectors: Vector[] }).vectors;
const opts = { showSecrets: false };

void describe('dumpEvents', () => {
  /** Where the frame that `detectAfterBytes` points into starts (0 when the error is about the first message). */
  const offendingFrame = (bytes: Uint8Array, detect: number | undefined): number => {
    if (detect === undefined) return 0;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    for (let next = 0; next + 12 <= detect && next + 12 <= bytes.length; next += 12 + view.getUint32(next)) at = next;
    return at;
  };
  for (const file of readdirSync(join(root, 'test-vectors/invalid'))) {
    for (const v of vectorsOf(`invalid/${file}`)) {
      const bytes = fromHex(v.hex);
      const at = 8 + offendingFrame(bytes, v.detectAfterBytes);
      void test(`reports ${v.id} after a preface as ${v.error!.code} at offset ${at}`, () => {
        const events = dumpEvents(new Uint8Array([...PREFACE, ...bytes]), v.maxFrameBytes, v.maxMessageBytes);
        // The fragments before the offending frame are shown too (invalid/fragments.json).
        assert.deepEqual(
          events.filter((e) => e.kind !== 'fragment').map((e) => e.kind),
          ['preface', 'error'],
        );
        const e = events.at(-1)!;
        assert.ok(e.kind === 'error');
        assert.equal(e.code, v.error!.code);
        assert.equal(e.offset, at);
        assert.match(eventLine(e, opts), new RegExp(`^error ${v.error!.code} at offset ${at}: .+`));
      });
    }
  }

  for (const v of vectorsOf('valid/fragmented.json')) {
    void test(`shows ${v.id}: one line per fragment, and each message once, at the offset where it starts`, () => {
      const bytes = fromHex(v.hex);
      const events = dumpEvents(bytes, v.maxFrameBytes, v.maxMessageBytes);
      assert.ok(events.every((e) => e.kind !== 'error'));
      const fragments = events.filter((e) => e.kind === 'fragment');
      assert.ok(fragments.length >= 2);
      for (const f of fragments)
        assert.match(
          eventLine(f, opts),
          /^@\d+ fragment \S+ stream=\d+ len=\d+ flags=0x0[123]\((MORE|CONTINUATION|MORE\|CONTINUATION)\) (first|middle|last), \d+ of \d+ bytes$/,
        );
      const whole = events.filter((e) => e.kind === 'frame' && e.fragments !== undefined);
      for (const m of whole) {
        assert.ok(m.kind === 'frame');
        assert.equal(m.offset, fragments.find((f) => f.kind === 'fragment' && f.stream === m.stream && f.code === m.code)!.offset);
        assert.match(eventLine(m, opts), / fragments=\d+/);
      }
      const last = fragments.at(-1)!;
      assert.ok(last.kind === 'fragment');
      assert.ok(events.at(-1)!.kind === 'frame');
    });
  }

  void test('reports input that ends inside a fragmented message at the offset of its first fragment', () => {
    const v = vectorsOf('valid/fragmented.json')[0]!;
    const bytes = fromHex(v.hex);
    const firstLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
    const events = dumpEvents(new Uint8Array([...PREFACE, ...bytes.subarray(0, 12 + firstLength)]), v.maxFrameBytes, v.maxMessageBytes);
    const e = events.at(-1)!;
    assert.ok(e.kind === 'error');
    assert.equal(e.offset, 8);
    assert.match(eventLine(e, opts), /inside a fragmented message/);
  });

  for (const v of vectorsOf('preface.json')) {
    void test(`handles preface vector ${v.id} (${v.outcome})`, () => {
      const events = dumpEvents(fromHex(v.hex), 1 << 20);
      if (v.outcome === 'ok') assert.deepEqual(events, [{ kind: 'preface', offset: 0, version: 'ATP1' }]);
      else {
        const last = events.at(-1)!;
        assert.ok(last.kind === 'error');
        // A correct but partial preface is an input that ends too early; random bytes are read as
        // frames (a capture need not start with a preface), so only their being refused is checked.
        if (v.id !== 'preface/random') assert.equal(last.code, v.error?.code ?? 'ATP_ERR_ENCODING');
      }
    });
  }

  void test('reports input that ends inside a frame at the frame offset, with the declared length', () => {
    const ping = encodeFrame({ type: 'PING', stream: 0, nonce: 1 });
    const bytes = new Uint8Array([...ping, ...ping.subarray(0, 14)]);
    const events = dumpEvents(bytes, 1024);
    assert.equal(events.length, 2);
    assert.match(
      eventLine(events[1]!, opts),
      /^error ATP_ERR_ENCODING at offset 16: input ends inside a frame: the header says 4 payload bytes, 2 are present$/,
    );
    assert.match(eventLine(dumpEvents(ping.subarray(0, 5), 1024)[0]!, opts), /inside a frame header \(5 of 12 bytes\)/);
  });

  void test('names enumerations, escapes invisible characters and hides tokens in JSON too', () => {
    const frame = encodeFrame({
      type: 'HELLO',
      stream: 0,
      minVersion: 1,
      maxVersion: 1,
      roles: 0x0d,
      nodeId: new Uint8Array(16),
      credits: 0,
      maxFrameBytes: 65536,
      idleTimeoutMs: 0,
      agent: 'a\u202eb\u0000',
      kinds: [],
      capabilities: [],
      authToken: new TextEncoder().encode('secret-token'),
    });
    const [e] = dumpEvents(frame, 1024);
    const line = eventLine(e!, opts);
    assert.match(line, / roles=worker\|observer\|0x08 /);
    assert.match(line, / agent="a\\u202eb\\u0000" /);
    assert.match(line, / authToken=<secret, 12 bytes>$/);
    const json = eventJson(e!, opts) as { message: Record<string, unknown> };
    assert.equal(json.message['authToken'], '<secret, 12 bytes>');
    assert.equal(
      (eventJson(e!, { showSecrets: true }) as { message: Record<string, unknown> }).message['authToken'],
      Buffer.from('secret-token').toString('hex'),
    );
  });

  void test('shows an unregistered error code with its class, and a known one by name', () => {
    const err = (code: number): string =>
      eventLine(dumpEvents(encodeFrame({ type: 'GOAWAY', stream: 0, code, mode: 2, deadlineMs: 0, reason: '' }), 1024)[0]!, opts);
    assert.match(err(0x0204), / code=ATP_ERR_STALE_LEASE mode=DRAIN_HANDBACK /);
    assert.match(err(0x01ee), / code=0x01ee\(unregistered, class 1\) /);
  });
});

void describe('hex input', () => {
  const bytes = Uint8Array.from([0x41, 0x54, 0x50, 0x31, 0x0d, 0x0a, 0x0d, 0x0a, 0, 0, 0, 4]);

  void test('tells binary from text', () => {
    assert.ok(isBinary(bytes));
    assert.ok(!isBinary(new TextEncoder().encode('00 01\r\n\t0x02')));
  });

  void test('reads plain hex with whitespace, commas, 0x prefixes and # comments', () => {
    assert.deepEqual(parseHexText('# preface\n41545031 0d0a0d0a  # ATP1\r\n0x00, 0x0, 0x00,0x4\n'), bytes);
  });

  void test('reads xxd rows whose ASCII column looks like hex', () => {
    assert.deepEqual(parseHexText('00000000: 4154 5031 0d0a 0d0a 0000 0004            ATP1cafe....\n'), bytes);
  });

  void test('reads hexdump -C rows, a "*" repeat and the final offset row', () => {
    const text = [
      '00000000  ab ab ab ab ab ab ab ab  ab ab ab ab ab ab ab ab  |................|',
      '*',
      '00000030  01 02                                             |..|',
      '00000032',
    ].join('\n');
    const out = parseHexText(text);
    assert.equal(out.length, 0x32);
    assert.ok(out.subarray(0, 0x30).every((b) => b === 0xab));
    assert.deepEqual(out.subarray(0x30), Uint8Array.of(1, 2));
  });

  void test('refuses odd digits, stray words and offsets that skip bytes, naming the line', () => {
    assert.throws(
      () => parseHexText('0102\n123\n'),
      (e: unknown) => e instanceof HexInputError && e.line === 2,
    );
    assert.throws(() => parseHexText('00000000: 0102\n00000010: 0304\n'), /line 2: the row says offset 0x10, but 2 bytes were read/);
    assert.throws(() => parseHexText('00000000  01 02  |..|\n*\n'), /ends with "\*"/);
  });
});
