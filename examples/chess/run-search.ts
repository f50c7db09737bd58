/**
 * Distributed alpha-beta end to end: the same search in one process, then split over W worker
 * processes through an in-process coordinator; both answers, the speed-up and the cancelled work.
 *
 *   node dist/examples/chess/run-search.js [--fen FEN] [--depth 7] [--workers 2] [--lookahead 4] [--eldest 1] [--split-depths 2] [--threads] [--quiet] [--plain]
 */
import { pathToFileURL } from 'node:url';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { flagsOf } from './perft-distributed.js';
import { searchDistributed } from './search-distributed.js';
import type { DistributedReport } from './search-distributed.js';
import { formatScore, searchLocal, searchPlain } from './search.js';
import type { SearchEvent, SearchReport } from './search.js';
import { WorkerPool, describePool, poolShape } from './worker-pool.js';
import type { WorkerRunner } from './worker-pool.js';

/** A quiet Italian game position after 1.e4 e5 2.Nf3 Nc6 3.Bc4 Nf6: many reasonable moves on both sides. */
export const DEFAULT_SEARCH_FEN = 'r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4';

/** Options of a run. */
export interface RunSearchOptions {
  fen: string;
  depth: number;
  workers: number;
  lookahead?: number;
  eldest?: number;
  runner?: WorkerRunner;
  /** One worker process whose handlers run in `workers` worker_threads, instead of `workers` processes. */
  threads?: boolean;
  /** Print every refutation, not only the best move so far. */
  verbose?: boolean;
  /** Also run the textbook alpha-beta (no split) as a cross-check. */
  plain?: boolean;
  /** The last this many depths are split (default 2). */
  splitDepths?: number;
  log?: (line: string) => void;
}

/** Both searches (and the plain one when asked). */
export interface RunSearchResult {
  local: SearchReport;
  distributed: DistributedReport;
  plain: SearchReport | undefined;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Run the single-process search, then the distributed one; print both. */
export async function runSearch(o: RunSearchOptions): Promise<RunSearchResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  log(`position ${o.fen}, depth ${o.depth}`);
  const from = Math.max(2, o.depth - (o.splitDepths ?? 2) + 1);
  const where = (depth: number) => (depth < from ? 'whole' : 'split');
  const onEvent =
    (who: string) =>
    (e: SearchEvent): void => {
      if (e.type === 'iteration') {
        const it = e.iteration;
        log(
          `  depth ${it.depth} (${where(it.depth)}${it.depth < from ? '' : `, ${who}`}): best ${it.best} ${formatScore(it.score)}, ${fmt(it.nodes)} nodes, ${(it.elapsedMs / 1000).toFixed(2)} s`,
        );
      } else if (e.type === 'best') {
        log(
          `    best so far at depth ${e.depth}: ${e.move} ${formatScore(e.score)} (root move ${e.rootMove}/${e.rootMoves}, ${(e.elapsedMs / 1000).toFixed(2)} s)`,
        );
      } else if (o.verbose && e.type === 'refuted')
        log(`    ${e.move} refuted by ${e.by} (<= ${e.bound}); ${e.cancelled} sibling subtrees cancelled`);
      else if (o.verbose && e.type === 'rescout') log(`    ${e.move}: scouted again at ${e.threshold}`);
      else if (o.verbose && e.type === 'partial')
        log(
          `    worker, ${e.move} ${e.reply}: depth ${e.answer.depth} of ${e.depth - 2} done, best ${e.answer.best} ${formatScore(e.answer.score)}, ${fmt(e.answer.nodes)} nodes`,
        );
    };
  const split = o.splitDepths !== undefined ? { splitDepths: o.splitDepths } : {};
  log('single process:');
  const local = searchLocal(o.fen, o.depth, { ...split, onEvent: onEvent('subtrees in turn') });
  log(
    `  => ${local.best} ${formatScore(local.score)}, ${fmt(local.nodes)} nodes, ${fmt(local.subtrees)} subtrees, in ${(local.elapsedMs / 1000).toFixed(2)} s`,
  );
  let plain: SearchReport | undefined;
  if (o.plain) {
    plain = searchPlain(o.fen, o.depth);
    log(
      `plain alpha-beta (no split, same evaluation): ${plain.best} ${formatScore(plain.score)}, ${fmt(plain.nodes)} nodes in ${(plain.elapsedMs / 1000).toFixed(2)} s`,
    );
  }

