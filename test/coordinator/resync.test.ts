/**
 * A shared store's `resync` event (its notification channel was down and is back, ATP_SPEC §11.8):
 * the coordinator reads again what its watchers wait for, so that a result decided elsewhere while
 * the channel was down still reaches them.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Worker } from '../../src/worker/worker.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { ExternalEvent } from '../../src/store/store.js';
import { settle, startCoordinator } from './harness.js';
import type { TestCoordinator } from './harness.js';

/** A memory store that plays a shared one: the test decides transitions behind the coordinator's back. */
class SharedLikeStore extends MemoryStore {
  handlers: Array<(ev: ExternalEvent) => void> = [];
  subscribe(handler: (ev: ExternalEvent) => void): void {
    this.handlers.push(handler);
  }
}

let tc: TestCoordinator | undefined;
let client: Client | undefined;
let worker: Worker | undefined;
afterEach(async () => {
  await worker?.close();
  await client?.close();
  await tc?.close();
  worker = client = tc = undefined;
});

void describe('coordinator: resync after missed notifications', () => {
  void it('a result decided elsewhere, whose notification was lost, reaches the watcher on resync', async () => {
    const store = new SharedLikeStore();
    tc = await startCoordinator({ store });
    client = await Client.connect(tc.url, { clock: tc.clock });
    const [h] = await client.submitMany([{ kind: 'elsewhere', payload: 'p' }]);
    let settled = false;
    const result = h!.result().then((r) => ((settled = true), r));
    // "Another coordinator" leases and completes it; its notification never arrives here.
    const now = tc.clock.now();
    await store.saveSession({ sessionId: 'other', tokenHash: '00', nodeId: 'n', tenant: '', roles: 1 });
    const [g] = await store.acquire({
      tenant: '',
      sessionId: 'other',
      nodeId: 'n',
      kinds: new Set(['elsewhere']),
      max: 1,
      now,
      newLeaseId: () => 'f'.repeat(32),
    });
    assert.ok(g);
    const out = await store.complete({ leaseId: g.leaseId, epoch: g.epoch, sessionId: 'other' }, new TextEncoder().encode('done'), now);
    assert.equal(out.kind, 'ok');
    await settle();
    assert.equal(settled, false, 'nothing told the coordinator yet');
    for (const handler of store.handlers) handler({ kind: 'resync' });
    const r = await result;
    assert.equal(r.state, 'COMPLETED');
    assert.equal(new TextDecoder().decode(r.result), 'done');
    assert.ok(tc.events.some((e) => e.event === 'resync'));
  });

  void it('a lease that another coordinator ended, whose REVOKE was lost, is revoked on resync', async () => {
    const store = new SharedLikeStore();
    tc = await startCoordinator({ store });
    worker = new Worker({ url: tc.url, clock: tc.clock });
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let reason: unknown;
    worker.handle('long', async (_a, ctx) => {
      started();
      await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
      reason = ctx.signal.reason;
      return 'too late';
    });
    await worker.start();
    client = await Client.connect(tc.url, { clock: tc.clock });
    const [h] = await client.submitMany([{ kind: 'long', payload: 'p' }]);
    await running;
    // "Another coordinator" cancels it: the store ends the lease; the REVOKE it would send is lost.
    const out = await store.cancel('', h!.id, false, 'cancelled elsewhere', tc.clock.now());
    assert.equal(out.cancelled.length, 1);
    assert.equal((await store.heldLeases()).length, 0);
    await settle();
    assert.equal(reason, undefined, 'the handler runs on: nothing told the coordinator');
    for (const handler of store.handlers) handler({ kind: 'resync' });
    while (reason === undefined) await settle();
    assert.equal((reason as { code?: string }).code, 'ATP_ERR_STALE_LEASE');
    assert.ok(tc.events.some((e) => e.event === 'resync'));
  });
});
