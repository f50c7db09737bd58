/**
 * Benchmark child: one ATP coordinator listening on a free loopback port. Answers `mem` (resident
 * and heap memory after a full GC when run with --expose-gc), `cpu` (process.cpuUsage), `counts`
 * (artifacts by state) and `exit` (close, drop the run's PostgreSQL schema, then exit so that a
 * --cpu-prof profile is written).
 */
import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { CoordinatorOptions } from '../../src/coordinator/options.js';
import { childConfig, emit, serve } from '../lib/ipc.js';
import { discardStore, makeStore } from '../lib/stores.js';
import type { StoreName } from '../lib/stores.js';

/** Configuration of the coordinator child. */
export interface CoordinatorConfig {
  store: StoreName;
  /** Database file for SQLite. */
  file: string;
  options: Omit<CoordinatorOptions, 'store' | 'clock' | 'tokens'>;
}

const cfg = childConfig<CoordinatorConfig>();
const store = await makeStore(cfg.store, cfg.file);
const coordinator = new Coordinator({ ...cfg.options, store });
const listener = await coordinator.listen('tcp://127.0.0.1:0');

const gc = (globalThis as { gc?: () => void }).gc;

async function settle(): Promise<void> {
  // Let finalizers and pending I/O run between collections, so that the heap is measured at rest.
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
}

serve({
  mem: async () => {
    await settle();
    const m = process.memoryUsage();
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      gc: gc !== undefined,
    };
  },
  counts: () => store.counts(),
  /** Worker sessions known (connected or within their resume window). */
  sessions: () => [...coordinator.sessions.values()].filter((s) => (s.roles & 1) !== 0).length,
  /** Leases being revoked and not yet acknowledged, over every session. */
  revoking: () => {
    let n = 0;
    for (const s of coordinator.sessions.values()) n += s.revoking.size;
    return n;
  },
  /** Frames received on every session's connection so far. */
  framesIn: () => {
    let n = 0;
    for (const s of coordinator.sessions.values()) n += s.channel?.stats.framesIn ?? 0;
    return n;
  },
  exit: async () => {
    await coordinator.close();
    await discardStore(cfg.store, cfg.file);
  },
});
emit('ready', { url: listener.url, pid: process.pid, store: store.name });
