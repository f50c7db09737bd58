/**
 * The worker SDK and the capability revoke-batch (ATP_SPEC §8.3-7, ATP_WIRE §6.31, §6.32): it offers
 * the capability, stops every lease a batched REVOKE names and acknowledges them all; against a fake
 * coordinator, a REVOKE whose `more` is not a whole number of entries closes the connection with
 * ATP_ERR_PROTOCOL.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { wireCodeOf } from '../../src/errors.js';
import { randomId } from '../../src/internal/ids.js';
import { listen } from '../../src/transport/url.js';
import type { Transport } from '../../src/transport/transport.js';
import { Capability, FrameDecoder, Limits, PREFACE, decodeBody, encodeFrame } from '../../src/wire/index.js';
import type { Message } from '../../src/wire/index.js';
import { Worker } from '../../src/worker/worker.js';
import { settle, startCoordinator } from '../coordinator/harness.js';
import type { TestCoordinator } from '../coordinator/harness.js';

let tc: TestCoordinator | undefined;
let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers = [];
  await tc?.close();
  tc = undefined;
});

void describe('worker SDK with revoke-batch', () => {
  void it('offers the capability, stops every handler of a subtree cancel and acknowledges every lease [ATP-8.3-7] [ATP-8.4-1] [ATP-8.4-2]', async () => {
    tc = await startCoordinator();
    const reasons: unknown[] = [];
    let running = 0;
    let allRunning!: () => void;
    const ready = new Promise<void>((r) => (allRunning = r));
    const w = new Worker({ url: tc.url, clock: tc.clock, concurrency: 6 });
    w.handle('hold', async (_a, ctx) => {
      if (++running === 6) allRunning();
      await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
      reasons.push(ctx.signal.reason);
    });
    await w.start();
    closers.push(() => w.close());
    assert.deepEqual(w.connection.welcome?.capabilities, [Capability.REVOKE_BATCH]);
    const c = await Client.connect(tc.url, { clock: tc.clock });
    closers.push(() => c.close());
    const root = await c.submit({ kind: 'hold', payload: 'root', follow: 'none' });
    await c.submitMany(
      Array.from({ length: 5 }, (_, i) => ({ kind: 'hold', payload: `child ${i}`, parentId: root.id, follow: 'none' as const })),
    );
    await ready;
    const summary = await c.cancel(root.id, { subtree: true, reason: 'pruned' });
    assert.deepEqual([summary.cancelled, summary.stopping], [6, 6]);
    await settle(30);
    assert.equal(reasons.length, 6);
    for (const r of reasons) {
      assert.equal((r as { code?: string }).code, 'ATP_ERR_CANCELLED');
      assert.equal((r as Error).message, 'pruned');
    }
    assert.equal(tc.events.filter((e) => e.event === 'revoke-ack').length, 6);
    assert.equal(tc.events.filter((e) => e.event === 'stale' || e.event === 'revoke-timeout').length, 0);
    assert.equal(w.activeLeases, 0);
  });

  void it('closes the connection with ATP_ERR_PROTOCOL on a REVOKE whose `more` is not whole entries', async () => {
    const name = `fake-coord-${process.pid}-${randomId(4).join('')}`;
    let gotGoaway!: (m: Message) => void;
    const goaway = new Promise<Message>((r) => (gotGoaway = r));
    const listener = await listen(`memory://${name}`, {}, (t: Transport) => {
      const decoder = new FrameDecoder(Limits.MAX_MAX_FRAME_BYTES);
      let preface = PREFACE.length;
      const send = (m: Message) => t.write(encodeFrame(m));
      t.write(PREFACE);
      t.setHandlers({
        data: (chunk) => {
          const n = Math.min(preface, chunk.length);
          preface -= n;
          decoder.push(chunk.subarray(n), (f) => {
            const m = decodeBody(f.code, f.stream, f.payload);
            if (m?.type === 'HELLO') {
              assert.ok(m.capabilities.includes(Capability.REVOKE_BATCH), 'the worker SDK offers revoke-batch');
              send({
                type: 'WELCOME',
                stream: 0,
                version: 1,
                roles: m.roles,
                resumed: 0,
                sessionId: randomId(16),
                resumeToken: randomId(32),
                heartbeatMs: 10_000,
                idleTimeoutMs: 0,
                maxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
                resumeWindowMs: 5_000,
                cancelDeadlineMs: 5_000,
                agent: 'fake',
                capabilities: [Capability.REVOKE_BATCH],
              });
              send({
                type: 'REVOKE',
                stream: 0,
                leaseId: randomId(16),
                epoch: 1,
                artifactId: randomId(16),
                code: wireCodeOf('ATP_ERR_CANCELLED'),
                deadlineMs: 5_000,
                reason: 'bad batch',
                more: new Uint8Array(37),
              });
            } else if (m?.type === 'GOAWAY') gotGoaway(m);
          });
        },
        drain: () => undefined,
        close: () => undefined,
      });
    });
    closers.push(() => listener.close());
    const w = new Worker({ url: `memory://${name}`, concurrency: 1 });
    w.handle('k', () => Promise.resolve(undefined));
    await w.start();
    closers.push(() => w.close());
    const g = await goaway;
    assert.equal(g.type, 'GOAWAY');
    if (g.type !== 'GOAWAY') return;
    assert.equal(g.code, wireCodeOf('ATP_ERR_PROTOCOL'));
    assert.match(g.reason, /REVOKE\.more is 37 bytes/);
  });
});
