/**
 * Handlers in worker_threads (worker.handleInThreads, docs/worker-threads.md; ATP-2.3-2, ATP-8.4-1,
 * ATP-8.4-2, ATP-8.4-3): a CPU-bound handler neither starves renewals nor delays a cancel; a handler
 * that ignores its signal is terminated and its slot keeps working; throws become FAIL; partials and
 * checkpoints cross the thread in order. Real coordinator over loopback TCP; outcomes only, no timing.
 */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { defaultHardStopMs } from '../../src/worker/thread-pool.js';
import { rendezvous } from '../fixtures/thread-handlers.js';
import { FIXTURES, text, withHarness } from './helpers.js';
import type { Diag, Harness } from './helpers.js';

const T = { timeout: 60_000 };

/** The outcome of the revoke of the (only) revoked lease: 'revoke-ack' or 'revoke-timeout'. */
const revokeOutcome = (h: Harness): Promise<Diag> => h.coordEvents.until((e) => e.event === 'revoke-ack' || e.event === 'revoke-timeout');

void describe('worker threads: renewals while busy', () => {
  void it('a CPU-bound handler that never yields keeps its 300 ms lease for ~2 s of work and completes once', T, () =>
    withHarness({ leaseTtlMs: 300 }, async (h) => {
      const w = h.worker().handleInThreads('busy', { module: FIXTURES, export: 'busy', threads: 1 });
      await w.start();
      const handle = await h.client.submit({ kind: 'busy', payload: JSON.stringify({ check: 'signal', ms: 2000 }), leaseTtlMs: 300 });
      const out = await handle.result();
      assert.equal(out.state, 'COMPLETED', out.message);
      assert.match(text(out.result), /^hashes=\d+ attempt=1 /);
      assert.deepEqual(
        h.coordEvents.filter((e) => e.event === 'lease-lost' || e.event === 'stale'),
        [],
        'the lease was never lost',
      );
      assert.equal(h.fixtures.filter((e) => e.id === handle.id && e.event === 'started').length, 1, 'the handler ran once');
      assert.equal(w.leased, 1, 'one lease, never re-issued');
      const status = await h.client.query(handle.id);
      assert.equal(status.epoch, 1);
    }),
  );
});

void describe('worker threads: cancellation reaches a loop that never yields', () => {
  for (const check of ['signal', 'cancelled', 'throw'] as const) {
    void it(
      `stops a busy loop polling ${check === 'signal' ? 'ctx.signal.aborted' : check === 'cancelled' ? 'ctx.cancelled()' : 'ctx.throwIfCancelled()'}; REVOKE_ACK, not a timeout`,
      T,
      () =>
        withHarness({}, async (h) => {
          // A hard stop far beyond the cancel deadline: only a cooperative stop can acknowledge in time.
          const w = h.worker().handleInThreads('busy', { module: FIXTURES, export: 'busy', threads: 1, hardStopMs: 600_000 });
          await w.start();
          const handle = await h.client.submit({ kind: 'busy', payload: JSON.stringify({ check }) });
          await h.fixtures.until((e) => e.id === handle.id && e.event === 'started');
          const summary = await h.client.cancel(handle.id, { reason: 'test cancel' });
          assert.deepEqual(summary, { cancelled: 1, alreadyFinished: 0, stopping: 1 });
          const out = await handle.result();
          assert.equal(out.state, 'CANCELLED');
          const seen = await h.fixtures.until((e) => e.id === handle.id && e.event === 'aborted');
          assert.equal(seen.code, 'ATP_ERR_CANCELLED');
          assert.equal(seen.how, check === 'throw' ? 'thrown' : check);
          assert.equal((await revokeOutcome(h)).event, 'revoke-ack');
          assert.deepEqual(
            h.poolEvents.filter((e) => e.event === 'hard-stop'),
            [],
          );
          // The slot is free again: the next artifact runs on the same thread.
          const next = await h.client.submit({ kind: 'busy', payload: JSON.stringify({ check, ms: 0 }) });
          assert.equal((await next.result()).state, 'COMPLETED');
          assert.equal(h.poolEvents.filter((e) => e.event === 'thread-start').length, 1, 'no thread was replaced');
        }),
    );
  }

  void it("wakes an async handler through the 'abort' event (posted message)", T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('sleepy', { module: FIXTURES, export: 'sleepy', threads: 1, hardStopMs: 600_000 });
      await w.start();
      const handle = await h.client.submit({ kind: 'sleepy', payload: 'zz' });
      await h.fixtures.until((e) => e.id === handle.id && e.event === 'started');
      await h.client.cancel(handle.id);
      assert.equal((await handle.result()).state, 'CANCELLED');
      const seen = await h.fixtures.until((e) => e.id === handle.id && e.event === 'aborted');
      assert.deepEqual([seen.code, seen.abortEvents, seen.error], ['ATP_ERR_CANCELLED', 1, 'AbortError']);
      assert.equal((await revokeOutcome(h)).event, 'revoke-ack');
    }),
  );
});

