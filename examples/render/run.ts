/**
 * Distributed rendering over ATP: a coordinator, W worker processes, and this producer, which cuts
 * the image into tiles (one `render.tile` artifact each), draws every partial result as it arrives
 * (coarse pass, then exact bands), writes the progressive view, assembles the final PNG and checks
 * it against a single-process render of the same scene.
 *
 *   node dist/examples/render/run.js [--scene seahorse|mandelbrot|julia] [--width 800] [--height 500]
 *     [--samples 2] [--tile 100] [--workers 2] [--out DIR] [--serve [--port 8080]] [--no-progress-files]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { Canvas } from './canvas.js';
import { parseRenderFlags } from './flags.js';
import { encodePng } from './png.js';
import { ProgressView } from './progress-view.js';
import type { Scene } from './scene.js';
import { renderSingle } from './single.js';
import type { Pass, Rect } from './tile.js';
import { TILE_KIND, decodeChunk, encodeTileJob, splitTiles } from './tile.js';
import { startWorkers } from '../shared/worker-processes.js';

const HANDLERS = fileURLToPath(new URL('./handlers.js', import.meta.url));

/** Options of a distributed render. */
export interface RenderRunOptions {
  scene: Scene;
  tileSize: number;
  workers: number;
  outDir: string;
  /** Write progress-NNN.png and latest.png after each partial (default true). */
  progressFiles?: boolean;
  /** Serve the progress page on this port (0: any); the server stays up until `report.close()`. */
  serve?: number | undefined;
  /** Print the progress line and the page's address (default true). */
  verbose?: boolean;
  log?: (line: string) => void;
}

/** One tile's partial results, in the order they arrived. */
export interface TileTrace {
  tile: Rect;
  artifactId: string;
  partials: Array<{ seq: number; pass: Pass; y: number; h: number }>;
}

/** What a distributed render produced. */
export interface RenderRunReport {
  rgba: Uint8Array;
  png: Buffer;
  tiles: TileTrace[];
  partials: number;
  progressFrames: number;
  workerPids: number[];
  /** Starting the coordinator and the worker processes. */
  startMs: number;
  /** From the first submit to the last tile's result. */
  renderMs: number;
  /** The progress page, if served. */
  url: string | undefined;
  /** Stop the progress page's server (a no-op without one). */
  close(): Promise<void>;
}

/** Render `scene` over `workers` worker processes. */
export async function renderDistributed(o: RenderRunOptions): Promise<RenderRunReport> {
  const t0 = performance.now();
  const { scene } = o;
  const rects = splitTiles(scene.width, scene.height, o.tileSize);
  const canvas = new Canvas(scene.width, scene.height);
  const view = new ProgressView({
    outDir: o.outDir,
    canvas,
    tiles: rects.length,
    files: o.progressFiles ?? true,
    terminal: o.verbose ?? true,
  });
  let url: string | undefined;
  if (o.serve !== undefined) {
    url = await view.serve(o.serve);
    if (o.verbose ?? true) console.log(`  watch it at ${url} (the page reloads the image every 200 ms)`);
  }
  const coordinator = new Coordinator();
  const workers: { stop(): Promise<void>; pids: number[] } = { pids: [], stop: () => Promise.resolve() };
  let client: Client | undefined;
  try {
    const listener = await coordinator.listen('tcp://127.0.0.1:0');
    Object.assign(workers, await startWorkers(listener.url, HANDLERS, o.workers, { log: o.log ?? ((l) => console.error(l)) }));
    client = await Client.connect(listener.url);
    const startMs = performance.now() - t0;

    const t1 = performance.now();
    const handles = await client.submitMany(
      rects.map((tile) => ({ kind: TILE_KIND, payload: encodeTileJob({ scene, tile }), follow: 'all' as const })),
    );
    const traces: TileTrace[] = rects.map((tile, i) => ({ tile, artifactId: handles[i]!.id, partials: [] }));
    await Promise.all(
      handles.map(async (h, i) => {
        const trace = traces[i]!;
        let exact = false; // once exact pixels are drawn, a coarse pass (from a re-issued lease) must not cover them
        for await (const ev of h.events()) {
          if (ev.type === 'partial') {
            const chunk = decodeChunk(ev.data);
            trace.partials.push({ seq: ev.seq, pass: chunk.header.pass, y: chunk.header.y, h: chunk.header.h });
            if (chunk.header.pass !== 'coarse' || !exact) canvas.draw(chunk);
            exact ||= chunk.header.pass !== 'coarse';
            view.partial();
          } else if (ev.type === 'result') {
            if (ev.outcome.state !== 'COMPLETED')
              throw new Error(
                `tile ${JSON.stringify(trace.tile)} ended ${ev.outcome.state}: ${ev.outcome.code ?? ''} ${ev.outcome.message}`,
              );
            canvas.draw(decodeChunk(ev.outcome.result));
            view.tileDone();
          }
        }
      }),
    );
    const renderMs = performance.now() - t1;
    await view.finish();
    return {
      rgba: canvas.rgba,
      png: encodePng({ width: scene.width, height: scene.height, rgba: canvas.rgba }),
      tiles: traces,
      partials: view.status.partials,
      progressFrames: view.status.frames,
      workerPids: workers.pids,
      startMs,
      renderMs,
      url,
      close: () => view.close(),
    };
  } catch (err) {
    await view.close();
    throw err;
  } finally {
    await client?.close();
    await workers.stop();
    await coordinator.close();
  }
}

