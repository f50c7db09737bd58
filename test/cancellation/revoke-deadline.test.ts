/**
 * The revoke deadline (ATP_SPEC §8.3): a worker that never acknowledges a REVOKE is fenced when the
 * deadline passes, and what it sends later about the lease is refused. Real processes over loopback TCP.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { World, touch, within } from '../fixtures/p4-harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

void describe('revoke deadline (ATP_SPEC §8.3)', () => {
  void it(
    'fences a lease whose worker ignores the REVOKE: its later COMPLETE gets LEASE_LOST(ATP_ERR_CANCELLED) and the artifact stays CANCELLED [ATP-8.3-2] [ATP-8.3-4] [ATP-8.3-6] [ATP-5.8-1]',
    { timeout: 60_000 },
    async () => {
      world = new World();
      const w = world;
      const { coord, diag } = await w.coordinator({ cancelDeadlineMs: 300 });
      const go = w.tempPath('go');
      // A handler in a CPU-bound step that never yields: it does not read the REVOKE, does not
      // acknowledge it, and keeps running until the test lets it finish.
      const stubborn = await w.worker({ label: 'stubborn', kinds: ['p4.late'], mode: 'block', goFile: go });
      const producer = await w.client();
      const handle = await producer.submit({ kind: 'p4.late', payload: 'ignore the revoke', leaseTtlMs: 30_000 });
      const start = await stubborn.next('start');

      // The state changes at once; the answer does not wait for the worker [ATP-8.3-6].
      const summary = await within(handle.cancel({ reason: 'p4: stop now' }), 'CANCEL_RESULT');
      assert.deepEqual(summary, { cancelled: 1, alreadyFinished: 0, stopping: 1 });
      assert.equal(await handle.state(), 'CANCELLED');

      // No REVOKE_ACK: at the deadline the coordinator fences the lease and reports it [ATP-8.3-4].
      const timeout = await diag.until((e) => e.event === 'revoke-timeout' && e.leaseId === start.leaseId, 'revoke-timeout');
      assert.equal(timeout.artifactId, handle.id);
      assert.equal(timeout.notified, true, 'LEASE_LOST pushed to the connected holder');
      assert.equal(coord.sessions.get(timeout.sessionId as string)?.revoking.has(start.leaseId) ?? false, false);

      // The handler finishes after the fence; its COMPLETE is refused with the revoke's code [ATP-8.3-2].
      touch(go);
      const refused = await diag.until(
        (e) => e.event === 'stale' && e.leaseId === start.leaseId && e.frame === undefined,
        'LEASE_LOST for the late COMPLETE',
      );
      assert.equal(refused.code, 'ATP_ERR_CANCELLED');
      await stubborn.next('return', (r) => r.leaseId === start.leaseId);
      // Then the worker reads the REVOKE and acknowledges it: too late, LEASE_LOST [ATP-8.3-4] [ATP-5.7-2].
      const lateAck = await diag.until(
        (e) => e.event === 'stale' && e.leaseId === start.leaseId && e.frame === 'REVOKE_ACK',
        'LEASE_LOST for the late REVOKE_ACK',
      );
      assert.equal(lateAck.code, 'ATP_ERR_CANCELLED');
      assert.equal(
        diag.filter((e) => e.event === 'revoke-ack' && e.leaseId === start.leaseId).length,
        0,
        'a REVOKE_ACK after the deadline does not count',
      );

      // The artifact stays CANCELLED with the cancel's code and reason; no result was accepted.
      const outcome = await within(handle.result(), 'RESULT');
      assert.equal(outcome.state, 'CANCELLED');
      assert.equal(outcome.code, 'ATP_ERR_CANCELLED');
      assert.equal(outcome.message, 'p4: stop now');
      assert.equal(outcome.digest, null);
      const again = await producer.outcome(handle.id);
      assert.equal(again?.state, 'CANCELLED');
      assert.equal(new TextDecoder().decode(again?.result), '', 'the refused result was not stored');
    },
  );

  void it(
    'counts a REVOKE_ACK before the deadline as the end of the lease: no revoke-timeout [ATP-8.3-3] [ATP-8.4-2]',
    { timeout: 60_000 },
    async () => {
      world = new World();
      const w = world;
      const { diag } = await w.coordinator({ cancelDeadlineMs: 2_000 });
      const polite = await w.worker({ label: 'polite', kinds: ['p4.spin'] });
      const producer = await w.client();
      const handle = await producer.submit({ kind: 'p4.spin', payload: 'stop when asked' });
      const start = await polite.next('start');
      assert.deepEqual(await handle.cancel(), { cancelled: 1, alreadyFinished: 0, stopping: 1 });
      const abort = await polite.next('abort');
      assert.equal(abort.leaseId, start.leaseId);
      assert.equal(abort.code, 'ATP_ERR_CANCELLED');
      await diag.until((e) => e.event === 'revoke-ack' && e.leaseId === start.leaseId, 'REVOKE_ACK');
      // The worker's slot is free again: it takes the next artifact (ATP-8.4-4).
      await producer.submit({ kind: 'p4.spin', payload: 'next one' });
      await polite.count('start', 2);
      assert.equal(diag.filter((e) => e.event === 'revoke-timeout').length, 0);
    },
  );
});
