/**
 * The chess handlers, in the shape `atp worker --module` loads:
 * `export const handlers = { 'chess.perft': fn, 'chess.search': fn }`.
 *
 * Both are CPU-bound and run in slices: between slices they yield to the event loop (so that lease
 * renewals go out and a REVOKE gets in) and stop at once when ctx.signal is aborted.
 */
import type { HandlerContext, LeasedArtifact } from '../../src/worker/worker.js';
import { AlphaBeta } from './alpha-beta.js';
import { MAX_MOVES, Position, moveToUci } from './movegen.js';

/** Payload of a `chess.perft` artifact. */
export interface PerftTask {
  fen: string;
  depth: number;
}

/** Result of a `chess.perft` artifact. */
export interface PerftAnswer {
  nodes: number;
}

/** Payload of a `chess.search` artifact: search `fen` to `depth` with the window (alpha, beta). */
export interface SearchTask {
  fen: string;
  depth: number;
  alpha: number;
  beta: number;
  /** Distance from the root of the whole search (mate scores count from there). */
  ply: number;
  /** Makes the artifact id unique to one search run (ids are content-addressed). */
  run: string;
}

/** Result of a `chess.search` artifact, and of each partial (one per completed depth, and progress). */
export interface SearchAnswer {
  /** Last completed depth (the task's depth in the result). */
  depth: number;
  /** Fail-hard score of that depth, for the side to move, clamped to the window. */
  score: number;
  /** Best move of that depth in UCI, or "" when no move raised alpha. */
  best: string;
  /** Nodes searched so far by this lease, all depths together. */
  nodes: number;
}

const dec = new TextDecoder();
/** Nodes searched between two yields to the event loop (a few milliseconds). */
export const SLICE_NODES = 20_000;
/** A progress partial goes out every this many nodes, so that cancelled work can be counted. */
const PROGRESS_NODES = 200_000;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function stopIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/** Count the leaves of the move tree of `fen` to `depth`; yields between the first-level moves. */
export async function perftHandler(artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> {
  const task = JSON.parse(dec.decode(artifact.payload)) as PerftTask;
  const pos = new Position(task.fen);
  if (task.depth <= 1) return JSON.stringify({ nodes: pos.perft(task.depth) } satisfies PerftAnswer);
  const moves = new Int32Array(MAX_MOVES);
  const n = pos.generateLegal(moves, 0);
  let nodes = 0;
  for (let i = 0; i < n; i++) {
    pos.make(moves[i]!);
    nodes += pos.perft(task.depth - 1);
    pos.unmake();
    await yieldToLoop();
    stopIfAborted(ctx.signal);
  }
  return JSON.stringify({ nodes } satisfies PerftAnswer);
}

/**
 * Alpha-beta of one subtree with iterative deepening: depths 1..task.depth with the task's window,
 * the best move of each depth tried first in the next. A partial result goes out per completed
 * depth (and every PROGRESS_NODES nodes); the result is the last depth's.
 */
export async function searchHandler(artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> {
  const task = JSON.parse(dec.decode(artifact.payload)) as SearchTask;
  const engine = new AlphaBeta(new Position(task.fen));
  let answer: SearchAnswer = { depth: 0, score: Math.max(task.alpha, Math.min(task.beta, 0)), best: '', nodes: 0 };
  let firstMove = 0;
  let nextProgress = PROGRESS_NODES;
  // Depth 0 is a quiescence search alone; otherwise depths 1..task.depth.
  for (let depth = Math.min(1, task.depth); depth <= task.depth; depth++) {
    engine.begin(depth, task.alpha, task.beta, task.ply, firstMove);
    while (!engine.run(SLICE_NODES)) {
      await yieldToLoop();
      stopIfAborted(ctx.signal);
      if (engine.nodes >= nextProgress) {
        nextProgress = engine.nodes + PROGRESS_NODES;
        ctx.partial(JSON.stringify({ ...answer, nodes: engine.nodes }));
      }
    }
    if (engine.bestMove !== 0) firstMove = engine.bestMove;
    answer = { depth, score: engine.score, best: firstMove === 0 ? '' : moveToUci(firstMove), nodes: engine.nodes };
    if (depth < task.depth) ctx.partial(JSON.stringify(answer));
  }
  return JSON.stringify(answer);
}

/** The handler table (`atp worker --module dist/examples/chess/handlers.js`). */
export const handlers = {
  'chess.perft': perftHandler,
  'chess.search': searchHandler,
};
