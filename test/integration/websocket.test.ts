/**
 * WebSocket end to end (ATP_WIRE §9.3): a worker and a producer over ws:// run the whole lifecycle:
 * submit, lease, partial results, checkpoint, result, cancel with revoke, query, resubmit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Worker } from '../../src/worker/worker.js';
import { WorkerProcess, cleanupAfterEach, startCoordinator } from './helpers.js';

const dec = new TextDecoder();
const cleanup = cleanupAfterEach();

void describe('WebSocket', () => {
  void it(
    'a worker and a producer over ws:// run submit, partials, result, cancel and query end to end',
    { timeout: 120_000 },
    async () => {
      const { coord, store, url } = await startCoordinator({}, 'ws://127.0.0.1:0');
      cleanup.push(() => coord.close());
      assert.match(url, /^ws:\/\//);
      const worker = new Worker({ url, concurrency: 4 });
      let cancelledReason: unknown;
      worker.handle('upper', async (a, ctx) => {
        ctx.partial('step 1');
        await ctx.checkpoint('cp');
        ctx.partial('step 2');
        return dec.decode(a.payload).toUpperCase();
      });
      worker.handle('forever', async (_a, ctx) => {
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            cancelledReason = ctx.signal.reason;
            resolve();
          }),
        );
        return 'stopped';
      });
      await worker.start();
      cleanup.push(() => worker.close());
      const client = await Client.connect(url);
      cleanup.push(() => client.close());

      const h = await client.submit({ kind: 'upper', payload: 'over websocket', follow: 'all' });
      const events: string[] = [];
      for await (const ev of h.events()) {
        if (ev.type === 'partial') events.push(`partial ${dec.decode(ev.data)}`);
        else if (ev.type === 'state') events.push(`state ${ev.state}`);
        else {
          events.push(`result ${ev.outcome.state}`);
          assert.equal(dec.decode(ev.outcome.result), 'OVER WEBSOCKET');
          assert.equal(dec.decode(ev.outcome.checkpoint), 'cp');
        }
      }
      assert.deepEqual(
        events.filter((e) => e.startsWith('partial')),
        ['partial step 1', 'partial step 2'],
      );
      assert.equal(events.at(-1), 'result COMPLETED');

      const long = await client.submit({ kind: 'forever', payload: 'x' });
      while ((await client.query(long.id)).state !== 'LEASED') await new Promise((r) => setTimeout(r, 10));
      const summary = await long.cancel({ reason: 'enough' });
      assert.deepEqual(summary, { cancelled: 1, alreadyFinished: 0, stopping: 1 });
      const out = await long.result();
      assert.equal(out.state, 'CANCELLED');
      assert.equal(out.code, 'ATP_ERR_CANCELLED');
      while (cancelledReason === undefined) await new Promise((r) => setTimeout(r, 10));
      assert.equal((cancelledReason as { code?: string }).code, 'ATP_ERR_CANCELLED');

      const again = await client.submit({ kind: 'upper', payload: 'over websocket' });
      assert.equal(again.duplicate, true);
      assert.equal(dec.decode((await again.result()).result), 'OVER WEBSOCKET');
      assert.equal(store.accepted.size, 1);
    },
  );

  void it('a worker process over ws:// completes a batch submitted over ws://', { timeout: 120_000 }, async () => {
    const { coord, store, url } = await startCoordinator({}, 'ws://127.0.0.1:0');
    cleanup.push(() => coord.close());
    await WorkerProcess.start({ url, name: 'WS', mode: 'echo', concurrency: 8 });
    const client = await Client.connect(url);
    cleanup.push(() => client.close());
    const handles = await client.submitMany(Array.from({ length: 500 }, (_, i) => ({ kind: 'echo', payload: `ws${i}` })));
    const outcomes = await Promise.all(handles.map((h) => h.result()));
    outcomes.forEach((o, i) => assert.equal(dec.decode(o.result), `WS:ws${i}`));
    assert.equal(store.accepted.size, 500);
    assert.deepEqual(store.duplicates(), []);
  });
});
