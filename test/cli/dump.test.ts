import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const fixtures = join(root, 'test/cli/fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'atp-dump-test-'));

interface Vector {
  id: string;
  hex: string;
  maxFrameBytes: number;
  decoded?: Record<string, unknown> | null;
  error?: { code: string; wire: number };
}
const vectorsOf = (file: string): Vector[] =>
  (JSON.parse(readFileSync(join(root, 'test-vectors', file), 'utf8')) as { vectors: Vector[] }).vectors;
const vector = (file: string, id: string): Vector => {
  const v = vectorsOf(file).find((x) => x.id === id);
  assert.ok(v, `${file}: no vector ${id}`);
  return v;
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built `atp` binary as a child process, with optional stdin. */
function atp(args: string[], stdin?: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cli, ...args], { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`cannot run atp: ${err.message}`));
      resolve({ code: err ? (err.code as unknown as number) : 0, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') });
    });
    child.stdin?.end(stdin ?? '');
  });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

const validFiles = ['ACCEPTED', 'HELLO', 'LEASE', 'PING', 'RENEW', 'RESULT', 'SUBMIT', 'WELCOME', 'ignored'].map((n) => `valid/${n}.json`);
const valid = validFiles.flatMap(vectorsOf);
const stream = Buffer.concat(valid.map((v) => Buffer.from(v.hex, 'hex')));
const offsets = valid.map((_, i) => valid.slice(0, i).reduce((n, v) => n + v.hex.length / 2, 0));

void describe('atp dump', { concurrency: true }, () => {
  void test('decodes a raw binary capture of valid vectors: --json lines carry each vector’s message at its offset', async () => {
    const file = join(tmp, 'valid.bin');
    writeFileSync(file, stream);
    const r = await atp(['dump', '--json', '--show-secrets', file]);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, valid.length);
    out.forEach((o, i) => {
      const v = valid[i]!;
      assert.equal(o['offset'], offsets[i], v.id);
      if (v.decoded === null) assert.equal(o['type'], 'GREASE', v.id);
      else assert.deepEqual(o['message'], v.decoded, v.id);
    });
  });

  void test('reads plain hex from stdin and prints one readable line per frame, tokens hidden', async () => {
    const text = valid.map((v) => v.hex).join('\n') + '\n';
    const r = await atp(['dump', '-'], text);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout);
    assert.equal(out.length, valid.length);
    out.forEach((l, i) => {
      const name = valid[i]!.decoded === null ? 'GREASE\\(0x[0-9a-f]{4}\\)' : String(valid[i]!.decoded!['type']);
      assert.match(l, new RegExp(`^@${offsets[i]} ${name} stream=\\d+ len=\\d+`), l);
    });
    const at = (id: string): string => out[valid.findIndex((v) => v.id === id)] ?? assert.fail(`no line for ${id}`);
    const line = at('HELLO/producer-with-auth-and-tenant');
    assert.match(line, / roles=producer\|observer /);
    assert.match(line, / authToken=<secret, 28 bytes> tenant="acme-media"$/);
    assert.doesNotMatch(r.stdout, /6174705f746f6b5f/, 'a token appears in the output');
    assert.match(at('LEASE/first'), / digest=sha256:[0-9a-f]{64} checkpoint=<empty> payload=<74 bytes: [0-9a-f]{32}…>$/);
  });

  void test('reads the same capture from xxd and hexdump -C output (with a "*" row) and from stdin with no file argument', async () => {
    const raw = join(tmp, 'capture.bin');
    const hd = readFileSync(join(fixtures, 'capture.hexdump'), 'utf8');
    const { parseHexText } = await import('../../src/cli/hex-input.js');
    writeFileSync(raw, parseHexText(hd));
    const [fromRaw, fromXxd, fromHexdump] = await Promise.all([
      atp(['dump', raw]),
      atp(['dump', join(fixtures, 'capture.xxd')]),
      atp(['dump'], hd),
    ]);
    assert.equal(fromRaw.code, 0, fromRaw.stderr);
    assert.deepEqual(
      lines(fromRaw.stdout).map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['@0 preface', '@8 HELLO', '@136 GREASE(0x4a7a)', '@448 PING'],
    );
    assert.equal(fromXxd.stdout, fromRaw.stdout);
    assert.equal(fromHexdump.stdout, fromRaw.stdout);
    assert.equal(fromXxd.code, 0);
    assert.equal(fromHexdump.code, 0);
  });

  void test('prints the frames before a malformed one, then "error CODE at offset N: ..." and exits 1', async () => {
    const ping = vector('valid/PING.json', 'PING/nonce');
    const bad = vector('invalid/header.json', 'header/length-max-u32');
    const r = await atp(['dump'], `${ping.hex}\n${bad.hex}\n${ping.hex}\n`);
    assert.equal(r.code, 1);
    const out = lines(r.stdout);
    assert.equal(out.length, 2);
    assert.match(out[0]!, /^@0 PING /);
    assert.match(out[1]!, /^error ATP_ERR_FRAME_TOO_LARGE at offset 16: /);
  });

  void test('reports a malformed body as a JSON error object with --json', async () => {
    const bad = vector('invalid/fields.json', 'fields/utf8-overlong');
    const r = await atp(['dump', '--json', '--max-frame-bytes', String(bad.maxFrameBytes)], bad.hex);
    assert.equal(r.code, 1);
    const [o] = lines(r.stdout).map((l) => JSON.parse(l) as { offset: number; error: { code: string; wire: number } });
    assert.deepEqual({ offset: o!.offset, code: o!.error.code, wire: o!.error.wire }, { offset: 0, ...bad.error! });
  });

  void test('checks a leading preface: "ATP2" is ATP_ERR_UNSUPPORTED_VERSION', async () => {
    const r = await atp(['dump'], vector('preface.json', 'preface/atp2').hex);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^error ATP_ERR_UNSUPPORTED_VERSION at offset 0: /);
  });

  void test('--max-frame-bytes lowers the limit: a 116-byte HELLO is too large for 100', async () => {
    const r = await atp(['dump', '--max-frame-bytes', '100'], vector('valid/HELLO.json', 'HELLO/worker').hex);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^error ATP_ERR_FRAME_TOO_LARGE at offset 0: frame of 116 bytes exceeds the limit of 100/);
  });

  void test('a bad flag value says what was wrong and how to fix it', async () => {
    const r = await atp(['dump', '--max-frame-bytes', 'lots']);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /--max-frame-bytes takes a byte count from 1 to 4294967295, got "lots" \(for example --max-frame-bytes 1048576\)/,
    );
    assert.match(r.stderr, /--help/);
    assert.equal(r.stdout, '');
  });

  void test('an unknown flag is refused with a suggestion', async () => {
    const r = await atp(['dump', '--jsn']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown option '--jsn'/);
    assert.match(r.stderr, /Did you mean --json\?/);
  });

  void test('text that is not hex is refused with its line number and exit code 2', async () => {
    const r = await atp(['dump'], '00000004 0003 0000\nnot hex at all\n');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /line 2: "not" is not hex bytes .*--raw/);
  });

  void test('a missing file is refused with exit code 2', async () => {
    const r = await atp(['dump', join(tmp, 'no-such-file.hex')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read .*no-such-file\.hex/);
  });
});
