/**
 * The worker side: the `render.tile` handler. Loaded by `atp worker --module
 * dist/examples/render/handlers.js`, and called in-process by the single-process render.
 *
 * A tile streams as partial results: first a coarse pass (one pixel in COARSE_STEP² , to be
 * upscaled), then the exact pixels band by band (FINE_BANDS bands of rows); the result is the
 * whole tile.
 */
import type { HandlerContext, LeasedArtifact } from '../../src/worker/worker.js';
import type { ChunkHeader } from './tile.js';
import { TILE_KIND, decodeTileJob, encodeChunk, renderRegion } from './tile.js';

/** The coarse pass samples one pixel every COARSE_STEP in each direction. */
export const COARSE_STEP = 4;
/** The fine pass is sent in this many bands of rows. */
export const FINE_BANDS = 2;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Render one tile: coarse pass, fine bands (each a partial result), then the tile (the result). */
export async function renderTile(artifact: LeasedArtifact, ctx: HandlerContext): Promise<Uint8Array> {
  const { scene, tile } = decodeTileJob(artifact.payload);
  const coarse: ChunkHeader = { pass: 'coarse', step: COARSE_STEP, ...tile };
  ctx.partial(encodeChunk(coarse, renderRegion(scene, tile, COARSE_STEP)));
  const pixels = new Uint8Array(tile.w * tile.h * 4);
  const bandRows = Math.ceil(tile.h / FINE_BANDS);
  for (let top = 0; top < tile.h; top += bandRows) {
    const band = { x: tile.x, y: tile.y + top, w: tile.w, h: Math.min(bandRows, tile.h - top) };
    for (let row = 0; row < band.h; row++) {
      // Give the event loop a turn after every row: renewals go out and a revoke stops us early.
      await nextTurn();
      ctx.signal.throwIfAborted();
      pixels.set(renderRegion(scene, { ...band, y: band.y + row, h: 1 }, 1), (top + row) * tile.w * 4);
    }
    ctx.partial(encodeChunk({ pass: 'fine', step: 1, ...band }, pixels.subarray(top * tile.w * 4, (top + band.h) * tile.w * 4)));
  }
  return encodeChunk({ pass: 'final', step: 1, ...tile }, pixels);
}

/** The handler table `atp worker --module` loads. */
export const handlers = {
  [TILE_KIND]: renderTile,
};
