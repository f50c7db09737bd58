/**
 * The worker processes of the hybrid example: `worker-main.js --kind hybrid.eval --model ...` and
 * `--kind hybrid.search`, started against one coordinator. The `HYBRID-SERVED` lines the eval
 * workers print are collected.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EVAL_KIND, SEARCH_KIND, SERVED_PREFIX } from './protocol.js';
import type { ServedRecord } from './protocol.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** A started worker process. */
export interface HybridProcess {
  kind: string;
  pid: number;
}

/** The worker processes of one job. */
export class HybridProcesses {
  readonly #children: ChildProcess[] = [];
  readonly started: HybridProcess[] = [];
  /** Every batch an eval worker served, in order. */
  readonly served: ServedRecord[] = [];
  readonly #log: (line: string) => void;

  constructor(log: (line: string) => void = () => undefined) {
    this.#log = log;
  }

  /** Start `count` eval workers serving the model at `modelPath`. */
  startEval(url: string, modelPath: string, count: number, concurrency = 2): Promise<void> {
    return this.#startMany(count, [url, '--kind', EVAL_KIND, '--model', modelPath, '--concurrency', String(concurrency)], EVAL_KIND);
  }

  /** Start `count` search workers. */
  startSearch(url: string, count: number, concurrency = 4): Promise<void> {
    return this.#startMany(count, [url, '--kind', SEARCH_KIND, '--concurrency', String(concurrency)], SEARCH_KIND);
  }

  async #startMany(count: number, args: string[], kind: string): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.#spawn(args, kind)));
  }

  #spawn(args: string[], kind: string): Promise<void> {
    const child = spawn(process.execPath, [WORKER_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#children.push(child);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim() !== '') this.#log(`[${kind} worker ${child.pid}] ${line}`);
    });
    return new Promise<void>((resolve, reject) => {
      let buffered = '';
      let connected = false;
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.startsWith(SERVED_PREFIX)) this.served.push(JSON.parse(line.slice(SERVED_PREFIX.length)) as ServedRecord);
          else if (!connected && line.includes('connected')) {
            connected = true;
            this.started.push({ kind, pid: child.pid ?? -1 });
            this.#log(`  ${line}`);
            resolve();
          } else if (line.trim() !== '') this.#log(`[${kind} worker ${child.pid}] ${line}`);
        }
      });
      child.once('exit', (code, signal) => {
        if (!connected) reject(new Error(`${kind} worker ${child.pid} exited (${signal ?? `code ${code}`}) before connecting`));
      });
    });
  }

  /** SIGTERM every process and wait for them to exit (SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const live = this.#children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exits = live.map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
    for (const c of live) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 5_000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
