/**
 * Integration helpers: a coordinator on loopback with a store that counts accepted results, and
 * worker processes (test/fixtures/worker-process.ts) that tests can kill, stop and watch.
 */
import { afterEach } from 'node:test';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { CoordinatorOptions } from '../../src/coordinator/options.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { CompleteOutcome, LeaseRef } from '../../src/store/store.js';
import type { WorkerProcessConfig } from '../fixtures/worker-process.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/worker-process.js', import.meta.url));

/** A memory store that counts every result it accepts, by artifact. */
export class CountingStore extends MemoryStore {
  /** Artifact id -> accepted results (must end at exactly 1 each). */
  readonly accepted = new Map<string, number>();
  /** Artifact id -> the accepted result bytes. */
  readonly results = new Map<string, Uint8Array>();

  override async complete(ref: LeaseRef, result: Uint8Array, now: number): Promise<CompleteOutcome> {
    const out = await super.complete(ref, result, now);
    if (out.kind === 'ok' && out.view.state === 'COMPLETED') {
      this.accepted.set(out.view.id, (this.accepted.get(out.view.id) ?? 0) + 1);
      this.results.set(out.view.id, result.slice());
    }
    return out;
  }

  /** Artifacts accepted more than once. */
  duplicates(): string[] {
    return [...this.accepted].filter(([, n]) => n !== 1).map(([id]) => id);
  }
}

/** A coordinator on tcp://127.0.0.1 (or another URL) with a CountingStore. */
export async function startCoordinator(
  options: CoordinatorOptions = {},
  url = 'tcp://127.0.0.1:0',
): Promise<{ coord: Coordinator; store: CountingStore; url: string }> {
  const store = new CountingStore();
  const coord = new Coordinator({ store, ...options });
  const l = await coord.listen(url);
  return { coord, store, url: l.url };
}

/** One line a worker process printed. */
export type ProcessEvent = { name: string; ev: string } & Record<string, unknown>;

/** A running worker process. */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly name: string;
  readonly events: ProcessEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<{ pred: (e: ProcessEvent) => boolean; resolve: (e: ProcessEvent) => void }> = [];
  #stderr = '';

  constructor(config: WorkerProcessConfig) {
    this.name = config.name;
    this.child = spawn(process.execPath, [FIXTURE, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let e: ProcessEvent;
        try {
          e = JSON.parse(line) as ProcessEvent;
        } catch {
          continue;
        }
        this.events.push(e);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.pred(e)) return true;
          w.resolve(e);
          return false;
        });
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (c: string) => {
      this.#stderr += c;
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  /** Spawn and wait until the worker is connected. */
  static async start(config: WorkerProcessConfig, timeoutMs = 60_000): Promise<WorkerProcess> {
    const w = new WorkerProcess(config);
    await w.waitFor((e) => e.ev === 'ready', timeoutMs);
    return w;
  }

  /** Output on stderr so far (for failure messages). */
  get stderr(): string {
    return this.#stderr;
  }

  /** The first event (seen or to come) matching `pred`; rejects after `timeoutMs` as a safety net. */
  waitFor(pred: (e: ProcessEvent) => boolean, timeoutMs = 60_000): Promise<ProcessEvent> {
    const seen = this.events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.name}: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events).slice(-1500)}; stderr: ${this.#stderr.slice(-2000)}`,
            ),
          ),
        timeoutMs,
      );
      const exit = this.exited.then((x) =>
        reject(new Error(`${this.name} exited (${x.code ?? x.signal}) before the event; stderr: ${this.#stderr.slice(-2000)}`)),
      );
      void exit;
      this.#waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Count of events of one kind. */
  count(ev: string): number {
    return this.events.filter((e) => e.ev === ev).length;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }
}

const live = new Set<WorkerProcess>();

/** Kill every worker process still running (SIGKILL, which also ends stopped ones). */
/**
 * After each test: kill the worker processes it started, then undo what it registered, last first.
 * Returns the list to register on (`cleanup.push(() => coord.close())`).
 */
export function cleanupAfterEach(): Array<() => Promise<void> | void> {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    await killAll();
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  return cleanup;
}

export async function killAll(): Promise<void> {
  const all = [...live];
  for (const w of all) w.signal('SIGKILL');
  await Promise.all(all.map((w) => w.exited));
}

/** Resolve when `cond()` holds, polling every `everyMs`; rejects after `timeoutMs` as a safety net. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000, everyMs = 20): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
