/**
 * Connections dropped at random points (ATP_SPEC §11.5, §11.6, §12): workers lose their TCP
 * connection at random (without GOAWAY), reconnect and resume their session; every artifact still
 * completes, with exactly one accepted result.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { Client } from '../../src/client/client.js';
import { COORDINATOR_DIAGNOSTICS } from '../../src/coordinator/coordinator.js';
import { Worker } from '../../src/worker/worker.js';
import { WorkerProcess, cleanupAfterEach, startCoordinator } from './helpers.js';

const dec = new TextDecoder();
const cleanup = cleanupAfterEach();

void describe('connections dropped at random', () => {
  void it(
    'workers that drop their connection at random points resume, and 3,000 artifacts each complete exactly once',
    { timeout: 120_000 },
    async () => {
      const N = 3_000;
      const { coord, store, url } = await startCoordinator({ resumeWindowMs: 3_000, leaseTtlMs: 800 });
      cleanup.push(() => coord.close());
      const sessions = { resumed: 0, fresh: 0 };
      const ch = diagnosticsChannel(COORDINATOR_DIAGNOSTICS);
      const onEvent = (m: unknown) => {
        const e = m as Record<string, unknown>;
        if (e['event'] === 'session' && e['roles'] === 1) sessions[e['resumed'] === true ? 'resumed' : 'fresh']++;
      };
      ch.subscribe(onEvent);
      cleanup.push(() => void ch.unsubscribe(onEvent));

      // In-process workers that drop their connection at random, and worker processes that do too.
      const workers: Worker[] = [];
      let drops = 0;
      for (let i = 0; i < 3; i++) {
        const w = new Worker({ url, concurrency: 8 });
        w.handle('echo', async (a) => {
          await new Promise((r) => setTimeout(r, Math.random() * 4));
          return `w${i}:${dec.decode(a.payload)}`;
        });
        await w.start();
        workers.push(w);
        cleanup.push(() => w.close());
      }
      let stopped = false;
      const dropLoop = (w: Worker) => {
        if (stopped) return;
        setTimeout(
          () => {
            if (stopped) return;
            w.dropConnection();
            drops++;
            dropLoop(w);
          },
          20 + Math.random() * 100,
        );
      };
      workers.forEach(dropLoop);
      cleanup.push(() => {
        stopped = true;
      });
      const procs = await Promise.all(
        [0, 1].map((i) =>
          WorkerProcess.start({ url, name: `P${i}`, mode: 'echo', concurrency: 8, delayMs: [0, 4], dropEveryMs: [40, 160] }),
        ),
      );

      const client = await Client.connect(url);
      cleanup.push(() => client.close());
      const handles = await client.submitMany(Array.from({ length: N }, (_, i) => ({ kind: 'echo', payload: `d${i}`, maxAttempts: 1000 })));
      const outcomes = await Promise.all(handles.map((h) => h.result()));
      stopped = true;
      for (const [i, o] of outcomes.entries()) {
        assert.equal(o.state, 'COMPLETED', `artifact ${i}: ${o.state} ${o.code ?? ''} ${o.message}`);
        assert.match(dec.decode(o.result), new RegExp(`^(w\\d|P\\d):d${i}$`));
      }
      assert.equal(store.accepted.size, N);
      assert.deepEqual(store.duplicates(), []);
      const procDrops = procs.reduce((n, p) => n + p.count('dropped'), 0);
      assert.ok(drops + procDrops > 10, `connections were dropped (${drops} in-process, ${procDrops} in processes)`);
      assert.ok(sessions.resumed > 0, 'sessions were resumed');
      const counts = await store.counts();
      assert.equal(counts.COMPLETED, N);
      assert.equal(counts.PENDING + counts.LEASED, 0);
    },
  );
});
