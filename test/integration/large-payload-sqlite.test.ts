/**
 * A payload and a result far larger than a frame, through the default embedded store (SQLite) and
 * two coordinator restarts: the payload is durable once ACCEPTED, comes back from disk whole to a
 * worker after a restart, and the result is still read whole after another restart.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { Worker } from '../../src/worker/worker.js';
import { cleanupAfterEach } from './helpers.js';

const cleanup = cleanupAfterEach();
const MiB = 1024 * 1024;

async function start(file: string): Promise<{ coord: Coordinator; url: string }> {
  const coord = new Coordinator({ store: new SqliteStore({ path: file }) });
  const l = await coord.listen('tcp://127.0.0.1:0');
  return { coord, url: l.url };
}

void describe('a 32 MiB payload and result with the SQLite store', () => {
  void it('survive two coordinator restarts byte for byte', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'atp-big-'));
    cleanup.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const file = path.join(dir, 'atp.db');
    const payload = new Uint8Array(32 * MiB);
    for (let off = 0; off < payload.length; off += 4096) payload.set(createHash('sha256').update(`p${off}`).digest(), off);
    const sent = createHash('sha256').update(payload).digest('hex');

    // 1. Submit, then stop the coordinator before any worker has seen it.
    let c = await start(file);
    const producer = await Client.connect(c.url);
    const h = await producer.submit({ kind: 'big.sqlite', payload, follow: 'none' });
    await producer.close();
    await c.coord.close();

    // 2. After a restart, a worker is leased the payload read back from disk; it answers 32 MiB.
    c = await start(file);
    const worker = new Worker({ url: c.url, concurrency: 1 });
    const seen: string[] = [];
    worker.handle('big.sqlite', (a) => {
      seen.push(`${createHash('sha256').update(a.payload).digest('hex')} ${a.payload.length}`);
      const result = new Uint8Array(a.payload.length);
      for (let i = 0; i < result.length; i++) result[i] = a.payload[a.payload.length - 1 - i]!;
      return Promise.resolve(result);
    });
    await worker.start();
    const watcher = await Client.connect(c.url);
    const first = await watcher.follow(h.id).result();
    assert.equal(first.state, 'COMPLETED');
    assert.deepEqual(seen, [`${sent} ${payload.length}`]);
    const reversed = createHash('sha256').update(payload.slice().reverse()).digest('hex');
    assert.equal(createHash('sha256').update(first.result).digest('hex'), reversed);
    await worker.close();
    await watcher.close();
    await c.coord.close();

    // 3. After another restart the result is read whole from disk.
    c = await start(file);
    cleanup.push(() => c.coord.close());
    const reader = await Client.connect(c.url);
    cleanup.push(() => reader.close());
    const again = await reader.outcome(h.id);
    assert.equal(again?.state, 'COMPLETED');
    assert.equal(again.result.length, payload.length);
    assert.equal(createHash('sha256').update(again.result).digest('hex'), reversed);
  });
});
