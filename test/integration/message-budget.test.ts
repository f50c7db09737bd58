/**
 * The coordinator's memory for large messages being received, all connections together
 * (ATP-4.5-10), over real TCP: a SUBMIT that does not fit waits while its connection stays usable,
 * and goes on when the memory is given back; the option is checked, the CLI flag too, and /status
 * reports it. A SUBMIT that crawls while another waits for its memory ends its connection (ATP-4.8-7).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { statusOf } from '../../src/cli/status-server.js';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { connectTcp } from '../../src/transport/tcp.js';
import { encodeFragments } from '../../src/wire/index.js';
import { submit as submitMessage } from '../coordinator/harness.js';
import { bodyLength, rawPeer } from '../protocol/raw-peer.js';
import { cleanupAfterEach, startCoordinator } from './helpers.js';

const cleanup = cleanupAfterEach();
const KiB = 1024;
const MiB = 1024 * KiB;
const root = fileURLToPath(new URL('../../../', import.meta.url));

/** A SUBMIT of kind `blob` with a given id. */
const submit = (artifactId: Uint8Array, payload: Uint8Array) => submitMessage(1, 'blob', payload, { artifactId });

void describe('the coordinator bounds the memory of messages being received (ATP-4.5-10)', () => {
  void it(
    'a SUBMIT that does not fit waits, its connection still answers, and it is accepted once memory frees',
    { timeout: 30_000 },
    async () => {
      const { coord, url } = await startCoordinator({ maxMessageBytes: 1 * MiB, messageBudgetBytes: 1 * MiB });
      cleanup.push(() => coord.close());
      const { hostname, port } = new URL(url);

      // A raw producer starts a 900 KiB SUBMIT and sends nothing more: it holds its body's memory.
      const socket = await connectTcp({ host: hostname, port: Number(port) });
      cleanup.push(() => socket.destroy());
      const raw = await rawPeer(socket);
      const frames = encodeFragments(submit(new Uint8Array(16).fill(1), new Uint8Array(900 * KiB)), 32 * KiB);
      raw.send(frames[0]!);
      while (coord.messageBudget.usedBytes === 0) await new Promise((r) => setTimeout(r, 5));
      assert.equal(coord.messageBudget.usedBytes, bodyLength(frames));

      // The SDK's 900 KiB SUBMIT has to wait for it.
      const client = await Client.connect(url);
      cleanup.push(() => client.close());
      const payload = new Uint8Array(900 * KiB).map((_, i) => i % 251);
      let accepted = false;
      const submitted = client.submit({ kind: 'blob', payload }).then((h) => {
        accepted = true;
        return h;
      });
      while (coord.messageBudget.waiting === 0) await new Promise((r) => setTimeout(r, 5));
      const st = await statusOf(coord);
      assert.deepEqual(
        { ...st.messageBudget, peakBytes: undefined },
        { limitBytes: MiB, usedBytes: bodyLength(frames), peakBytes: undefined, waiting: 1, waited: 1 },
      );

      // Meanwhile its connection is read and answered: a QUERY comes back.
      const q = await client.query('00'.repeat(16));
      assert.equal(q.state, 'UNKNOWN');
      assert.equal(accepted, false, 'the large SUBMIT still waits');

      // The raw producer goes away: its memory is given back and the waiting SUBMIT goes on.
      socket.destroy();
      const h = await submitted;
      assert.equal(h.acceptedState, 'PENDING');
      assert.equal(coord.messageBudget.usedBytes, 0);
      assert.equal(coord.messageBudget.waiting, 0);
      assert.ok(coord.messageBudget.peakBytes <= MiB);

      // And the bytes are the ones sent.
      const { Worker } = await import('../../src/worker/worker.js');
      const worker = new Worker({ url, concurrency: 1 });
      worker.handle('blob', (a) => Promise.resolve(String(Buffer.compare(Buffer.from(a.payload), Buffer.from(payload)))));
      await worker.start();
      cleanup.push(() => worker.close());
      assert.equal(new TextDecoder().decode((await h.result()).result), '0');
    },
  );

  void it(
    'a SUBMIT that crawls while another waits for its memory is ended after its grace period, and the other goes on (ATP-4.8-7)',
    { timeout: 30_000 },
    async () => {
      const { coord, url } = await startCoordinator({
        maxMessageBytes: 1 * MiB,
        messageBudgetBytes: 1 * MiB,
        minMessageBytesPerSecond: 256 * KiB,
        minMessageRateGraceMs: 300,
      });
      cleanup.push(() => coord.close());
      const { hostname, port } = new URL(url);
      const socket = await connectTcp({ host: hostname, port: Number(port) });
      cleanup.push(() => socket.destroy());
      const raw = await rawPeer(socket);
      const goaway = raw.next((m) => m.type === 'GOAWAY');
      const frames = encodeFragments(submit(new Uint8Array(16).fill(1), new Uint8Array(900 * KiB)), 32 * KiB);
      raw.send(frames[0]!);
      while (coord.messageBudget.usedBytes === 0) await new Promise((r) => setTimeout(r, 5));
      // A fragment every 200 ms: 160 KiB/s, and never a stall. Alone, it is left to go on.
      let sent = 1;
      const crawl = setInterval(() => {
        if (sent < frames.length - 1) raw.send(frames[sent++]!);
      }, 200);
      cleanup.push(() => clearInterval(crawl));
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(coord.messageBudget.usedBytes, bodyLength(frames), 'nobody waits: the slow message keeps its memory');

      const client = await Client.connect(url);
      cleanup.push(() => client.close());
      const payload = new Uint8Array(900 * KiB).map((_, i) => i % 251);
      const h = await client.submit({ kind: 'blob', payload });
      assert.equal(h.acceptedState, 'PENDING');
      const g = (await goaway) as { code: number; reason: string };
      assert.equal(g.code, 0x0008, 'ATP_ERR_IDLE_TIMEOUT');
      assert.match(g.reason, /below the minimum of 262144 bytes\/s while other messages wait for memory/);
      assert.ok(sent < frames.length - 1, 'the crawling SUBMIT never completed');
      assert.equal(coord.messageBudget.waiting, 0);
    },
  );

  void it('checks the option: the budget must hold a message of the largest size', () => {
    assert.throws(
      () => new Coordinator({ maxMessageBytes: 2 * MiB, messageBudgetBytes: 1 * MiB }),
      /messageBudgetBytes must be an integer of at least maxMessageBytes \(2097152\), got 1048576/,
    );
    assert.equal(new Coordinator({ maxMessageBytes: 2 * 1024 * MiB }).messageBudget.limitBytes, 2 * 1024 * MiB);
    assert.equal(new Coordinator({}).messageBudget.limitBytes, 1024 * MiB);
    assert.throws(() => new Coordinator({ minMessageBytesPerSecond: -1 }), /minMessageBytesPerSecond must be a non-negative integer/);
    assert.throws(() => new Coordinator({ minMessageRateGraceMs: 0 }), /minMessageRateGraceMs must be a positive integer/);
    assert.doesNotThrow(() => new Coordinator({ minMessageBytesPerSecond: 0 }));
  });

  void it('atp coordinator --message-budget-bytes below --max-message-bytes, or a bad --min-message-rate, says what is wrong and exits 1', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          join(root, 'dist/src/cli/main.js'),
          'coordinator',
          '--store',
          'memory',
          '--max-message-bytes',
          '2000000',
          '--message-budget-bytes',
          '1000000',
        ],
        (err, _stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }),
      );
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /messageBudgetBytes must be an integer of at least maxMessageBytes \(2000000\), got 1000000/);
    const bad = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(root, 'dist/src/cli/main.js'), 'coordinator', '--message-budget-bytes', 'lots'], (err, _o, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stderr }),
      );
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--message-budget-bytes/);
    const slow = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(root, 'dist/src/cli/main.js'), 'coordinator', '--min-message-rate', '-5'], (err, _o, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stderr }),
      );
    });
    assert.notEqual(slow.code, 0);
    assert.match(slow.stderr, /--min-message-rate/);
  });
});
