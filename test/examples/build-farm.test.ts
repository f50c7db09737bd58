/**
 * The build-farm example, run as its own process each time (a new coordinator on the same SQLite
 * file): the first run builds every step and the test program prints what it should; an unchanged
 * second run is answered entirely from the coordinator's store and starts no worker; touching one
 * source rebuilds exactly its compile, the link and the test; a comment-only change recompiles to
 * the same object, so nothing after it reruns.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../examples/build-farm/content-store.js';
import { handlers, toolchainId } from '../../examples/build-farm/handlers.js';
import { EXPECTED_OUTPUT } from '../../examples/build-farm/project.js';
import type { BuildFarmReport } from '../../examples/build-farm/run.js';
import { BuildKind, CFLAGS } from '../../examples/build-farm/steps.js';
import type { HandlerContext } from '../../src/worker/worker.js';

const run = promisify(execFile);
const RUN = fileURLToPath(new URL('../../examples/build-farm/run.js', import.meta.url));

async function farm(out: string, ...flags: string[]): Promise<BuildFarmReport> {
  const report = join(out, `report-${Date.now()}.json`);
  await run(process.execPath, [RUN, '--out', out, '--report', report, '--workers', '2', '--concurrency', '1', ...flags], {
    timeout: 60_000,
  });
  return JSON.parse(readFileSync(report, 'utf8')) as BuildFarmReport;
}

const byStatus = (r: BuildFarmReport, status: string) =>
  r.steps
    .filter((s) => s.status === status)
    .map((s) => s.name)
    .sort();
const digests = (r: BuildFarmReport) => Object.fromEntries(r.steps.map((s) => [s.name, s.digest]));
const ALL = ['crc32.o', 'gcd.o', 'main.o', 'primes.o', 'reverse.o', 'test tinytest', 'tinytest'];

void describe('build farm: handlers', () => {
  void it('fails a compile error without another attempt, with the compiler diagnostics', async () => {
    const payload = new TextEncoder().encode(
      JSON.stringify({
        source: { path: 'src/bad.c', text: 'int f(void) { return x; }\n' },
        headers: {},
        flags: CFLAGS,
        toolchain: await toolchainId(),
      }),
    );
    const ctx = { signal: new AbortController().signal } as HandlerContext;
    await assert.rejects(
      handlers[BuildKind.COMPILE]({ id: '00', kind: BuildKind.COMPILE, payload, parentId: null, digest: '', attempt: 1 }, ctx),
      (err: Error & { retryable?: boolean }) => err.retryable === false && /'x' undeclared/.test(err.message),
    );
  });
});

void describe('build farm: runs over worker processes', () => {
  let out: string;
  let first: BuildFarmReport;
  before(() => {
    out = mkdtempSync(join(tmpdir(), 'atp-build-farm-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  void it('first run: builds every step in dependency order, the test passes, outputs land in the store', async () => {
    first = await farm(out);
    assert.equal(first.ok, true);
    assert.deepEqual(byStatus(first, 'built'), ALL);
    assert.equal(first.memoized, 0);
    assert.equal(first.workersStarted, 2);
    assert.equal(first.testOutput, EXPECTED_OUTPUT);
    for (const s of first.steps) {
      assert.ok(s.digest !== null, s.name);
      assert.equal(sha256Hex(readFileSync(join(out, 'store', s.digest))), s.digest, `store entry of ${s.name}`);
    }
    // out/result is the program in the store, and it runs.
    const { stdout } = await run(join(out, 'result'));
    assert.equal(stdout, EXPECTED_OUTPUT);
  });

  void it('second run, nothing changed: every step memoized by the coordinator store, no worker started', async () => {
    const second = await farm(out);
    assert.equal(second.ok, true);
    assert.deepEqual(byStatus(second, 'memoized'), ALL);
    assert.equal(second.built, 0);
    assert.equal(second.workersStarted, 0);
    assert.deepEqual(digests(second), digests(first));
    assert.deepEqual(
      second.steps.map((s) => s.artifactId),
      first.steps.map((s) => s.artifactId),
    );
    assert.equal(second.testOutput, EXPECTED_OUTPUT);
  });

  void it('--touch src/gcd.c: rebuilds exactly gcd.o, the link and the test', async () => {
    const third = await farm(out, '--touch', 'src/gcd.c');
    assert.equal(third.ok, true);
    assert.equal(third.touched, 'src/gcd.c');
    assert.deepEqual(byStatus(third, 'built'), ['gcd.o', 'test tinytest', 'tinytest']);
    assert.deepEqual(byStatus(third, 'memoized'), ['crc32.o', 'main.o', 'primes.o', 'reverse.o']);
    const [before, now] = [digests(first), digests(third)];
    assert.notEqual(now['gcd.o'], before['gcd.o']);
    assert.notEqual(now['tinytest'], before['tinytest']);
    assert.equal(now['primes.o'], before['primes.o']);
    assert.equal(third.testOutput, EXPECTED_OUTPUT);
    assert.ok(existsSync(join(out, 'store', before['tinytest']!)), 'the old program stays in the immutable store');
  });

  void it('--touch --comment-only: the compile reruns, yields the same object, and nothing after it reruns', async () => {
    const fourth = await farm(out, '--touch', 'primes.c', '--comment-only');
    assert.equal(fourth.ok, true);
    assert.deepEqual(byStatus(fourth, 'built'), ['primes.o']);
    assert.deepEqual(byStatus(fourth, 'memoized'), ['crc32.o', 'gcd.o', 'main.o', 'reverse.o', 'test tinytest', 'tinytest']);
    assert.notEqual(
      fourth.steps.find((s) => s.name === 'primes.o')?.artifactId,
      first.steps.find((s) => s.name === 'primes.o')?.artifactId,
    );
    assert.equal(digests(fourth)['primes.o'], digests(first)['primes.o']);
  });
});
