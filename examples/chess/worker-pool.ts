/**
 * Worker processes for the run scripts and the tests: one `node` process per worker (that is what
 * gives CPU parallelism), killed for real with SIGKILL by the chaos mode.
 *
 * A worker is `atp worker --module dist/examples/chess/handlers.js` when the CLI is built, else the
 * example's own worker-main.js; ATP_CHESS_WORKER=cli|own forces one.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const CLI_MAIN = here('../../src/cli/main.js');
const HANDLERS = here('./handlers.js');
const OWN_MAIN = here('./worker-main.js');

/** How the pool starts a worker process. */
export type WorkerRunner = 'cli' | 'own';

/** Which runner to use: the CLI if it is built (or as ATP_CHESS_WORKER says). */
export function defaultRunner(): WorkerRunner {
  const forced = process.env['ATP_CHESS_WORKER'];
  if (forced === 'cli' || forced === 'own') return forced;
  return existsSync(CLI_MAIN) ? 'cli' : 'own';
}

/** Options of a pool. */
export interface WorkerPoolOptions {
  url: string;
  runner?: WorkerRunner;
  /** Handlers per process (default 1: one process per core is the point). */
  concurrency?: number;
  /**
   * Run the handlers in this many worker_threads per process (worker.handleInThreads) instead of
   * in the process's main thread; needs the example's own runner (the CLI has no such flag).
   */
  threads?: number;
  /** Kinds the workers take (default: all the example's kinds). */
  kinds?: string[];
  /** Called with each line a worker writes to stderr. */
  log?: (line: string) => void;
}

/** A set of worker processes connected to one coordinator. */
export class WorkerPool {
  readonly runner: WorkerRunner;
  readonly #options: WorkerPoolOptions;
  readonly #live = new Set<ChildProcess>();
  /** Live workers that have connected (the ones chaos may kill). */
  readonly #ready = new Set<ChildProcess>();
  #stopping = false;
  /** Workers killed with SIGKILL so far. */
  killed = 0;
  /** Workers started so far. */
  started = 0;
  #chaos: NodeJS.Timeout | undefined;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.runner = options.runner ?? (options.threads !== undefined ? 'own' : defaultRunner());
    if (this.runner === 'cli' && options.threads !== undefined)
      throw new RangeError('the atp CLI runs handlers in-process: threads need the own runner');
  }

  /** Live worker processes. */
  get size(): number {
    return this.#live.size;
  }

  /** Start `count` workers; resolves when each has connected. */
  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.spawnOne()));
  }

  /** Start one worker; resolves when it has connected to the coordinator. */
  spawnOne(): Promise<ChildProcess> {
    const { url, concurrency = 1, log, threads, kinds } = this.#options;
    const args =
      this.runner === 'cli'
        ? [CLI_MAIN, 'worker', '--connect', url, '--module', HANDLERS, '--concurrency', String(concurrency)]
        : [
            OWN_MAIN,
            url,
            '--concurrency',
            String(concurrency),
            ...(threads !== undefined ? ['--threads', String(threads)] : []),
            ...(kinds !== undefined ? ['--kinds', kinds.join(',')] : []),
          ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.started++;
    this.#live.add(child);
    child.once('exit', () => {
      this.#live.delete(child);
      this.#ready.delete(child);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim() !== '') log?.(`[worker ${child.pid}] ${line}`);
    });
    return new Promise<ChildProcess>((resolve, reject) => {
      let out = '';
      const onData = (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('connected')) {
          child.stdout.off('data', onData);
          child.stdout.resume();
          child.off('exit', onExit);
          if (child.exitCode === null && child.signalCode === null) this.#ready.add(child);
          resolve(child);
        }
      };
      const onExit = (code: number | null, signal: string | null) =>
        reject(new Error(`worker process ${child.pid} exited (${signal ?? `code ${code}`}) before connecting; output: ${out.trim()}`));
      child.stdout.on('data', onData);
      child.once('exit', onExit);
    });
  }

  /**
   * SIGKILL one connected worker at random (no goodbye: its leases come back after the resume
   * window). Returns its pid, or undefined when no worker is connected.
   */
  killOne(random: () => number = Math.random): number | undefined {
    const ready = [...this.#ready];
    const victim = ready[Math.floor(random() * ready.length)];
    if (victim === undefined) return undefined;
    victim.kill('SIGKILL');
    this.#ready.delete(victim);
    this.killed++;
    return victim.pid;
  }

  /** Every `intervalMs`: SIGKILL a random worker and start a new one. */
  startChaos(intervalMs: number, onKill?: (pid: number | undefined) => void, random: () => number = Math.random): void {
    this.stopChaos();
    this.#chaos = setInterval(() => {
      const pid = this.killOne(random);
      onKill?.(pid);
      this.spawnOne().catch((err: unknown) => {
        if (!this.#stopping) this.#options.log?.(`could not start a worker: ${String(err)}`);
      });
    }, intervalMs);
  }

  /** Stop killing workers. */
  stopChaos(): void {
    if (this.#chaos !== undefined) clearInterval(this.#chaos);
    this.#chaos = undefined;
  }

  /** Stop every worker (SIGTERM: drain and leave) and wait for them to exit. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.stopChaos();
    const exits = [...this.#live].map(
      (c) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()))),
    );
    for (const c of this.#live) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of this.#live) c.kill('SIGKILL');
    }, 5_000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}

/** Pool options for `workers` workers: that many processes, or one process with that many threads. */
export function poolShape(o: { workers: number; threads?: boolean; runner?: WorkerRunner }, kind: string): Partial<WorkerPoolOptions> {
  if (o.threads === true) return { threads: o.workers, kinds: [kind] };
  return { kinds: [kind], ...(o.runner !== undefined ? { runner: o.runner } : {}) };
}

/** "2 worker processes (atp worker)" or "1 worker process with 2 threads". */
export function describePool(o: { workers: number; threads?: boolean }, pool: WorkerPool): string {
  if (o.threads === true) return `1 worker process with ${o.workers} handler threads`;
  return `${o.workers} worker processes (${pool.runner === 'cli' ? 'atp worker --module handlers.js' : 'worker-main.js'})`;
}
