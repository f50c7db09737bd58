import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function primesBelow(n: number): number {
  const sieve = new Uint8Array(n);
  let count = 0;
  for (let i = 2; i < n; i++) {
    if (sieve[i] !== 0) continue;
    count++;
    for (let j = i * i; j < n; j += i) sieve[j] = 1;
  }
  return count;
}

void test('atp demo (the README main job) runs its four steps and counts the primes right', () => {
  const size = 20_000;
  const r = spawnSync(process.execPath, [main, 'demo', '--size', String(size)], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
  const out = r.stdout;
  const expected = primesBelow(12 * size).toLocaleString('en');
  assert.match(out, new RegExp(`${expected} primes below ${(12 * size).toLocaleString('en')}`));
  assert.match(out, /children now: 20 CANCELLED of 20/);
  assert.match(out, /a child submitted after the cancel is born CANCELLED/);
  assert.match(out, /all 6 of 6 completed/);
  assert.match(out, /duplicate=true, state COMPLETED/);
  assert.equal((out.match(/COMPLETED: \d+ primes/g) ?? []).length, 12);
});
