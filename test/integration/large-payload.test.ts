/**
 * A payload far larger than a frame, end to end over TCP (ATP_WIRE §3.7–§3.9): the client SDK
 * submits 64 MiB, a worker is leased it and sees it byte for byte, and a PING sent while the SUBMIT is
 * still crossing is answered before it is accepted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { artifactDigest, defaultArtifactId, toHex } from '../../src/internal/ids.js';
import { Worker } from '../../src/worker/worker.js';
import type { Message, MessageOf } from '../../src/wire/index.js';
import { cleanupAfterEach, startCoordinator } from './helpers.js';

const cleanup = cleanupAfterEach();
const MiB = 1024 * 1024;

void describe('a 64 MiB payload', () => {
  void it(
    'is submitted through the client SDK, leased whole to a worker, and a PING is answered while it crosses (ATP-4.5-5, ATP-4.5-9, ATP-4.7-8, ATP-3.10-9)',
    { timeout: 180_000 },
    async () => {
      const { coord, url } = await startCoordinator();
      cleanup.push(() => coord.close());
      const payload = new Uint8Array(64 * MiB);
      for (let off = 0; off < payload.length; off += 4096) payload.set(createHash('sha256').update(String(off)).digest(), off);
      const sent = createHash('sha256').update(payload).digest('hex');

      const worker = new Worker({ url, concurrency: 1 });
      worker.handle('big.blob', (a) => Promise.resolve(createHash('sha256').update(a.payload).digest('hex') + ` ${a.payload.length}`));
      await worker.start();
      cleanup.push(() => worker.close());
      const client = await Client.connect(url);
      cleanup.push(() => client.close());

      const events: string[] = [];
      const conn = client.connection;
      const submitted = client.submit({ kind: 'big.blob', payload }).then((h) => {
        events.push('ACCEPTED');
        return h;
      });
      // The client hashes the payload (in slices) and then starts sending it: wait for that.
      while (conn.bulkQueued === 0 && events.length === 0) await new Promise((r) => setImmediate(r));
      assert.equal(events.length, 0, 'the SUBMIT was accepted before it was seen crossing');
      const pong = await conn.request(
        { type: 'PING', stream: conn.nextStream(), nonce: 99 },
        (m: Message): m is MessageOf<'PONG'> => m.type === 'PONG',
      );
      events.push('PONG');
      assert.equal(pong.nonce, 99);
      const h = await submitted;
      assert.deepEqual(events, ['PONG', 'ACCEPTED']);
      // The id the SDK derived from its digest (hashed in slices) is the content digest's.
      assert.equal(h.id, toHex(defaultArtifactId(artifactDigest('big.blob', payload))));
      const out = await h.result();
      assert.equal(out.state, 'COMPLETED');
      assert.equal(new TextDecoder().decode(out.result), `${sent} ${payload.length}`);
    },
  );
});
