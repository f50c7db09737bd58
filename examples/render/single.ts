/**
 * The reference: the same scene rendered in this one process, through the same handler the
 * workers run (called directly, its partial results dropped), assembled the same way.
 *
 *   node dist/examples/render/single.js [--scene seahorse] [--width 800] [--height 500] [--samples 2] [--out DIR]
 *
 * Writes DIR/single.png (default examples/render/out/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HandlerContext } from '../../src/worker/worker.js';
import { Canvas } from './canvas.js';
import { renderTile } from './handlers.js';
import { encodePng } from './png.js';
import type { Scene } from './scene.js';
import { TILE_KIND, decodeChunk, encodeTileJob, splitTiles } from './tile.js';
import { parseRenderFlags } from './flags.js';

/** A rendered image: its pixels and its PNG file. */
export interface Rendered {
  rgba: Uint8Array;
  png: Buffer;
  ms: number;
}

/** Render every tile of `scene` here, one after the other, and encode the PNG. */
export async function renderSingle(scene: Scene, tileSize: number): Promise<Rendered> {
  const t0 = performance.now();
  const canvas = new Canvas(scene.width, scene.height);
  const signal = new AbortController().signal;
  const ctx: HandlerContext = {
    signal,
    leaseId: 'local',
    epoch: 1,
    checkpointData: undefined,
    lastPartialSeq: 0,
    partial: () => undefined,
    checkpoint: () => Promise.resolve(),
  };
  for (const tile of splitTiles(scene.width, scene.height, tileSize)) {
    const payload = encodeTileJob({ scene, tile });
    const result = await renderTile({ id: 'local', kind: TILE_KIND, payload, parentId: null, digest: '', attempt: 1 }, ctx);
    canvas.draw(decodeChunk(result));
  }
  const png = encodePng({ width: scene.width, height: scene.height, rgba: canvas.rgba });
  return { rgba: canvas.rgba, png, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  const flags = parseRenderFlags(process.argv.slice(2));
  const r = await renderSingle(flags.scene, flags.tileSize);
  mkdirSync(flags.outDir, { recursive: true });
  const file = join(flags.outDir, 'single.png');
  writeFileSync(file, r.png);
  console.log(`single-process render of ${flags.scene.width}×${flags.scene.height}: ${(r.ms / 1000).toFixed(2)} s, written to ${file}`);
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) await main();
