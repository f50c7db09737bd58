/**
 * Tiles: how the image is cut, what a `render.tile` artifact carries (the scene and the tile's
 * rectangle), and the binary chunk a worker sends back as a partial result or as the result (a
 * small JSON header, then RGBA bytes).
 */
import type { Scene } from './scene.js';
import { shadePixel } from './scene.js';

/** The artifact kind of one tile. */
export const TILE_KIND = 'render.tile';

/** A rectangle of the image, in pixels. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What a `render.tile` artifact's payload holds. */
export interface TileJob {
  scene: Scene;
  tile: Rect;
}

/**
 * Which pass a chunk belongs to: `coarse` holds one sample every `step` pixels of the rect
 * (ceil(w/step) × ceil(h/step) pixels, each standing for a step × step block); `fine` holds exact
 * pixels of a band of rows; `final` is the whole tile, the artifact's result.
 */
export type Pass = 'coarse' | 'fine' | 'final';

/** The header of a chunk: its pass, the rect it covers (image coordinates) and the sampling step. */
export interface ChunkHeader extends Rect {
  pass: Pass;
  step: number;
}

/** A decoded chunk. */
export interface TileChunk {
  header: ChunkHeader;
  rgba: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Cut a width × height image into tiles of at most `size` × `size`, row by row. */
export function splitTiles(width: number, height: number, size: number): Rect[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`tile size must be a positive integer, got ${size}`);
  const tiles: Rect[] = [];
  for (let y = 0; y < height; y += size)
    for (let x = 0; x < width; x += size) tiles.push({ x, y, w: Math.min(size, width - x), h: Math.min(size, height - y) });
  return tiles;
}

/** The payload of a tile's artifact. Deterministic: the same scene and rect give the same bytes (and id). */
export function encodeTileJob(job: TileJob): Uint8Array {
  const { scene, tile } = job;
  return enc.encode(JSON.stringify({ scene, tile: { x: tile.x, y: tile.y, w: tile.w, h: tile.h } }));
}

/** Read a tile's payload. */
export function decodeTileJob(payload: Uint8Array): TileJob {
  return JSON.parse(dec.decode(payload)) as TileJob;
}

/** The size in pixels of a chunk's RGBA data. */
export function chunkPixels(h: ChunkHeader): { cols: number; rows: number } {
  return { cols: Math.ceil(h.w / h.step), rows: Math.ceil(h.h / h.step) };
}

/** Frame a chunk: u32 header length, the JSON header, the RGBA bytes. */
export function encodeChunk(header: ChunkHeader, rgba: Uint8Array): Uint8Array {
  const { cols, rows } = chunkPixels(header);
  if (rgba.length !== cols * rows * 4) throw new RangeError(`chunk ${header.pass}: expected ${cols * rows * 4} bytes, got ${rgba.length}`);
  const head = enc.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + rgba.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(rgba, 4 + head.length);
  return out;
}

/** Read a chunk. */
export function decodeChunk(bytes: Uint8Array): TileChunk {
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const header = JSON.parse(dec.decode(bytes.subarray(4, 4 + n))) as ChunkHeader;
  const rgba = bytes.subarray(4 + n);
  const { cols, rows } = chunkPixels(header);
  if (rgba.length !== cols * rows * 4) throw new Error(`chunk ${header.pass}: expected ${cols * rows * 4} bytes, got ${rgba.length}`);
  return { header, rgba };
}

/**
 * Render the pixels of `rect` one every `step` pixels in each direction (step 1: every pixel), row
 * by row; the pixel at (x + i·step, y + j·step) lands at (i, j) of the result.
 */
export function renderRegion(scene: Scene, rect: Rect, step = 1): Uint8Array {
  const { cols, rows } = chunkPixels({ ...rect, step, pass: 'fine' });
  const out = new Uint8Array(cols * rows * 4);
  for (let j = 0; j < rows; j++)
    for (let i = 0; i < cols; i++) shadePixel(scene, rect.x + i * step, rect.y + j * step, out, (j * cols + i) * 4);
  return out;
}