async function main(): Promise<void> {
  const flags = parseRenderFlags(process.argv.slice(2));
  const { scene } = flags;
  const tiles = splitTiles(scene.width, scene.height, flags.tileSize).length;
  console.log(
    `ATP distributed render: ${scene.fractal} ${scene.width}×${scene.height}, ${scene.samples}×${scene.samples} samples per pixel`,
  );
  console.log(
    `  ${tiles} tiles of up to ${flags.tileSize}×${flags.tileSize}, ${flags.workers} worker processes (atp worker --module handlers.js)`,
  );
  console.log(`  progressive view: ${join(flags.outDir, 'index.html')}${flags.progressFiles ? ', out/progress-NNN.png' : ''}`);
  const run = await renderDistributed({
    scene,
    tileSize: flags.tileSize,
    workers: flags.workers,
    outDir: flags.outDir,
    progressFiles: flags.progressFiles,
    serve: flags.serve,
  });
  mkdirSync(flags.outDir, { recursive: true });
  writeFileSync(join(flags.outDir, 'final.png'), run.png);
  console.log(
    `  distributed: ${(run.renderMs / 1000).toFixed(2)} s rendering (+ ${(run.startMs / 1000).toFixed(2)} s starting workers ${run.workerPids.join(', ')})`,
  );
  console.log(`  tiles: ${run.tiles.length}, partial results received: ${run.partials}, progress frames written: ${run.progressFrames}`);
  console.log(`  single process, same handler: rendering...`);
  const single = await renderSingle(scene, flags.tileSize);
  writeFileSync(join(flags.outDir, 'single.png'), single.png);
  console.log(`  single process: ${(single.ms / 1000).toFixed(2)} s`);
  const samePixels = Buffer.from(run.rgba).equals(Buffer.from(single.rgba));
  const sameBytes = run.png.equals(single.png);
  console.log(`  final.png ${run.png.length} bytes, single.png ${single.png.length} bytes, in ${flags.outDir}`);
  console.log(
    `  identical to single-process render: ${samePixels && sameBytes ? 'yes' : samePixels ? 'yes (pixels; the PNG bytes differ)' : 'NO'}`,
  );
  if (run.url !== undefined) {
    console.log(`  still serving ${run.url}; Ctrl-C to stop`);
    process.once('SIGINT', () => void run.close().then(() => process.exit(samePixels ? 0 : 1)));
    return;
  }
  process.exit(samePixels ? 0 : 1);
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) await main();
