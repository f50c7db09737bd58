/**
 * Hybrid symbolic + neural, end to end: make training data with the exact solver, train the value
 * network (printing its loss curve), save it, then run one job with two kinds of worker — searches
 * (`hybrid.search`) whose horizon positions are scored in batches (`hybrid.eval`) by workers
 * serving the saved network — and compare the moves with the exact solver's.
 *
 *   node dist/examples/hybrid/run.js [--positions 4000] [--epochs 12] [--hidden 64,32] [--searches 40]
 *                                    [--depth 3] [--eval-batch 128] [--eval-workers 2] [--seed 1] [--out DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { emptySquares, formatBoard, parseBoard, pieces, relative, sideToMove, squareName, winsAt } from './board.js';
import { augment, label, randomPositions, split } from './dataset.js';
import { ExactSolver } from './exact-solver.js';
import { localEvaluator, scoreBoards } from './handlers.js';
import { HybridProcesses } from './hybrid-processes.js';
import type { HybridProcess } from './hybrid-processes.js';
import { EVAL_KIND, SEARCH_KIND, encodePositions, encodeScores } from './protocol.js';
import type { SearchAnswer, SearchTask } from './protocol.js';
import { mulberry32 } from '../shared/random.js';
import { hybridSearch } from './search.js';
import { accuracyOf, train } from './train.js';
import type { Accuracy, LossPoint } from './train.js';

/** Options of a run. */
export interface HybridOptions {
  seed: number;
  /** Labelled positions to generate (distinct up to symmetry), with at least `minPieces` pieces. */
  positions: number;
  minPieces: number;
  heldOutFraction: number;
  hidden: number[];
  epochs: number;
  learningRate: number;
  trainBatch: number;
  /** Where model.json is written. */
  outDir: string;
  /** Held-out positions to search: ones where the choice of move matters and is not a one-move tactic. */
  searches: number;
  /** Positions to search as well (parseBoard notation). */
  extraBoards?: string[];
  depth: number;
  /** Positions per hybrid.eval artifact. */
  evalBatch: number;
  evalWorkers: number;
  searchWorkers: number;
  log?: (line: string) => void;
}

/** One search and how it compares with the exact solver. */
export interface SearchRow {
  board: Uint8Array;
  source: 'held-out' | 'given';
  searchId: string;
  answer: SearchAnswer;
  legal: boolean;
  /** Exact value of every legal move, and the moves reaching the best. */
  exact: Map<number, -1 | 0 | 1>;
  best: number[];
  optimal: boolean;
  /** The same search in this process with the in-memory model. */
  localMove: number;
  /** The network alone (depth 1, no search). */
  greedyMove: number;
  greedyOptimal: boolean;
  /** Chance that a uniformly random move is optimal. */
  randomOptimal: number;
}

