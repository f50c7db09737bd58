/**
 * The search of one subtree, as a `chess.search` artifact describes it: iterative deepening to the
 * task's depth with the task's window, each depth trying the previous depth's best move first.
 * Written as a generator so that the same code runs in a worker (which yields to its event loop
 * between slices) and in the single-process search (which never yields).
 */
import type { AlphaBeta } from './alpha-beta.js';
import { moveToUci } from './movegen.js';

/** Payload of a `chess.search` artifact: search `fen` to `depth` with the window (alpha, beta). */
export interface SubtreeTask {
  fen: string;
  depth: number;
  alpha: number;
  beta: number;
  /** Distance from the root of the whole search (mate scores count from there). */
  ply: number;
  /** Makes the artifact id unique to one search run (ids are content-addressed). */
  run: string;
}

/** Where the search of a subtree stands after a completed depth. */
export interface SubtreeProgress {
  /** Last completed depth. */
  depth: number;
  /** Fail-hard score of that depth for the side to move, clamped to the window. */
  score: number;
  /** Best move so far in UCI, or "" when no move has raised alpha. */
  best: string;
  /** Nodes searched for this task, all depths together. */
  nodes: number;
}

/** Nodes searched between two yields (a few milliseconds of work). */
export const SLICE_NODES = 20_000;

/**
 * Search the task's position (already set on `engine.pos`). Yields `undefined` after every slice of
 * `sliceNodes` nodes and the progress after every completed depth but the last; returns the last.
 */
export function* iterateSubtree(
  engine: AlphaBeta,
  task: SubtreeTask,
  sliceNodes = SLICE_NODES,
): Generator<SubtreeProgress | undefined, SubtreeProgress> {
  const nodesBefore = engine.nodes;
  let progress: SubtreeProgress = { depth: 0, score: task.alpha, best: '', nodes: 0 };
  let first = 0;
  // Depth 0 is a quiescence search alone; otherwise depths 1..task.depth.
  for (let depth = Math.min(1, task.depth); depth <= task.depth; depth++) {
    engine.begin(depth, task.alpha, task.beta, task.ply, first);
    while (!engine.run(sliceNodes)) yield undefined;
    if (engine.bestMove !== 0) first = engine.bestMove;
    progress = { depth, score: engine.score, best: first === 0 ? '' : moveToUci(first), nodes: engine.nodes - nodesBefore };
    if (depth < task.depth) yield progress;
  }
  return progress;
}

/** Set up the task's position on `engine` (killers forgotten) and search it to the end. */
export function searchSubtreeSync(engine: AlphaBeta, task: SubtreeTask): SubtreeProgress {
  engine.pos.setFen(task.fen);
  engine.resetKillers();
  const it = iterateSubtree(engine, task, 1 << 30);
  for (;;) {
    const step = it.next();
    if (step.done === true) return step.value;
  }
}
