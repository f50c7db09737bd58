/**
 * Churn (ATP_SPEC §11, §12): 20 worker processes join and leave at random, some killed with -9,
 * some draining and leaving gracefully, while 10,000 artifacts flow. Every artifact must end in
 * exactly one terminal state (COMPLETED) with exactly one accepted result, and a watcher must see
 * exactly one RESULT for each.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { WorkerProcess, cleanupAfterEach, startCoordinator } from './helpers.js';

const dec = new TextDecoder();
const cleanup = cleanupAfterEach();

void describe('churn', () => {
  void it(
    '20 worker processes join and leave at random (-9 and graceful) while 10,000 artifacts flow: each completes once',
    { timeout: 240_000 },
    async (t) => {
      const N = 10_000;
      const TOTAL = 20;
      const { coord, store, url } = await startCoordinator({ resumeWindowMs: 300, leaseTtlMs: 2_000 });
      cleanup.push(() => coord.close());
      const client = await Client.connect(url);
      cleanup.push(() => client.close());

      const seen = new Map<string, number>();
      const watch = client.watch({ tag: 'churn' });
      cleanup.push(watch.stop);
      void (async () => {
        for await (const ev of watch.events) if (ev.type === 'result') seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
      })();

      const procs: WorkerProcess[] = [];
      const alive = () => procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null && !leaving.has(p));
      const leaving = new Set<WorkerProcess>();
      let killed = 0;
      let graceful = 0;
      const spawnOne = () => {
        const p = new WorkerProcess({ url, name: `W${procs.length}`, mode: 'echo', concurrency: 8, delayMs: [0, 3] });
        procs.push(p);
        return p;
      };
      await Promise.all([spawnOne(), spawnOne(), spawnOne()].map((p) => p.waitFor((e) => e.ev === 'ready')));

      const handles = await client.submitMany(
        Array.from({ length: N }, (_, i) => ({ kind: 'echo', payload: `c${i}`, tags: ['churn'], maxAttempts: 1000 })),
      );
      let finished = false;
      const all = Promise.all(handles.map((h) => h.result())).finally(() => {
        finished = true;
      });

      // The churn: every 100-300 ms a worker joins, or one leaves (killed with -9, or drained).
      while (!finished) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
        if (finished) break;
        const live = alive();
        const canSpawn = procs.length < TOTAL && live.length < 6;
        if (canSpawn && (live.length < 2 || Math.random() < 0.55)) {
          spawnOne();
        } else if (live.length > 1 && (procs.length < TOTAL || Math.random() < 0.2)) {
          const victim = live[Math.floor(Math.random() * live.length)]!;
          // Only a started worker can drain (before that SIGTERM just ends the process).
          if (Math.random() < 0.5 || victim.count('ready') === 0) {
            victim.signal('SIGKILL');
            killed++;
          } else {
            leaving.add(victim);
            victim.signal('SIGTERM');
            graceful++;
          }
        }
      }
      const outcomes = await all;

      for (const [i, o] of outcomes.entries()) {
        assert.equal(o.state, 'COMPLETED', `artifact ${i}: ${o.state} ${o.code ?? ''} ${o.message}`);
        assert.match(dec.decode(o.result), new RegExp(`^W\\d+:c${i}$`));
      }
      assert.equal(store.accepted.size, N, 'a result accepted for every artifact');
      assert.deepEqual(store.duplicates(), [], 'no result accepted twice');
      const counts = await store.counts();
      assert.equal(counts.COMPLETED, N);
      assert.equal(counts.PENDING + counts.LEASED + counts.FAILED + counts.CANCELLED + counts.EXPIRED, 0);
      const deadline = Date.now() + 60_000;
      while (seen.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(seen.size, N, 'the watcher saw a RESULT for every artifact');
      assert.ok(
        [...seen.values()].every((n) => n === 1),
        'and exactly one each',
      );
      t.diagnostic(`${procs.length} worker processes, ${killed} killed with -9, ${graceful} drained`);
      assert.ok(procs.length >= 8, `workers joined during the run (${procs.length})`);
      assert.ok(killed > 0 || graceful > 0, `workers left during the run (${killed} killed, ${graceful} drained)`);
      // Workers that drained left with a graceful GOAWAY and exited 0.
      for (const p of leaving) {
        const x = await p.exited;
        assert.equal(x.code, 0, `${p.name} drained and left cleanly; stderr: ${p.stderr.slice(-500)}`);
      }
    },
  );
});