/** Everything a run measured. */
export interface HybridReport {
  data: { positions: number; train: number; trainAugmented: number; heldOut: number; labelMs: number; classes: Record<string, number> };
  curve: LossPoint[];
  heldOut: Accuracy;
  modelPath: string;
  /** The same positions scored by an eval worker (model read from model.json) and in this process. */
  bitCheck: { id: string; positions: number; served: Uint8Array; local: Uint8Array; equal: boolean };
  searches: SearchRow[];
  evals: {
    ids: number;
    kinds: Record<string, number>;
    states: Record<string, number>;
    servedByEvalWorkers: number;
    memoized: number;
    positions: number;
  };
  processes: HybridProcess[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const VALUE_NAME = { '-1': 'loss', '0': 'draw', '1': 'win' } as const;
const valueName = (v: number) => VALUE_NAME[String(v) as keyof typeof VALUE_NAME];

/** Train, save, serve, search, compare. */
export async function runHybrid(o: HybridOptions): Promise<HybridReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const random = mulberry32(o.seed);

  log(`1. data: ${o.positions} positions of 4×4 tic-tac-toe (≥ ${o.minPieces} pieces) by random play, labelled by the exact solver`);
  const solver = new ExactSolver();
  const t0 = performance.now();
  const samples = label(solver, randomPositions(o.positions, random, o.minPieces, 12));
  const labelMs = performance.now() - t0;
  const { train: trainSet, heldOut } = split(samples, o.heldOutFraction, random);
  const trainAugmented = augment(trainSet);
  const classes: Record<string, number> = { win: 0, draw: 0, loss: 0 };
  for (const s of samples) classes[valueName(s.value)]!++;
  log(
    `   ${samples.length} positions (${Object.entries(classes)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')} for the side to move), ${solver.solved.toLocaleString('en-US')} positions solved in ${(labelMs / 1000).toFixed(1)} s`,
  );
  log(
    `   ${trainSet.length} for training (${trainAugmented.length} with their symmetric images), ${heldOut.length} held out (distinct from them up to symmetry)`,
  );

  log(
    `2. training: MLP ${[32, ...o.hidden, 1].join('-')} (ReLU, tanh out), MSE, Adam lr ${o.learningRate}, batch ${o.trainBatch}, ${o.epochs} epochs`,
  );
  let first: LossPoint | undefined;
  const { model, curve } = train(trainAugmented, heldOut, {
    hidden: o.hidden,
    epochs: o.epochs,
    batchSize: o.trainBatch,
    learningRate: o.learningRate,
    seed: o.seed + 1,
    onEpoch: (p) => {
      first ??= p;
      const bar = '#'.repeat(Math.max(1, Math.round((40 * p.trainLoss) / first.trainLoss)));
      log(`   epoch ${String(p.epoch).padStart(2)}  train MSE ${p.trainLoss.toFixed(4)}  held-out MSE ${p.heldOutLoss.toFixed(4)}  ${bar}`);
    },
  });
  const acc = accuracyOf(model, heldOut);
  log(`3. held-out accuracy vs the exact solver (score > 1/3 win, < -1/3 loss, else draw): ${pct(acc.accuracy)} of ${acc.count}`);
  log(`   (always answering the most common value: ${pct(acc.majorityBaseline)}); rows exact, columns predicted (loss draw win):`);
  for (const v of [-1, 0, 1]) log(`   ${valueName(v).padEnd(5)} ${acc.confusion[v + 1]!.map((n) => String(n).padStart(6)).join('')}`);

  mkdirSync(o.outDir, { recursive: true });
  const modelPath = join(o.outDir, 'model.json');
  writeFileSync(
    modelPath,
    JSON.stringify(model.toJson({ seed: o.seed, positions: samples.length, epochs: o.epochs, heldOutAccuracy: acc.accuracy })),
  );
  log(`4. model saved to ${modelPath} (${model.parameterCount} parameters)`);

  log(
    `5. one job, two kinds: ${o.searchWorkers} ${SEARCH_KIND} worker process(es), ${o.evalWorkers} ${EVAL_KIND} worker processes serving ${modelPath}`,
  );
  const coordinator = new Coordinator();
  const listener = await coordinator.listen('tcp://127.0.0.1:0');
  const processes = new HybridProcesses(log);
  let client: Client | undefined;
  try {
    await processes.startEval(listener.url, modelPath, o.evalWorkers);
    await processes.startSearch(listener.url, o.searchWorkers);
    client = await Client.connect(listener.url);

    // The served network against the one in memory, on held-out positions.
    const rels = heldOut.slice(0, 64).map((s) => relative(s.board));
    const check = await client.submit({ kind: EVAL_KIND, payload: encodePositions(rels) });
    const served = Uint8Array.from((await check.result()).result);
    const local = encodeScores(scoreBoards(model, rels));
    const equal = served.length === local.length && served.every((b, i) => b === local[i]);
    log(`   served scores of ${rels.length} held-out positions equal the in-process model's bit for bit: ${equal ? 'yes' : 'NO'}`);

    // Searches: held-out positions where the choice of move matters and is not a one-move
    // tactic (no immediate win, no immediate threat to block), and any given ones.
    const chosen: Array<{ board: Uint8Array; source: 'held-out' | 'given' }> = [];
    for (const s of heldOut) {
      if (chosen.length >= o.searches) break;
      if (hasImmediateWin(s.board, sideToMove(s.board)) || hasImmediateWin(s.board, sideToMove(s.board) === 1 ? 2 : 1)) continue;
      const values = new Set(solver.moveValues(s.board).values());
      if (values.size > 1) chosen.push({ board: s.board, source: 'held-out' });
    }
    for (const b of o.extraBoards ?? []) chosen.push({ board: parseBoard(b), source: 'given' });
    log(`6. ${chosen.length} searches, depth ${o.depth}, horizon positions scored in batches of ${o.evalBatch}`);
    const handles = await client.submitMany(
      chosen.map((c) => ({
        kind: SEARCH_KIND,
        payload: JSON.stringify({ board: formatBoard(c.board), depth: o.depth, batchSize: o.evalBatch } satisfies SearchTask),
      })),
    );
    const outcomes = await Promise.all(handles.map((h) => h.result()));
    const searches: SearchRow[] = [];
    for (const [i, c] of chosen.entries()) {
      const out = outcomes[i]!;
      if (out.state !== 'COMPLETED') throw new Error(`search ${handles[i]!.id} ended ${out.state}: ${out.message}`);
      const answer = JSON.parse(new TextDecoder().decode(out.result)) as SearchAnswer;
      const exact = solver.moveValues(c.board);
      const best = solver.bestMoves(c.board);
      const localRun = await hybridSearch(c.board, localEvaluator(model), { depth: o.depth, batchSize: o.evalBatch });
      const greedy = await hybridSearch(c.board, localEvaluator(model), { depth: 1, batchSize: o.evalBatch });
      searches.push({
        board: c.board,
        source: c.source,
        searchId: handles[i]!.id,
        answer,
        legal: c.board[answer.move] === 0,
        exact,
        best,
        optimal: best.includes(answer.move),
        localMove: localRun.move,
        greedyMove: greedy.move,
        greedyOptimal: best.includes(greedy.move),
        randomOptimal: best.length / emptySquares(c.board).length,
      });
    }
    printSearches(searches, log);

    // Every batch the searches asked for: its kind and state at the coordinator, and who served it.
    const ids = [...new Set(searches.flatMap((s) => s.answer.evalIds))];
    const kinds: Record<string, number> = {};
    const states: Record<string, number> = {};
    for (const id of ids) {
      const st = await client.query(id);
      kinds[st.kind] = (kinds[st.kind] ?? 0) + 1;
      states[st.state] = (states[st.state] ?? 0) + 1;
    }
    const servedIds = new Set(processes.served.map((r) => r.artifactId));
    const evals = {
      ids: ids.length,
      kinds,
      states,
      servedByEvalWorkers: ids.filter((id) => servedIds.has(id)).length,
      memoized: searches.reduce((n, s) => n + s.answer.memoized, 0),
      positions: processes.served.reduce((n, r) => n + r.positions, 0),
    };
    const byPid = new Map<number, number>();
    for (const r of processes.served) byPid.set(r.pid, (byPid.get(r.pid) ?? 0) + 1);
    log(
      `7. ${evals.ids} ${EVAL_KIND} artifacts (children of the searches; kinds ${JSON.stringify(kinds)}, states ${JSON.stringify(states)}), ` +
        `${evals.memoized} answered from the store as repeats; the eval workers served ${processes.served.length} batches, ${evals.positions.toLocaleString('en-US')} positions ` +
        `(${[...byPid].map(([pid, n]) => `pid ${pid}: ${n}`).join(', ')})`,
    );
    const searchPids = processes.started.filter((p) => p.kind === SEARCH_KIND).map((p) => p.pid);
    const evalPids = processes.started.filter((p) => p.kind === EVAL_KIND).map((p) => p.pid);
    log(
      `   two kinds in one job on one coordinator: ${SEARCH_KIND} (pid ${searchPids.join(', ')}) and ${EVAL_KIND} (pid ${evalPids.join(', ')})`,
    );
    return {
      data: {
        positions: samples.length,
        train: trainSet.length,
        trainAugmented: trainAugmented.length,
        heldOut: heldOut.length,
        labelMs,
        classes,
      },
      curve,
      heldOut: acc,
      modelPath,
      bitCheck: { id: check.id, positions: rels.length, served, local, equal },
      searches,
      evals,
      processes: processes.started,
    };
  } finally {
    await client?.close();
    await processes.stop();
    await coordinator.close();
  }
}

/** Whether `player` could complete a line with one more piece. */
export function hasImmediateWin(board: Uint8Array, player: 1 | 2): boolean {
  const b = board.slice();
  for (const sq of emptySquares(board)) {
    b[sq] = player;
    const wins = winsAt(b, sq);
    b[sq] = 0;
    if (wins) return true;
  }
  return false;
}

function printSearches(rows: readonly SearchRow[], log: (line: string) => void): void {
  const head = ['board', 'pieces', 'exact', 'optimal moves', 'search', 'score', 'ok', 'net alone', 'ok', 'leaves', 'batches'];
  const lines = rows.map((r) => {
    const bestValue = Math.max(...r.exact.values());
    return [
      formatBoard(r.board),
      String(pieces(r.board)),
      valueName(bestValue),
      r.best.map(squareName).join(' '),
      squareName(r.answer.move),
      r.answer.score.toFixed(3),
      r.optimal ? 'yes' : 'no',
      squareName(r.greedyMove),
      r.greedyOptimal ? 'yes' : 'no',
      String(r.answer.leaves),
      String(r.answer.evalIds.length),
    ];
  });
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const fmt = (row: string[]) => '   ' + row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  log(fmt(head));
  for (const l of lines) log(fmt(l));
  const n = rows.length;
  const count = (f: (r: SearchRow) => boolean) => rows.filter(f).length;
  log(
    `   optimal moves (value equal to the exact solver's best): search ${count((r) => r.optimal)}/${n} (${pct(count((r) => r.optimal) / n)}), ` +
      `network alone ${count((r) => r.greedyOptimal)}/${n} (${pct(count((r) => r.greedyOptimal) / n)}), ` +
      `a random move ${pct(rows.reduce((a, r) => a + r.randomOptimal, 0) / n)} on average`,
  );
  log(`   served search = the same search in this process with the in-memory model: ${count((r) => r.localMove === r.answer.move)}/${n}`);
}

const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? undefined : args[i + 1];
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const num = (name: string, dflt: number) => Number(flag(args, name) ?? dflt);
  await runHybrid({
    seed: num('seed', 1),
    positions: num('positions', 4000),
    minPieces: num('min-pieces', 6),
    heldOutFraction: 0.2,
    hidden: (flag(args, 'hidden') ?? '64,32').split(',').map(Number),
    epochs: num('epochs', 12),
    learningRate: num('lr', 0.003),
    trainBatch: 64,
    outDir: flag(args, 'out') ?? fileURLToPath(new URL('../../../examples/hybrid/out/', import.meta.url)),
    searches: num('searches', 40),
    depth: num('depth', 3),
    evalBatch: num('eval-batch', 128),
    evalWorkers: num('eval-workers', 2),
    searchWorkers: 1,
  });
}
