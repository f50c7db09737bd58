/**
 * Real worker processes over loopback TCP, killed and stopped for real (ATP_SPEC §5.6, §11.5, §12):
 * a worker killed with -9 while holding leases, one killed while sending its result, and one frozen
 * with SIGSTOP past its lease ttl whose late result must be refused.
 */
import assert from 'node:assert/strict';
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { COORDINATOR_DIAGNOSTICS } from '../../src/coordinator/coordinator.js';
import type { Coordinator } from '../../src/coordinator/coordinator.js';
import { WorkerProcess, cleanupAfterEach, startCoordinator, until } from './helpers.js';

const dec = new TextDecoder();
const cleanup = cleanupAfterEach();

async function setUp(options: ConstructorParameters<typeof Coordinator>[0]) {
  const env = await startCoordinator(options);
  const client = await Client.connect(env.url);
  cleanup.push(() => env.coord.close());
  cleanup.push(() => client.close());
  return { ...env, client };
}

/** Count RESULT events per artifact on a tag watch: each must be seen exactly once. */
function countResults(client: Client, tag: string): Map<string, number> {
  const seen = new Map<string, number>();
  const { events, stop } = client.watch({ tag });
  cleanup.push(stop);
  void (async () => {
    for await (const ev of events) if (ev.type === 'result') seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
  })();
  return seen;
}

