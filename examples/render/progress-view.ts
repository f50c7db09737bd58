/**
 * What a person watches while the image renders: a PNG of the canvas after every partial result
 * (out/progress-NNN.png, and out/latest.png replaced atomically), an HTML page (out/index.html)
 * that reloads latest.png every 200 ms, a tiny node:http server for that page (`--serve`), and a
 * progress line on the terminal.
 *
 * A frame is compressed in libuv's thread pool, off the event loop, so that partial results keep
 * flowing while it is written. Partials that arrive while a frame is being written are drawn on the
 * canvas at once and appear together in the next frame: with a fast enough disk and CPU there is
 * one frame per partial, on a loaded machine fewer (never a frame that misses a partial before it).
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Canvas } from './canvas.js';
import { encodePng, encodePngAsync } from './png.js';

/** Options of the view. */
export interface ProgressViewOptions {
  outDir: string;
  canvas: Canvas;
  tiles: number;
  /** Write progress-NNN.png and latest.png after each partial (default true). */
  files?: boolean;
  /** Print the progress line (default true). */
  terminal?: boolean;
}

/** Counters shown by the page and the terminal line. */
export interface ProgressStatus {
  tilesDone: number;
  tiles: number;
  partials: number;
  frames: number;
  elapsedMs: number;
  done: boolean;
}

const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>ATP distributed render</title>
<style>
  body { background: #16161a; color: #ddd; font: 14px system-ui, sans-serif; margin: 2em; }
  img { image-rendering: pixelated; max-width: 100%; border: 1px solid #333; }
</style>
<h1>ATP distributed render</h1>
<p id="status">waiting for the first partial result…</p>
<img id="view" src="latest.png" alt="the image as rendered so far">
<script>
  // Reload the latest progressive image every 200 ms; swap it in only once loaded (no flicker).
  const view = document.getElementById('view');
  const status = document.getElementById('status');
  let busy = false;
  setInterval(() => {
    if (busy) return;
    busy = true;
    const next = new Image();
    next.onload = () => { view.src = next.src; busy = false; };
    next.onerror = () => { busy = false; };
    next.src = 'latest.png?t=' + Date.now();
    fetch('status.json?t=' + Date.now()).then((r) => r.json()).then((s) => {
      status.textContent = s.tilesDone + ' / ' + s.tiles + ' tiles, ' + s.partials + ' partial results, ' +
        (s.elapsedMs / 1000).toFixed(1) + ' s' + (s.done ? ' — done' : '');
    }).catch(() => {});
  }, 200);
</script>
</html>
`;

const SERVED = /^\/(index\.html|latest\.png|final\.png|single\.png|status\.json|progress-\d+\.png)$/;

/** The progressive view of one render. */
export class ProgressView {
  readonly #o: ProgressViewOptions;
  readonly #t0 = performance.now();
  readonly status: ProgressStatus;
  #server: Server | undefined;
  #lastLine = 0;
  /** The frame being written, if any. */
  #writing: Promise<void> | undefined;
  /** A partial arrived while a frame was being written: write another after it. */
  #dirty = false;
  #error: Error | undefined;

  constructor(options: ProgressViewOptions) {
    this.#o = options;
    this.status = { tilesDone: 0, tiles: options.tiles, partials: 0, frames: 0, elapsedMs: 0, done: false };
    mkdirSync(options.outDir, { recursive: true });
    for (const f of readdirSync(options.outDir)) if (/^progress-\d+\.png$/.test(f)) rmSync(join(options.outDir, f));
    writeFileSync(join(options.outDir, 'index.html'), PAGE);
    this.#writeLatest();
  }

  /** Serve the out directory's page and images on 127.0.0.1:port (0: any free port); resolves to its URL. */
  async serve(port: number): Promise<string> {
    const dir = this.#o.outDir;
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/$/, '/index.html');
      if (!SERVED.test(path)) {
        res.writeHead(404).end('not found\n');
        return;
      }
      try {
        const body = readFileSync(join(dir, path.slice(1)));
        const type = path.endsWith('.png') ? 'image/png' : path.endsWith('.json') ? 'application/json' : 'text/html; charset=utf-8';
        res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
      } catch {
        res.writeHead(404).end('not yet\n');
      }
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  /** A partial result was drawn on the canvas. */
  partial(): void {
    this.status.partials++;
    this.#writeStatus();
    this.#line(false);
    if (this.#o.files === false) return;
    if (this.#writing !== undefined) {
      this.#dirty = true;
      return;
    }
    this.#writing = this.#writeFrames().then(
      () => void (this.#writing = undefined),
      (err: unknown) => void ((this.#error = err instanceof Error ? err : new Error(String(err))), (this.#writing = undefined)),
    );
  }

  /** A tile's result was drawn on the canvas. */
  tileDone(): void {
    this.status.tilesDone++;
    this.#writeStatus();
    this.#line(false);
  }

  /** The render is over: wait for the frame being written, write the last image, end the terminal line. */
  async finish(): Promise<void> {
    await this.#writing;
    if (this.#error !== undefined) throw this.#error;
    this.status.done = true;
    this.#writeLatest();
    this.#line(true);
  }

  /** Stop the server, if any. */
  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Numbered frames, until no partial arrived during the last one. */
  async #writeFrames(): Promise<void> {
    const c = this.#o.canvas;
    const dir = this.#o.outDir;
    do {
      this.#dirty = false;
      // A copy: the canvas keeps changing while the frame is compressed. Level 1: frames are for
      // watching, written many times a second; the final PNG uses the default, 6.
      const png = await encodePngAsync({ width: c.width, height: c.height, rgba: c.rgba.slice() }, 1);
      await writeFile(join(dir, `progress-${String(++this.status.frames).padStart(3, '0')}.png`), png);
      await writeFile(join(dir, 'latest.png.tmp'), png);
      await rename(join(dir, 'latest.png.tmp'), join(dir, 'latest.png')); // the page never reads a half-written file
    } while (this.#dirty);
  }

  #writeLatest(): void {
    this.#writeStatus();
    if (this.#o.files === false) return;
    const c = this.#o.canvas;
    const dir = this.#o.outDir;
    writeFileSync(join(dir, 'latest.png.tmp'), encodePng({ width: c.width, height: c.height, rgba: c.rgba }, 1));
    renameSync(join(dir, 'latest.png.tmp'), join(dir, 'latest.png'));
  }

  #writeStatus(): void {
    this.status.elapsedMs = performance.now() - this.#t0;
    writeFileSync(join(this.#o.outDir, 'status.json'), JSON.stringify(this.status));
  }

  #line(last: boolean): void {
    if (this.#o.terminal === false) return;
    const s = this.status;
    const text = `  ${bar(s.tilesDone / s.tiles)} ${s.tilesDone}/${s.tiles} tiles, ${s.partials} partials, ${((performance.now() - this.#t0) / 1000).toFixed(1)} s`;
    if (process.stdout.isTTY) {
      process.stdout.write(`\r${text}${last ? '\n' : ''}`);
      return;
    }
    // Not a terminal (a log, a pipe): a line at most every second, and the last one.
    const now = performance.now();
    if (last || now - this.#lastLine >= 1000) {
      this.#lastLine = now;
      process.stdout.write(`${text}\n`);
    }
  }
}

function bar(fraction: number, width = 24): string {
  const n = Math.round(fraction * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
}
