/**
 * The render example: the PNG codec, the tile handler's progressive passes, and a render over two
 * real worker processes that must equal the single-process render pixel for pixel (and byte for
 * byte), with every tile's partials arriving coarse first, then the exact bands in order.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Canvas } from '../../examples/render/canvas.js';
import { COARSE_STEP, FINE_BANDS, renderTile } from '../../examples/render/handlers.js';
import { decodePng, encodePng } from '../../examples/render/png.js';
import { renderDistributed } from '../../examples/render/run.js';
import { sceneOf } from '../../examples/render/scene.js';
import { renderSingle } from '../../examples/render/single.js';
import { TILE_KIND, decodeChunk, encodeTileJob, splitTiles } from '../../examples/render/tile.js';
import type { HandlerContext } from '../../src/worker/worker.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'atp-render-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

void describe('render: PNG codec', () => {
  void it('decodes what it encodes, and refuses a file with a bad CRC', () => {
    const rgba = new Uint8Array(7 * 5 * 4).map((_, i) => (i * 37) & 0xff);
    const png = encodePng({ width: 7, height: 5, rgba });
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const back = decodePng(png);
    assert.equal(back.width, 7);
    assert.equal(back.height, 5);
    assert.deepEqual(back.rgba, rgba);
    const bad = Buffer.from(png);
    const at = bad.length - 20; // inside the IDAT chunk
    bad[at] = bad[at]! ^ 1;
    assert.throws(() => decodePng(bad), /CRC/);
  });
});

void describe('render: the tile handler', () => {
  void it('streams a coarse pass, then the exact bands top to bottom, then returns the exact tile', async () => {
    const scene = sceneOf('julia', 40, 30, 1);
    const tile = { x: 8, y: 4, w: 20, h: 18 };
    const partials: Uint8Array[] = [];
    const ctx: HandlerContext = {
      signal: new AbortController().signal,
      leaseId: '00',
      epoch: 1,
      checkpointData: undefined,
      lastPartialSeq: 0,
      partial: (d) => void partials.push(typeof d === 'string' ? new TextEncoder().encode(d) : d),
      checkpoint: () => Promise.resolve(),
    };
    const payload = encodeTileJob({ scene, tile });
    const result = decodeChunk(await renderTile({ id: '00', kind: TILE_KIND, payload, parentId: null, digest: '', attempt: 1 }, ctx));
    const chunks = partials.map(decodeChunk);
    assert.equal(chunks.length, 1 + FINE_BANDS);
    assert.deepEqual(chunks[0]!.header, { pass: 'coarse', step: COARSE_STEP, ...tile });
    assert.equal(chunks[0]!.rgba.length, Math.ceil(20 / COARSE_STEP) * Math.ceil(18 / COARSE_STEP) * 4);
    assert.deepEqual(
      chunks.slice(1).map((c) => [c.header.pass, c.header.y, c.header.h]),
      [
        ['fine', 4, 9],
        ['fine', 13, 9],
      ],
    );
    assert.deepEqual(result.header, { pass: 'final', step: 1, ...tile });
    // The bands drawn together are the result; the coarse samples are exact pixels of it.
    const a = new Canvas(40, 30);
    const b = new Canvas(40, 30);
    chunks.slice(1).forEach((c) => a.draw(c));
    b.draw(result);
    assert.deepEqual(a.rgba, b.rgba);
    const coarse = chunks[0]!;
    const cols = Math.ceil(20 / COARSE_STEP);
    for (const [i, j] of [
      [0, 0],
      [2, 3],
      [4, 4],
    ] as const) {
      const s = (j * cols + i) * 4;
      const p = (j * COARSE_STEP * 20 + i * COARSE_STEP) * 4;
      assert.deepEqual(coarse.rgba.subarray(s, s + 4), result.rgba.subarray(p, p + 4), `sample ${i},${j}`);
    }
  });

  void it('stops at the next row once its signal is aborted', async () => {
    const abort = new AbortController();
    const ctx: HandlerContext = {
      signal: abort.signal,
      leaseId: '00',
      epoch: 1,
      checkpointData: undefined,
      lastPartialSeq: 0,
      partial: () => abort.abort(new Error('revoked')),
      checkpoint: () => Promise.resolve(),
    };
    const payload = encodeTileJob({ scene: sceneOf('mandelbrot', 16, 16, 1), tile: { x: 0, y: 0, w: 16, h: 16 } });
    await assert.rejects(renderTile({ id: '00', kind: TILE_KIND, payload, parentId: null, digest: '', attempt: 1 }, ctx), /revoked/);
  });
});

void describe('render: over worker processes', () => {
  void it('64×64 in 16 tiles on 2 workers equals the single-process render, partials coarse then fine per tile', async () => {
    const scene = sceneOf('seahorse', 64, 64, 2);
    const out = tempDir();
    const run = await renderDistributed({ scene, tileSize: 16, workers: 2, outDir: out, serve: 0, verbose: false });
    try {
      const single = await renderSingle(scene, 16);
      assert.deepEqual(decodePng(run.png).rgba, decodePng(single.png).rgba, 'pixel for pixel');
      assert.ok(run.png.equals(single.png), 'byte for byte');
      assert.deepEqual(run.rgba, single.rgba);

      assert.equal(run.tiles.length, 16);
      assert.deepEqual(
        run.tiles.map((t) => t.tile),
        splitTiles(64, 64, 16),
      );
      for (const t of run.tiles) {
        // One lease per tile here (nothing was killed): seq 1 coarse, then the bands top to bottom.
        assert.deepEqual(
          t.partials.map((p) => [p.seq, p.pass, p.y]),
          [
            [1, 'coarse', t.tile.y],
            [2, 'fine', t.tile.y],
            [3, 'fine', t.tile.y + 8],
          ],
          `tile ${JSON.stringify(t.tile)}`,
        );
      }
      assert.equal(run.partials, 16 * (1 + FINE_BANDS));
      assert.equal(run.workerPids.length, 2);

      // The progressive view: numbered frames, the page, and latest.png showing the final image.
      const frames = readdirSync(out).filter((f) => /^progress-\d{3}\.png$/.test(f));
      assert.equal(frames.length, run.progressFrames);
      assert.ok(frames.length >= 1 && frames.length <= run.partials);
      assert.ok(existsSync(join(out, 'index.html')));
      assert.deepEqual(decodePng(readFileSync(join(out, 'latest.png'))).rgba, run.rgba);
      assert.ok(run.url !== undefined);
      const page = await (await fetch(run.url)).text();
      assert.match(page, /setInterval\([\s\S]*latest\.png[\s\S]*200\)/);
      const latest = new Uint8Array(await (await fetch(`${run.url}latest.png`)).arrayBuffer());
      assert.deepEqual(decodePng(latest).rgba, run.rgba);
      assert.equal((await fetch(`${run.url}../etc/passwd`)).status, 404);
    } finally {
      await run.close();
    }
  });
});