void describe('worker processes killed and stopped (over loopback TCP)', () => {
  void it(
    're-issues the leases of a worker killed with -9 after the resume window, and every artifact completes once',
    { timeout: 120_000 },
    async () => {
      const { client, store, url } = await setUp({ resumeWindowMs: 300, leaseTtlMs: 10_000 });
      const results = countResults(client, 'kill');
      const handles = await client.submitMany(
        Array.from({ length: 8 }, (_, i) => ({ kind: 'echo', payload: `job-${i}`, tags: ['kill'], maxAttempts: 10 })),
      );
      const a = await WorkerProcess.start({ url, name: 'A', mode: 'never', concurrency: 4, verbose: true });
      await a.waitFor(() => a.count('leased') === 4);
      const heldByA = new Set(a.events.filter((e) => e.ev === 'leased').map((e) => e['id'] as string));
      a.signal('SIGKILL');
      assert.equal((await a.exited).signal, 'SIGKILL');
      const b = await WorkerProcess.start({ url, name: 'B', mode: 'echo', concurrency: 4, delayMs: [0, 5], verbose: true });
      const outcomes = await Promise.all(handles.map((h) => h.result()));
      for (const [i, o] of outcomes.entries()) {
        assert.equal(o.state, 'COMPLETED');
        assert.equal(dec.decode(o.result), `B:job-${i}`);
      }
      for (const id of heldByA) {
        const st = await client.query(id);
        assert.equal(st.epoch, 2, 'the killed worker held epoch 1; the re-issue is epoch 2');
      }
      assert.equal(b.events.filter((e) => e.ev === 'leased' && heldByA.has(e['id'] as string)).length, 4);
      assert.equal(store.accepted.size, 8);
      assert.deepEqual(store.duplicates(), []);
      await until(() => results.size === 8, 'a RESULT for each artifact on the watch');
      assert.ok([...results.values()].every((n) => n === 1));
    },
  );

  void it('a worker killed with -9 while sending its result: every artifact completes exactly once', { timeout: 120_000 }, async (t) => {
    // Frames up to 16 MiB: a result of 12 MB cannot all be in the socket buffers when the worker dies.
    const { client, store, url } = await setUp({ resumeWindowMs: 300, leaseTtlMs: 10_000, maxFrameBytes: 16 * 1024 * 1024 });
    const results = countResults(client, 'mid');
    const handles = await client.submitMany(
      Array.from({ length: 6 }, (_, i) => ({ kind: 'echo', payload: `mid-${i}`, tags: ['mid'], maxAttempts: 10 })),
    );
    const dying: WorkerProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const d = new WorkerProcess({
        url,
        name: `D${i}`,
        mode: 'die-mid-result',
        concurrency: 1,
        delayMs: [0, 20],
        resultBytes: i === 0 ? 900 * 1024 : 12_000_000,
        verbose: true,
      });
      dying.push(d);
      assert.equal((await d.exited).signal, 'SIGKILL');
    }
    await WorkerProcess.start({ url, name: 'B', mode: 'echo', concurrency: 2 });
    const outcomes = await Promise.all(handles.map((h) => h.result()));
    for (const o of outcomes) assert.equal(o.state, 'COMPLETED');
    const byDying = outcomes.filter((o) => /^D\d:/.test(dec.decode(o.result).slice(0, 3))).length;
    // Each dying worker handled one artifact; its result may or may not have arrived whole.
    t.diagnostic(`${byDying} of 3 results sent by a dying worker were accepted`);
    assert.ok(byDying <= 3);
    for (const [i, o] of outcomes.entries()) assert.match(dec.decode(o.result).slice(0, 40), new RegExp(`^(D\\d|B):mid-${i}`));
    assert.equal(store.accepted.size, 6);
    assert.deepEqual(store.duplicates(), []);
    await until(() => results.size === 6, 'a RESULT for each artifact on the watch');
    assert.ok([...results.values()].every((n) => n === 1));
  });

  void it(
    'a worker stopped with SIGSTOP past its lease ttl: after SIGCONT its late COMPLETE is refused, and the re-issued lease result is the accepted one',
    { timeout: 120_000 },
    async () => {
      const sentinel = join(tmpdir(), `atp-sigstop-${process.pid}-${Date.now()}`);
      cleanup.push(() => rmSync(sentinel, { force: true }));
      const { client, store, url } = await setUp({ resumeWindowMs: 300, leaseTtlMs: 400 });
      const stale: Array<Record<string, unknown>> = [];
      const ch = diagnosticsChannel(COORDINATOR_DIAGNOSTICS);
      const onEvent = (m: unknown) => {
        const e = m as Record<string, unknown>;
        if (e['event'] === 'stale') stale.push(e);
      };
      ch.subscribe(onEvent);
      cleanup.push(() => void ch.unsubscribe(onEvent));

      const h = await client.submit({ kind: 'echo', payload: 'frozen', maxAttempts: 10 });
      const a = await WorkerProcess.start({ url, name: 'A', mode: 'hold', sentinel, concurrency: 1, verbose: true });
      const leasedA = await a.waitFor((e) => e.ev === 'leased');
      a.signal('SIGSTOP');
      const b = await WorkerProcess.start({ url, name: 'B', mode: 'echo', concurrency: 1, verbose: true });
      const outcome = await h.result();
      assert.equal(outcome.state, 'COMPLETED');
      assert.equal(dec.decode(outcome.result), 'B:frozen', 'the accepted result is the second worker');
      const leasedB = await b.waitFor((e) => e.ev === 'leased');
      assert.ok((leasedB['epoch'] as number) > (leasedA['epoch'] as number));

      writeFileSync(sentinel, 'go');
      a.signal('SIGCONT');
      await a.waitFor((e) => e.ev === 'completing');
      await until(() => stale.some((e) => e['leaseId'] === leasedA['leaseId']), 'the late COMPLETE of the stopped worker to be refused');
      const refused = stale.find((e) => e['leaseId'] === leasedA['leaseId'])!;
      assert.equal(refused['code'], 'ATP_ERR_LEASE_EXPIRED');
      assert.equal(refused['epoch'], leasedA['epoch']);
      assert.equal(store.accepted.get(h.id), 1);
      assert.equal(dec.decode(store.results.get(h.id) ?? new Uint8Array(0)), 'B:frozen');
      const after = await client.outcome(h.id);
      assert.equal(dec.decode(after!.result), 'B:frozen');
    },
  );
});