void describe('worker threads: hard stop', () => {
  void it(
    'terminates a handler that ignores its signal after hardStopMs, acknowledges the revoke, and the slot serves the next artifact',
    T,
    () =>
      withHarness({}, async (h) => {
        const w = h.worker().handleInThreads('ignoring', { module: FIXTURES, export: 'ignoring', threads: 1, hardStopMs: 200 });
        await w.start();
        const handle = await h.client.submit({ kind: 'ignoring', payload: 'ignore' });
        await h.fixtures.until((e) => e.id === handle.id && e.event === 'started');
        await h.client.cancel(handle.id);
        assert.equal((await handle.result()).state, 'CANCELLED');
        const stop = await h.poolEvents.until((e) => e.event === 'hard-stop');
        assert.equal(stop.hardStopMs, 200);
        assert.equal(stop.artifactId, handle.id);
        assert.equal((await revokeOutcome(h)).event, 'revoke-ack');
        const next = await h.client.submit({ kind: 'ignoring', payload: 'next' });
        const out = await next.result();
        assert.equal(out.state, 'COMPLETED');
        assert.equal(text(out.result), 'echo:next');
        assert.equal(h.poolEvents.filter((e) => e.event === 'thread-start').length, 2, 'a fresh thread took the slot');
        assert.deepEqual(
          h.fixtures.filter((e) => e.event === 'finished'),
          [],
        );
      }),
  );

  void it('by default stops a little before the cancel deadline announced in WELCOME', T, () =>
    withHarness({ cancelDeadlineMs: 1000 }, async (h) => {
      const w = h.worker().handleInThreads('ignoring', { module: FIXTURES, export: 'ignoring', threads: 1 });
      await w.start();
      const handle = await h.client.submit({ kind: 'ignoring', payload: 'ignore' });
      await h.fixtures.until((e) => e.id === handle.id && e.event === 'started');
      await h.client.cancel(handle.id);
      const stop = await h.poolEvents.until((e) => e.event === 'hard-stop');
      assert.equal(stop.hardStopMs, 800);
      assert.equal((await revokeOutcome(h)).event, 'revoke-ack');
    }),
  );

  void it('derives the default from the cancel deadline', () => {
    assert.equal(defaultHardStopMs(undefined), 1000);
    assert.equal(defaultHardStopMs(5000), 4000);
    assert.equal(defaultHardStopMs(30_000), 29_000);
    assert.equal(defaultHardStopMs(1000), 800);
    assert.equal(defaultHardStopMs(100), 50);
  });
});

