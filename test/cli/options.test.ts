/** CLI flag parsers: what they accept, and what a bad value is told. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { durationFlag } from '../../src/cli/options.js';

void describe('durationFlag (atp coordinator --retain)', () => {
  const retain = durationFlag('--retain');

  void it('reads milliseconds, a number with a unit, and forever', () => {
    assert.equal(retain('1500'), 1500);
    assert.equal(retain('250ms'), 250);
    assert.equal(retain('90s'), 90_000);
    assert.equal(retain('30m'), 1_800_000);
    assert.equal(retain(' 24h '), 86_400_000);
    assert.equal(retain('7d'), 604_800_000);
    assert.equal(retain('forever'), Infinity);
  });

  void it('refuses anything else, saying what it takes and giving an example', () => {
    for (const bad of ['', '0', '0h', '-5s', '1.5h', '10 minutes', '3w', 'never', '9'.repeat(20)]) {
      assert.throws(
        () => retain(bad),
        (err: Error) =>
          err.message.includes('--retain must be a positive duration') &&
          err.message.includes(JSON.stringify(bad)) &&
          err.message.includes('--retain 24h'),
        `accepted ${JSON.stringify(bad)}`,
      );
    }
  });
});
