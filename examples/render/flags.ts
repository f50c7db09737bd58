/** Command-line flags shared by run.ts and single.ts. A tile is at most 400 × 400 (640 KB of RGBA: one frame). */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Scene } from './scene.js';
import { SCENES, sceneOf } from './scene.js';

/** examples/render/out/ in the source tree (this file runs from dist/examples/render/). */
export const DEFAULT_OUT_DIR = fileURLToPath(new URL('../../../examples/render/out/', import.meta.url));

/** Parsed flags. */
export interface RenderFlags {
  scene: Scene;
  tileSize: number;
  workers: number;
  outDir: string;
  /** Port of the progress page (0: any free port), or undefined for no server. */
  serve: number | undefined;
  progressFiles: boolean;
}

const USAGE = `flags: --scene ${Object.keys(SCENES).join('|')} --width N --height N --samples N --tile N --workers N --out DIR --serve [PORT] --no-progress-files`;

function int(name: string, v: string | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new RangeError(`--${name} must be an integer in [${min}, ${max}], got ${v}\n${USAGE}`);
  return n;
}

/** Parse argv (without the node and script paths). */
export function parseRenderFlags(argv: string[]): RenderFlags {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      scene: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      samples: { type: 'string' },
      tile: { type: 'string' },
      workers: { type: 'string' },
      out: { type: 'string' },
      serve: { type: 'boolean' },
      port: { type: 'string' },
      'no-progress-files': { type: 'boolean' },
    },
    strict: true,
  });
  const width = int('width', v.width, 800, 1, 16384);
  const height = int('height', v.height, 500, 1, 16384);
  return {
    scene: sceneOf(v.scene ?? 'seahorse', width, height, int('samples', v.samples, 2, 1, 8)),
    tileSize: int('tile', v.tile, 100, 1, 400),
    workers: int('workers', v.workers, 2, 1, 64),
    outDir: v.out ?? DEFAULT_OUT_DIR,
    serve: v.serve === true ? int('port', v.port, 8080, 0, 65535) : undefined,
    progressFiles: v['no-progress-files'] !== true,
  };
}
