/**
 * Client.close() over TCP: the submits already made finish before the client leaves — a large one
 * is sent whole, and each is answered — and close() gives up on them after its timeout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { isAtpError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { NewArtifact, SubmitOutcome } from '../../src/store/store.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { cleanupAfterEach, startCoordinator } from './helpers.js';

const cleanup = cleanupAfterEach();
const MiB = 1024 * 1024;

/** A store that never answers a batch of submits with one of kind `stuck` in it. */
class StuckStore extends MemoryStore {
  override submit(batch: readonly NewArtifact[], now: number): Promise<SubmitOutcome[]> {
    if (batch.some((a) => a.kind === 'stuck')) return new Promise<SubmitOutcome[]>(() => undefined);
    return super.submit(batch, now);
  }
}

void describe('Client.close()', () => {
  void it('lets a 16 MiB submit that was not awaited be sent whole and accepted before it leaves', { timeout: 60_000 }, async () => {
    const { coord, url } = await startCoordinator();
    cleanup.push(() => coord.close());
    const client = await Client.connect(url);
    const payload = new Uint8Array(16 * MiB).fill(3);
    const submitted = client.submit({ kind: 'big', payload });
    const small = client.submit({ kind: 'small', payload: 'x' });
    // The SDK hashes the large payload in slices first, so nothing of it has been sent yet.
    await client.close();
    const [h, s] = await Promise.all([submitted, small]);
    assert.equal(h.acceptedState, 'PENDING');
    assert.equal(s.acceptedState, 'PENDING');

    const other = await Client.connect(url);
    cleanup.push(() => other.close());
    const q = await other.query(h.id);
    assert.equal(q.state, 'PENDING', 'the coordinator has it');
    assert.equal(q.kind, 'big');
  });

  void it('gives up on submits still unanswered after its timeout: they reject with ATP_ERR_UNAVAILABLE', { timeout: 30_000 }, async () => {
    const coord = new Coordinator({ store: new StuckStore() });
    const l = await coord.listen('tcp://127.0.0.1:0');
    cleanup.push(() => coord.close());
    const client = await Client.connect(l.url);
    const fine = await client.submit({ kind: 'fine', payload: 'y' });
    const stuck = client.submit({ kind: 'stuck', payload: 'x' });
    const rejected = stuck.then(
      () => assert.fail('a submit the store never answered was resolved'),
      (err: unknown) => err,
    );
    await client.close({ timeoutMs: 200 });
    const err = await rejected;
    assert.ok(isAtpError(err) && err.code === 'ATP_ERR_UNAVAILABLE', String(err));
    assert.equal(fine.acceptedState, 'PENDING');
  });
});
