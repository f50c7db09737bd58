/**
 * The state of one harness run: settings, the rows of the table, failures, raw results, and
 * helpers that start the processes every scenario uses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CoordinatorOptions } from '../../src/coordinator/options.js';
import type { AtpWorkerConfig, AtpWorkerStats } from '../procs/atp-worker.js';
import type { BullWorkerConfig } from '../procs/bull-worker.js';
import { Proc } from './proc.js';
import type { RedisServer } from './redis.js';
import { sqliteAvailable } from './stores.js';
import type { EmbeddedStoreName, StoreName } from './stores.js';

/** Counts and durations of a run (full or --short). */
export interface Settings {
  workers: number;
  concurrency: number;
  chunk: number;
  throughputN: number;
  cpuWorkN: number;
  floorN: number;
  floorWarm: number;
  dispatchN: number;
  dispatchWarm: number;
  cancelN: number;
  cancelPendingN: number;
  subtreeN: number;
  recoveryRounds: number;
  recoveryLeases: number;
  resumeWindowMs: number;
  holBytes: number;
  pendingN: number;
  /** SQLite journals every artifact: fewer, to keep the run within its time (bytes per artifact do not depend on the count). */
  pendingSqliteN: number;
  leasesN: number;
  bullMemoryN: number;
  renewSessions: number;
  renewProcs: number;
  renewLeasesPerSession: number;
  renewSeconds: number;
}

/** Full settings: the numbers in BENCHMARKS.md. */
export const FULL: Settings = {
  workers: 4,
  concurrency: 50,
  chunk: 1000,
  throughputN: 100_000,
  cpuWorkN: 10_000,
  floorN: 20_000,
  floorWarm: 2_000,
  dispatchN: 5_000,
  dispatchWarm: 200,
  cancelN: 1_000,
  cancelPendingN: 2_000,
  subtreeN: 10_000,
  recoveryRounds: 3,
  recoveryLeases: 10,
  resumeWindowMs: 5_000,
  holBytes: 100 * 2 ** 20,
  pendingN: 1_000_000,
  pendingSqliteN: 200_000,
  leasesN: 10_000,
  bullMemoryN: 100_000,
  renewSessions: 100,
  renewProcs: 4,
  renewLeasesPerSession: 100,
  renewSeconds: 60,
};

/** --short: small counts for CI (functional checks only). */
export const SHORT: Settings = {
  ...FULL,
  workers: 2,
  renewSessions: 20,
  renewProcs: 2,
  throughputN: 2_000,
  cpuWorkN: 300,
  floorN: 2_000,
  floorWarm: 200,
  dispatchN: 200,
  dispatchWarm: 20,
  cancelN: 50,
  cancelPendingN: 100,
  subtreeN: 1_000,
  recoveryRounds: 1,
  resumeWindowMs: 1_000,
  holBytes: 16 * 2 ** 20,
  pendingN: 100_000,
  pendingSqliteN: 20_000,
  leasesN: 1_000,
  bullMemoryN: 10_000,
  renewLeasesPerSession: 50,
  renewSeconds: 5,
};

/** One line of the table. Cells are already formatted. */
export interface Row {
  scenario: string;
  metric: string;
  memory?: string | undefined;
  sqlite?: string | undefined;
  postgres?: string | undefined;
  bullmq?: string | undefined;
  target?: string | undefined;
  result?: 'pass' | 'miss' | '' | undefined;
}

/** The peers of a scenario. */
export type Peer = StoreName | 'bullmq';

/** One harness run. */
export class Bench {
  readonly short: boolean;
  readonly settings: Settings;
  readonly rows: Row[] = [];
  readonly failures: string[] = [];
  readonly raw: Record<string, unknown> = {};
  readonly notes: string[] = [];
  readonly tmp = mkdtempSync(path.join(os.tmpdir(), 'atp-bench-'));
  readonly stores: EmbeddedStoreName[];
  /** The stores of the throughput scenarios: these, and PostgreSQL when a server is available. */
  readonly throughputStores: StoreName[];
  redis: RedisServer | undefined;
  #dbSeq = 0;