void describe('worker threads: failures', () => {
  const cases = [
    { payload: 'fatal', maxAttempts: 3, code: 'ATP_ERR_HANDLER_FATAL', message: /nope: a final failure/, attempts: [1] },
    { payload: 'flag', maxAttempts: 3, code: 'ATP_ERR_HANDLER_FATAL', message: /flagged final/, attempts: [1] },
    { payload: 'retryable', maxAttempts: 2, code: 'ATP_ERR_ATTEMPTS_EXHAUSTED', message: /boom: a retryable failure/, attempts: [1, 2] },
    { payload: 'string', maxAttempts: 1, code: 'ATP_ERR_ATTEMPTS_EXHAUSTED', message: /a thrown string/, attempts: [1] },
  ];
  for (const c of cases) {
    void it(`a ${c.payload} throw in the thread becomes FAIL and the artifact ends ${c.code}`, T, () =>
      withHarness({}, async (h) => {
        const w = h.worker().handleInThreads('throwing', { module: FIXTURES, export: 'throwing', threads: 1 });
        await w.start();
        const handle = await h.client.submit({ kind: 'throwing', payload: c.payload, maxAttempts: c.maxAttempts });
        const out = await handle.result();
        assert.equal(out.state, 'FAILED');
        assert.equal(out.code, c.code);
        assert.match(out.message, c.message);
        assert.deepEqual(
          h.fixtures.filter((e) => e.id === handle.id && e.event === 'attempt').map((e) => e.attempt),
          c.attempts,
        );
      }),
    );
  }

  void it('a thread that dies under its handler fails the lease (retryable) and is replaced', T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('crashing', { module: FIXTURES, export: 'crashing', threads: 1 });
      await w.start();
      const dead = await h.client.submit({ kind: 'crashing', payload: 'exit', maxAttempts: 1 });
      const out = await dead.result();
      assert.equal(out.state, 'FAILED');
      assert.equal(out.code, 'ATP_ERR_ATTEMPTS_EXHAUSTED');
      assert.match(out.message, /the handler thread stopped \(exit code 3\)/);
      const next = await h.client.submit({ kind: 'crashing', payload: 'fine' });
      assert.equal(text((await next.result()).result), 'alive');
    }),
  );

  void it('a result that cannot cross the thread (a buffer already moved away) fails the lease instead of hanging', T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('reuse', { module: FIXTURES, export: 'reuse', threads: 1 });
      await w.start();
      const handle = await h.client.submit({ kind: 'reuse', payload: 'x', maxAttempts: 1, follow: 'all' });
      const out = await handle.result();
      assert.equal(out.state, 'FAILED');
      assert.equal(out.code, 'ATP_ERR_ATTEMPTS_EXHAUSTED');
      assert.match(out.message, /already moved out of the thread/);
      assert.deepEqual([...out.result], [1, 2, 3], 'the partial was sent');
    }),
  );

  void it('start() rejects when the module has no such function export, or does not load', T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('x', { module: FIXTURES, export: 'notAFunction', threads: 2 });
      await assert.rejects(w.start(), /cannot load handler "notAFunction" .*no function export "notAFunction" \(function exports: .*busy/);
      const w2 = h.worker().handleInThreads('y', { module: new URL('./no-such-module.js', FIXTURES) });
      await assert.rejects(w2.start(), /cannot load handler "default" from .*no-such-module\.js/);
    }),
  );
});

void describe('worker threads: partials, checkpoints and bytes', () => {
  void it('partial() and checkpoint() reach the producer in order, and the next lease resumes from the checkpoint', T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('progress', { module: FIXTURES, export: 'progress', threads: 1 });
      await w.start();
      const handle = await h.client.submit({ kind: 'progress', payload: 'retry', follow: 'all' });
      const partials: string[] = [];
      for await (const p of handle.partials()) partials.push(text(p));
      assert.deepEqual(partials, ['p1', 'p2', 'p3']);
      const out = await handle.result();
      assert.equal(out.state, 'COMPLETED');
      assert.equal(text(out.result), 'done from c2');
      const resumed = await h.fixtures.until((e) => e.id === handle.id && e.event === 'resumed');
      assert.deepEqual([resumed.attempt, resumed.checkpoint, resumed.lastPartialSeq], [2, 'c2', 2]);
    }),
  );

  void it('a failed artifact keeps the last partial and checkpoint sent from the thread', T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('progress', { module: FIXTURES, export: 'progress', threads: 1 });
      await w.start();
      const handle = await h.client.submit({ kind: 'progress', payload: 'fatal' });
      const out = await handle.result();
      assert.equal(out.state, 'FAILED');
      assert.equal(out.code, 'ATP_ERR_HANDLER_FATAL');
      assert.equal(text(out.result), 'p2');
      assert.equal(text(out.checkpoint), 'c2');
    }),
  );

  void it('moves a large payload into the thread and the result back, intact', T, () =>
    withHarness({}, async (h) => {
      const w = h.worker().handleInThreads('bytes', { module: FIXTURES, export: 'bytes', threads: 1 });
      await w.start();
      const payload = randomBytes(600 * 1024);
      const handle = await h.client.submit({ kind: 'bytes', payload });
      const out = await handle.result();
      assert.equal(out.state, 'COMPLETED');
      const seen = await h.fixtures.until((e) => e.id === handle.id && e.event === 'payload');
      assert.deepEqual([seen.length, seen.whole, seen.digest], [payload.length, true, createHash('sha256').update(payload).digest('hex')]);
      assert.equal(out.result.length, payload.length);
      assert.ok(out.result.every((b, i) => b === (payload[i]! ^ 0xff)));
    }),
  );
});

