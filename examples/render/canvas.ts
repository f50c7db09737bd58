/** The image being assembled from tiles and partial results. */
import type { TileChunk } from './tile.js';
import { chunkPixels } from './tile.js';

/** An RGBA image that chunks are drawn into. */
export class Canvas {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;

  /** A canvas filled with one colour (opaque dark grey by default: "not rendered yet"). */
  constructor(width: number, height: number, fill: readonly [number, number, number, number] = [32, 32, 36, 255]) {
    this.width = width;
    this.height = height;
    this.rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < this.rgba.length; i += 4) this.rgba.set(fill, i);
  }

  /**
   * Draw a chunk: exact pixels copied row by row, or the samples of a coarse pass each filling its
   * step × step block (nearest-neighbour upscaling), clipped to the chunk's rect.
   */
  draw(chunk: TileChunk): void {
    const { header: h, rgba } = chunk;
    if (h.x < 0 || h.y < 0 || h.x + h.w > this.width || h.y + h.h > this.height)
      throw new RangeError(`chunk ${JSON.stringify(h)} lies outside the ${this.width}×${this.height} image`);
    const { cols } = chunkPixels(h);
    for (let dy = 0; dy < h.h; dy++) {
      const row = ((h.y + dy) * this.width + h.x) * 4;
      if (h.step === 1) {
        this.rgba.set(rgba.subarray(dy * h.w * 4, (dy + 1) * h.w * 4), row);
        continue;
      }
      const j = Math.floor(dy / h.step);
      for (let dx = 0; dx < h.w; dx++) {
        const src = (j * cols + Math.floor(dx / h.step)) * 4;
        this.rgba.set(rgba.subarray(src, src + 4), row + dx * 4);
      }
    }
  }
}
