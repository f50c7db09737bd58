/**
 * Benchmark child: one or more ATP worker sessions (the worker SDK) in one process. What a handler
 * does is set per kind:
 * - `noop`: returns at once;
 * - `cpu1ms`: busies the CPU for 1 ms (process.hrtime), then returns;
 * - `stamp`: returns the monotonic time (ns) at which the handler started;
 * - `hold`: runs until its signal is aborted (cancel, revoke, loss), stamping when the signal fired;
 * - `relay`: stamps its start and returns at once.
 * Starts and aborts are counted; with `report: 'each'` each one is also pushed to the harness as an
 * event (for one-at-a-time measurements: never with thousands of leases, where IPC would slow the
 * worker down).
 */
import { Worker } from '../../src/worker/worker.js';
import { childConfig, emit, nowNs, serve, spin } from '../lib/ipc.js';

/** What a handler does. */
export type HandlerMode = 'noop' | 'cpu1ms' | 'stamp' | 'hold' | 'relay';

/** Configuration of the worker child. */
export interface AtpWorkerConfig {
  url: string;
  /** Worker sessions in this process. */
  sessions: number;
  /** Concurrency (credits) of each session. */
  concurrency: number;
  kinds: Record<string, HandlerMode>;
  report: 'each' | 'none';
}

/** Counters of a worker child. */
export interface AtpWorkerStats {
  leased: number;
  completed: number;
  started: number;
  aborted: number;
  firstStartNs: number;
  lastStartNs: number;
  lastAbortNs: number;
  firstAbortNs: number;
  /** Starts of an attempt after the first (re-leased artifacts). */
  reStarted: number;
  lastReStartNs: number;
  firstReStartNs: number;
}

const cfg = childConfig<AtpWorkerConfig>();
const stats: AtpWorkerStats = {
  leased: 0,
  completed: 0,
  started: 0,
  aborted: 0,
  firstStartNs: 0,
  lastStartNs: 0,
  lastAbortNs: 0,
  firstAbortNs: 0,
  reStarted: 0,
  lastReStartNs: 0,
  firstReStartNs: 0,
};
const each = cfg.report === 'each';

function started(id: string, attempt: number): number {
  const t = nowNs();
  stats.started++;
  if (stats.firstStartNs === 0) stats.firstStartNs = t;
  stats.lastStartNs = t;
  if (attempt > 1) {
    stats.reStarted++;
    if (stats.firstReStartNs === 0) stats.firstReStartNs = t;
    stats.lastReStartNs = t;
  }
  if (each) emit('started', { id, attempt, t });
  return t;
}

const workers: Worker[] = [];
for (let i = 0; i < cfg.sessions; i++) {
  const w = new Worker({ url: cfg.url, concurrency: cfg.concurrency });
  for (const [kind, mode] of Object.entries(cfg.kinds)) {
    switch (mode) {
      case 'noop':
        w.handle(kind, () => Promise.resolve(undefined));
        break;
      case 'cpu1ms':
        w.handle(kind, () => {
          spin(1);
          return Promise.resolve(undefined);
        });
        break;
      case 'stamp':
        w.handle(kind, () => Promise.resolve(String(nowNs())));
        break;
      case 'relay':
        w.handle(kind, (a) => {
          started(a.id, a.attempt);
          return Promise.resolve(undefined);
        });
        break;
      case 'hold':
        w.handle(
          kind,
          (a, ctx) =>
            new Promise((resolve) => {
              ctx.signal.addEventListener(
                'abort',
                () => {
                  const t = nowNs();
                  if (stats.aborted++ === 0) stats.firstAbortNs = t;
                  stats.lastAbortNs = Math.max(stats.lastAbortNs, t);
                  if (each) emit('aborted', { id: a.id, t });
                  resolve(undefined);
                },
                { once: true },
              );
              started(a.id, a.attempt);
            }),
        );
        break;
    }
  }
  workers.push(w);
}
await Promise.all(workers.map((w) => w.start()));

serve({
  stats: (): AtpWorkerStats => {
    let leased = 0;
    let completed = 0;
    for (const w of workers) {
      leased += w.leased;
      completed += w.completed;
    }
    return { ...stats, leased, completed };
  },
  exit: async () => {
    await Promise.all(workers.map((w) => w.close()));
  },
});
emit('ready', { pid: process.pid });