void describe('worker threads: concurrency and credits', () => {
  void it('runs as many handlers at once as threads, plus the in-process concurrency', T, () =>
    withHarness({}, async (h) => {
      // Three handlers wait for each other: they all finish only if all three run at once, i.e. the
      // worker announced 2 thread slots + 1 in-process slot.
      const w = h
        .worker({ concurrency: 1 })
        .handleInThreads('cpu', { module: FIXTURES, export: 'rendezvous', threads: 2 })
        .handle('io', (artifact) => rendezvous(artifact));
      await w.start();
      const handles = await h.client.submitMany([
        { kind: 'cpu', payload: 'a' },
        { kind: 'cpu', payload: 'b' },
        { kind: 'io', payload: 'c' },
      ]);
      for (const x of handles) await h.fixtures.until((e) => e.id === x.id && e.event === 'started');
      h.tell({ id: 'all', event: 'go' });
      const outs = await Promise.all(handles.map((x) => x.result()));
      assert.deepEqual(
        outs.map((o) => text(o.result)),
        ['went:cpu', 'went:cpu', 'went:io'],
      );
    }),
  );
});

void describe('worker threads: queued leases and drain', () => {
  void it('a lease waiting for a busy thread is still renewed, and a cancel stops it before it starts', T, () =>
    withHarness({ leaseTtlMs: 300 }, async (h) => {
      // 1 in-process slot + 1 thread = 2 credits: a second 'busy' lease waits in the pool's queue.
      const w = h
        .worker({ concurrency: 1 })
        .handleInThreads('busy', { module: FIXTURES, export: 'busy', threads: 1, hardStopMs: 600_000 })
        .handle('io', () => Promise.resolve('io'));
      await w.start();
      const first = await h.client.submit({ kind: 'busy', payload: JSON.stringify({ check: 'signal', n: 1 }), leaseTtlMs: 300 });
      await h.fixtures.until((e) => e.id === first.id && e.event === 'started');
      const second = await h.client.submit({ kind: 'busy', payload: JSON.stringify({ check: 'signal', n: 2 }), leaseTtlMs: 300 });
      await h.poolEvents.until((e) => e.event === 'queued' && e.artifactId === second.id);
      assert.equal((await h.client.cancel(second.id)).stopping, 1);
      assert.equal((await second.result()).state, 'CANCELLED');
      assert.equal((await revokeOutcome(h)).event, 'revoke-ack');
      assert.deepEqual(
        h.fixtures.filter((e) => e.id === second.id),
        [],
        'the queued handler never ran',
      );
      await h.client.cancel(first.id);
      assert.equal((await first.result()).state, 'CANCELLED');
      assert.deepEqual(
        h.coordEvents.filter((e) => e.event === 'lease-lost'),
        [],
      );
    }),
  );

  void it('a drain with hand-back stops the thread, releases the lease with its final checkpoint, and another worker resumes', T, () =>
    withHarness({}, async (h) => {
      const a = h.worker().handleInThreads('handback', { module: FIXTURES, export: 'handback', threads: 1 });
      await a.start();
      const handle = await h.client.submit({ kind: 'handback', payload: 'work' });
      await h.fixtures.until((e) => e.id === handle.id && e.event === 'started');
      await a.drain('handback');
      const seen = await h.fixtures.until((e) => e.id === handle.id && e.event === 'handing-back');
      assert.equal(seen.code, 'ATP_ERR_WORKER_LEAVING');
      const b = h.worker().handleInThreads('handback', { module: FIXTURES, export: 'handback', threads: 1 });
      await b.start();
      const out = await handle.result();
      assert.equal(out.state, 'COMPLETED');
      assert.equal(text(out.result), 'resumed from final');
      assert.deepEqual(
        h.poolEvents.filter((e) => e.event === 'hard-stop'),
        [],
      );
    }),
  );
});