  constructor(short: boolean) {
    this.short = short;
    this.settings = short ? SHORT : FULL;
    this.stores = sqliteAvailable() ? ['memory', 'sqlite'] : ['memory'];
    this.throughputStores = [...this.stores];
  }

  /** Record a functional failure (the run exits non-zero). */
  fail(scenario: string, message: string): void {
    this.failures.push(`${scenario}: ${message}`);
    console.error(`  FAILED ${scenario}: ${message}`);
  }

  /** Check a functional condition. */
  expect(scenario: string, ok: boolean, message: string): boolean {
    if (!ok) this.fail(scenario, message);
    return ok;
  }

  row(r: Row): void {
    this.rows.push(r);
  }

  /** A coordinator child on a free port (always with --expose-gc, so memory can be measured). */
  coordinator(
    store: StoreName,
    options: Omit<CoordinatorOptions, 'store' | 'clock' | 'tokens'> = {},
    execArgv: string[] = [],
  ): Promise<Proc> {
    const file = path.join(this.tmp, `atp-${++this.#dbSeq}.db`);
    return Proc.start('coordinator', `coordinator(${store})`, { store, file, options }, { execArgv: ['--expose-gc', ...execArgv] });
  }

  /** `count` ATP worker children. */
  atpWorkers(count: number, config: AtpWorkerConfig, execArgv: string[] = []): Promise<Proc[]> {
    return Promise.all(Array.from({ length: count }, (_, i) => Proc.start('atp-worker', `atp-worker-${i}`, config, { execArgv })));
  }

  /** The ATP producer child. */
  atpDriver(url: string, execArgv: string[] = []): Promise<Proc> {
    return Proc.start('atp-driver', 'atp-driver', { url }, { execArgv });
  }

  /** Redis connection settings for the BullMQ children. */
  get redisConn(): { host: string; port: number } {
    if (this.redis === undefined) throw new Error('no redis-server');
    return { host: this.redis.host, port: this.redis.port };
  }

  /** `count` BullMQ worker children on `queue`. */
  bullWorkers(count: number, queue: string, concurrency: number, mode: BullWorkerConfig['mode']): Promise<Proc[]> {
    const cfg: BullWorkerConfig = { redis: this.redisConn, queue, concurrency, mode };
    return Promise.all(Array.from({ length: count }, (_, i) => Proc.start('bull-worker', `bull-worker-${i}`, cfg)));
  }

  /** The BullMQ producer child. */
  bullDriver(): Promise<Proc> {
    return Proc.start('bull-driver', 'bull-driver', { redis: this.redisConn });
  }

  /** Remove temporary files. */
  cleanup(): void {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Sum the counters of ATP worker children. */
export async function workerStats(workers: readonly Proc[]): Promise<AtpWorkerStats[]> {
  return Promise.all(workers.map((w) => w.request<AtpWorkerStats>('stats')));
}

/** Poll until `done` holds (every 20 ms), or throw after `timeoutMs`. */
export async function until(what: string, done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Stop processes (politely, then by pid). */
export async function stopProcs(...procs: Array<Proc | readonly Proc[] | undefined>): Promise<void> {
  const list = procs.flatMap((p) => (p === undefined ? [] : Array.isArray(p) ? (p as Proc[]) : [p as Proc]));
  await Promise.all(list.map((p) => p.stop()));
}

/** Numbers for the table. */
export const fmt = {
  int: (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a'),
  us: (v: number) => (Number.isFinite(v) ? `${Math.round(v).toLocaleString('en-US')} µs` : 'n/a'),
  ms: (v: number, digits = 1) => (Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a'),
  ratio: (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a'),
  bytes: (v: number) => (Number.isFinite(v) ? `${Math.round(v).toLocaleString('en-US')} B` : 'n/a'),
  pct: (v: number, digits = 2) => (Number.isFinite(v) ? `${v.toFixed(digits)} %` : 'n/a'),
};

/** pass or miss. */
export function verdict(ok: boolean): 'pass' | 'miss' {
  return ok ? 'pass' : 'miss';
}
