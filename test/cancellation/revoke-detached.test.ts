/**
 * A revoke while the holder is disconnected (ATP_SPEC §8.3-5): the revoke deadline runs while the
 * session is detached; a resume before it gets the REVOKE again, a resume after it learns of the fence
 * by LEASE_LOST. Real worker process over loopback TCP; the worker drops its connection and stays
 * away (a step that never yields) until the test lets it reconnect.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { World, touch, within } from '../fixtures/p4-harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function detachedScene(cancelDeadlineMs: number) {
  world = new World();
  const w = world;
  const { diag } = await w.coordinator({ cancelDeadlineMs, resumeWindowMs: 10_000, leaseTtlMs: 10_000 });
  const worker = await w.worker({ label: 'roamer', kinds: ['p4.spin'] });
  const producer = await w.client();
  const handle = await producer.submit({ kind: 'p4.spin', payload: `detached ${cancelDeadlineMs}` });
  const start = await worker.next('start');
  const go = w.tempPath('go');
  worker.send({ cmd: 'drop', goFile: go });
  const detached = await diag.until((e) => e.event === 'detached', 'the session detached');
  assert.equal(detached.leases, 1);
  const summary = await within(handle.cancel({ reason: 'p4: while away' }), 'CANCEL_RESULT');
  assert.deepEqual(summary, { cancelled: 1, alreadyFinished: 0, stopping: 1 });
  return { w, diag, worker, producer, handle, start, go };
}

void describe('revoke while the holder is detached (ATP_SPEC §8.3-5)', () => {
  void it(
    'sends the REVOKE again on the resumed connection; the worker stops and acknowledges in time [ATP-8.3-5] [ATP-8.4-1] [ATP-8.4-2]',
    { timeout: 60_000 },
    async () => {
      const s = await detachedScene(20_000);
      touch(s.go);
      const session = await s.diag.until((e) => e.event === 'session' && e.resumed === true, 'the resumed session');
      assert.equal(session.sessionId, s.diag.all.find((e) => e.event === 'detached')?.sessionId);
      const abort = await s.worker.next('abort');
      assert.equal(abort.leaseId, s.start.leaseId);
      assert.equal(abort.code, 'ATP_ERR_CANCELLED');
      await s.diag.until((e) => e.event === 'revoke-ack' && e.leaseId === s.start.leaseId, 'REVOKE_ACK after the resume');
      assert.equal(s.diag.filter((e) => e.event === 'revoke-timeout').length, 0);
      assert.equal(await s.handle.state(), 'CANCELLED');
    },
  );

  void it(
    'fences the lease when the deadline passes while detached; the resumed worker learns it by LEASE_LOST and stops [ATP-8.3-5] [ATP-8.3-4] [ATP-5.8-1]',
    { timeout: 60_000 },
    async () => {
      const s = await detachedScene(300);
      const timeout = await s.diag.until((e) => e.event === 'revoke-timeout' && e.leaseId === s.start.leaseId, 'revoke-timeout');
      assert.equal(timeout.notified, false, 'nobody to notify while detached');
      touch(s.go);
      await s.diag.until((e) => e.event === 'session' && e.resumed === true, 'the resumed session');
      const abort = await s.worker.next('abort');
      assert.equal(abort.leaseId, s.start.leaseId);
      assert.equal(abort.code, 'ATP_ERR_CANCELLED', 'the stale reply carries the revoke code');
      assert.equal(s.diag.filter((e) => e.event === 'revoke-ack' && e.leaseId === s.start.leaseId).length, 0);
      assert.equal(await s.handle.state(), 'CANCELLED');
      // The slot is free again.
      await s.producer.submit({ kind: 'p4.spin', payload: 'after the fence' });
      await s.worker.count('start', 2);
    },
  );
});
