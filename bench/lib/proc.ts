/**
 * A benchmark child process as the harness sees it: started with `fork`, answered by request id,
 * its events observable, stopped politely or killed. Every child started is tracked so that the
 * harness can end all of them, one by one by pid, when it finishes or fails.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildEvent, Reply } from './ipc.js';

const procsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'procs');
const live = new Set<Proc>();

/** Options of a child process. */
export interface ProcOptions {
  /** Extra node flags (--expose-gc, --cpu-prof ...). */
  execArgv?: string[];
  /** How long to wait for its `ready` event. */
  readyTimeoutMs?: number;
  /** Working directory (profiles are written there). */
  cwd?: string;
}

/** One child process. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The payload of the child's `ready` event. */
  ready: Record<string, unknown> = {};
  #rid = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #listeners = new Set<(e: ChildEvent) => void>();
  #exitedFlag = false;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitedFlag = true;
        live.delete(this);
        for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) before answering`));
        this.#pending.clear();
        resolve({ code, signal });
      });
    });
    child.on('message', (raw: unknown) => {
      const m = raw as Partial<Reply> & Partial<ChildEvent>;
      if (typeof m.rid === 'number') {
        const p = this.#pending.get(m.rid);
        if (p === undefined) return;
        this.#pending.delete(m.rid);
        if (m.ok === true) p.resolve(m.value);
        else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
      } else if (typeof m.ev === 'string') {
        for (const fn of [...this.#listeners]) fn(m as ChildEvent);
      }
    });
  }

  /** Fork `procs/<script>.js` with its JSON configuration and wait for its `ready` event. */
  static async start(script: string, name: string, config: unknown, options: ProcOptions = {}): Promise<Proc> {
    const child = fork(path.join(procsDir, `${script}.js`), [JSON.stringify(config)], {
      execArgv: options.execArgv ?? [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    const p = new Proc(name, child);
    live.add(p);
    const ready = p.waitEvent('ready', () => true, options.readyTimeoutMs ?? 30_000);
    const died = p.exited.then(({ code, signal }) => {
      throw new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready`);
    });
    p.ready = await Promise.race([ready, died]);
    return p;
  }

  /** The child's pid. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** True once the process has exited. */
  get gone(): boolean {
    return this.#exitedFlag;
  }

  /** Call an operation of the child. */
  request<T>(op: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    if (this.#exitedFlag) return Promise.reject(new Error(`${this.name} has exited`));
    const rid = ++this.#rid;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new Error(`${this.name}: ${op} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(rid, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ rid, op, args });
    });
  }

  /** Listen to the child's events; returns a function that stops listening. */
  on(fn: (e: ChildEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Wait for an event matching `pred`. */
  waitEvent(ev: string, pred: (e: ChildEvent) => boolean, timeoutMs: number): Promise<ChildEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.name}: no ${ev} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((e) => {
        if (e.ev === ev && pred(e)) {
          clearTimeout(timer);
          off();
          resolve(e);
        }
      });
    });
  }

  /** Ask the child to exit; kill it (by its pid) if it does not within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exitedFlag) return;
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      await this.request('exit', {}, graceMs).catch(() => undefined);
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send a signal to this child. */
  kill(signal: NodeJS.Signals): void {
    if (!this.#exitedFlag) this.child.kill(signal);
  }
}

/** Stop every child still running (each by its own pid). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(5_000)));
}

/** Kill every child still running, synchronously (for process exit). */
export function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
}