  const coordinator = new Coordinator({ resumeWindowMs: 300 });
  const listener = await coordinator.listen('tcp://127.0.0.1:0');
  const pool = new WorkerPool({ url: listener.url, log, ...poolShape(o, 'chess.search') });
  let client: Client | undefined;
  try {
    await pool.start(o.threads ? 1 : o.workers);
    client = await Client.connect(listener.url);
    log(`distributed over ${describePool(o, pool)} (${listener.url}):`);
    const distributed = await searchDistributed(client, o.fen, o.depth, {
      ...split,
      ...(o.lookahead !== undefined ? { lookahead: o.lookahead } : {}),
      ...(o.eldest !== undefined ? { eldest: o.eldest } : {}),
      onEvent: onEvent('workers'),
    });
    const d = distributed;
    log(`  => ${d.best} ${formatScore(d.score)}, ${fmt(d.nodes)} nodes in ${(d.elapsedMs / 1000).toFixed(2)} s`);
    const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    log('');
    log(
      `single process: ${local.best} ${formatScore(local.score)}, ${fmt(local.nodes)} nodes, ${fmt(local.subtrees)} subtrees, ${sec(local.elapsedMs)} (CPU ${sec(local.cpuMs)})`,
    );
    log(
      `distributed:    ${d.best} ${formatScore(d.score)}, ${fmt(d.nodes)} nodes, ${fmt(d.subtrees)} subtrees submitted, ${sec(d.elapsedMs)}`,
    );
    log(
      d.best === local.best && d.score === local.score
        ? 'same move and score: OK'
        : 'MISMATCH between the single-process and the distributed search',
    );
    log(`speed-up: ${(local.elapsedMs / d.elapsedMs).toFixed(2)}x with ${describePool(o, pool)} (wall clock)`);
    log(
      `cancelled: ${fmt(d.cancelled)} of ${fmt(d.subtrees)} subtrees (${d.refuted} root moves refuted, ${d.rescouts} scouted again); ${fmt(d.cancelledNodes)} nodes searched in cancelled work`,
    );
    log(
      `extra work: ${fmt(d.workerNodes + d.producerNodes - local.nodes)} nodes more than the single process (speculation, cancelled work)`,
    );
    log(
      `depth ${o.depth} on the workers: ${sec(d.splitElapsedMs)} wall; handlers busy ${sec(d.workerBusyMs)} (${((100 * d.workerBusyMs) / (o.workers * d.splitElapsedMs)).toFixed(0)}% of ${o.workers} workers), worker CPU ${sec(d.workerCpuMs)}; producer and coordinator CPU ${sec(d.cpuMs)}`,
    );
    return { local, distributed, plain };
  } finally {
    await client?.close();
    await pool.stop();
    await coordinator.close();
  }
}

async function main(): Promise<void> {
  const flags = flagsOf(process.argv.slice(2));
  const result = await runSearch({
    fen: flags.get('fen') ?? DEFAULT_SEARCH_FEN,
    depth: Number(flags.get('depth') ?? 7),
    workers: Number(flags.get('workers') ?? 2),
    ...(flags.has('lookahead') ? { lookahead: Number(flags.get('lookahead')) } : {}),
    ...(flags.has('eldest') ? { eldest: Number(flags.get('eldest')) } : {}),
    verbose: !flags.has('quiet'),
    plain: flags.has('plain'),
    ...(flags.has('split-depths') ? { splitDepths: Number(flags.get('split-depths')) } : {}),
    threads: flags.has('threads'),
  });
  if (result.local.best !== result.distributed.best || result.local.score !== result.distributed.score) process.exitCode = 1;
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) await main();
