/**
 * Distributed perft end to end: a coordinator in this process, W worker processes, the producer.
 *
 *   node dist/examples/chess/run-perft.js [--position start|kiwipete|position3|position4|position5]
 *     [--fen FEN] [--depth 5] [--split 1|2] [--workers 2] [--concurrency 2] [--threads] [--chaos] [--rerun]
 *
 * --chaos kills a random worker with SIGKILL every second and starts a new one; the leases of a killed
 * worker come back after the resume window (300 ms here) and the total must still be exact.
 * --rerun runs the same perft a second time: every subtree is then answered from the store.
 * --threads runs one worker process whose handlers run in W worker_threads (worker.handleInThreads).
 */
import { pathToFileURL } from 'node:url';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { PERFT_TABLE, flagsOf, formatPerftReport, perftDistributed } from './perft-distributed.js';
import type { PerftReport } from './perft-distributed.js';
import { WorkerPool, describePool, poolShape } from './worker-pool.js';
import type { WorkerRunner } from './worker-pool.js';

/** Options of a run. */
export interface RunPerftOptions {
  fen: string;
  depth: number;
  splitDepth: number;
  workers: number;
  /** Kill a random worker every this many ms (0: never). */
  chaosMs?: number;
  rerun?: boolean;
  runner?: WorkerRunner;
  /** One worker process whose handlers run in `workers` worker_threads, instead of `workers` processes. */
  threads?: boolean;
  /**
   * Leases per worker process (default 2): the next subtree is already there when one finishes, so
   * a worker never waits for the round trip; the two share the process's thread in slices.
   */
  concurrency?: number;
  log?: (line: string) => void;
}

/** What a run did. */
export interface RunPerftResult {
  reports: PerftReport[];
  killed: number;
  started: number;
  runner: WorkerRunner;
}

/** Start a coordinator and workers, run the perft (twice with rerun), stop everything. */
export async function runPerft(o: RunPerftOptions): Promise<RunPerftResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const coordinator = new Coordinator({ resumeWindowMs: 300 });
  const listener = await coordinator.listen('tcp://127.0.0.1:0');
  const pool = new WorkerPool({ url: listener.url, log, concurrency: o.concurrency ?? 2, ...poolShape(o, 'chess.perft') });
  let client: Client | undefined;
  try {
    await pool.start(o.threads === true ? 1 : o.workers);
    log(`coordinator ${listener.url}; ${describePool(o, pool)}`);
    client = await Client.connect(listener.url);
    const reports: PerftReport[] = [];
    for (let run = 0; run < (o.rerun ? 2 : 1); run++) {
      if ((o.chaosMs ?? 0) > 0 && run === 0) {
        pool.startChaos(o.chaosMs!, (pid) => log(`chaos: SIGKILL worker ${pid ?? '(none live)'}, starting a new one`));
      }
      const report = await perftDistributed(client, o.fen, o.depth, { splitDepth: o.splitDepth });
      pool.stopChaos();
      log(run === 0 ? `perft ${o.depth} of ${o.fen}` : `again (rerun: answered from the store)`);
      log(formatPerftReport(report));
      reports.push(report);
    }
    if (pool.killed > 0) log(`workers killed: ${pool.killed}, started: ${pool.started}`);
    return { reports, killed: pool.killed, started: pool.started, runner: pool.runner };
  } finally {
    pool.stopChaos();
    await client?.close();
    await pool.stop();
    await coordinator.close();
  }
}

async function main(): Promise<void> {
  const flags = flagsOf(process.argv.slice(2));
  const named = PERFT_TABLE.find((p) => p.name === (flags.get('position') ?? 'start'));
  if (named === undefined) throw new Error(`--position is one of ${PERFT_TABLE.map((p) => p.name).join(', ')}`);
  const result = await runPerft({
    fen: flags.get('fen') ?? named.fen,
    depth: Number(flags.get('depth') ?? 5),
    splitDepth: Number(flags.get('split') ?? (Number(flags.get('depth') ?? 5) >= 6 ? 2 : 1)),
    workers: Number(flags.get('workers') ?? 2),
    chaosMs: flags.has('chaos') ? 1000 : 0,
    threads: flags.has('threads'),
    ...(flags.has('concurrency') ? { concurrency: Number(flags.get('concurrency')) } : {}),
    rerun: flags.has('rerun'),
  });
  const bad = result.reports.some((r) => r.expected !== undefined && r.total !== r.expected);
  if (bad) process.exitCode = 1;
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) await main();
