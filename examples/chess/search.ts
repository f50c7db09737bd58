/**
 * Alpha-beta search of a position split two plies down, run in one process (`searchLocal`) or over
 * ATP workers (`searchDistributed`, search-distributed.ts): the same algorithm, evaluation and move
 * order, and so the same best move and score. `searchPlain` is the textbook root loop, for a
 * cross-check.
 *
 * Both deepen iteratively at the root, each depth trying the previous depth's best move first. The
 * shallow depths run whole in this process (they are cheap); the last `splitDepths` depths (default
 * 2) are split: a root move's value is the minimum over the opponent's replies of the value of the
 * position after the reply, and the search of each such position to depth d-2 is one subtree (a
 * `chess.search` artifact; subtree.ts).
 *
 * - The first root move is valued exactly: its first reply with the open window, then the others
 *   with the window capped at the lowest value found.
 * - Every later root move is scouted with the null window (alpha, alpha+1): the first reply that
 *   scores <= alpha refutes the move, and the siblings are useless. A move that no reply refutes is
 *   better than the best so far, and is then valued exactly.
 *
 * In one process (here) the subtrees run one after the other and a refutation simply stops the
 * loop; search-distributed.ts runs them as ATP artifacts.
 *
 * Why the answers agree: without transposition table or pruning heuristics a node's value depends
 * only on its position, depth and ply; a fail-hard window only bounds it. The best move is the first
 * root move (in the common order) whose value is the maximum, whichever way the values were found.
 */
import { AlphaBeta, INF, MATE, orderedMoves } from './alpha-beta.js';
import { Position, moveToUci } from './movegen.js';
import { searchSubtreeSync } from './subtree.js';
import type { SubtreeProgress } from './subtree.js';

/** One completed depth of the root iteration. */
export interface Iteration {
  depth: number;
  best: string;
  score: number;
  nodes: number;
  elapsedMs: number;
}

/** What a search found. */
export interface SearchReport {
  fen: string;
  depth: number;
  best: string;
  score: number;
  /** Nodes searched, all depths together (distributed: producer and workers, cancelled work included). */
  nodes: number;
  elapsedMs: number;
  /** CPU time of this process (distributed: of the producer and coordinator only). */
  cpuMs: number;
  iterations: Iteration[];
  /** Subtrees searched (distributed: submitted). */
  subtrees: number;
}

/** Progress of a search, as it goes. */
export type SearchEvent =
  | { type: 'iteration'; iteration: Iteration }
  | { type: 'best'; depth: number; move: string; score: number; rootMove: number; rootMoves: number; elapsedMs: number }
  | { type: 'refuted'; move: string; by: string; bound: number; rootMove: number; cancelled: number }
  | { type: 'rescout'; move: string; threshold: number }
  /** A worker's progress on the first reply of a move being valued exactly (after root `move` and `reply`). */
  | { type: 'partial'; depth: number; move: string; reply: string; answer: SubtreeProgress };

/** Scores as text: centipawns for the side to move, or "mate in N" / "mated in N" (moves). */
export function formatScore(score: number): string {
  if (Math.abs(score) >= MATE - 1000) {
    const plies = MATE - Math.abs(score);
    return `${score > 0 ? 'mate' : 'mated'} in ${Math.ceil(plies / 2)}`;
  }
  return `${score > 0 ? '+' : ''}${score} cp`;
}

/** A root move and the positions after each reply (the subtrees). */
export interface RootChild {
  move: number;
  uci: string;
  /** Value of the root move when the position after it is mate or stalemate (no replies). */
  terminal: number | undefined;
  replies: Array<{ uci: string; fen: string }>;
}

export const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Depths 1..last with a full window on `engine`, as both searches run them. */
export function iterate(
  engine: AlphaBeta,
  last: number,
  onIteration: ((it: Iteration) => void) | undefined,
): { first: number; iterations: Iteration[] } {
  const iterations: Iteration[] = [];
  let first = 0;
  for (let d = 1; d <= last; d++) {
    const before = engine.nodes;
    const t = performance.now();
    engine.searchSync(d, -INF, INF, 0, first);
    if (engine.bestMove !== 0) first = engine.bestMove;
    const it = {
      depth: d,
      best: first === 0 ? '' : moveToUci(first),
      score: engine.score,
      nodes: engine.nodes - before,
      elapsedMs: performance.now() - t,
    };
    iterations.push(it);
    onIteration?.(it);
  }
  return { first, iterations };
}

/** The root moves in the order of the next depth (the previous best first), with their replies. */
export function splitRoot(pos: Position, first: number): RootChild[] {
  return orderedMoves(pos, first).map((m) => {
    pos.make(m);
    const replies = orderedMoves(pos).map((r) => {
      pos.make(r);
      const fen = pos.toFen();
      pos.unmake();
      return { uci: moveToUci(r), fen };
    });
    // No reply: the root side has mated (scored from the root: MATE - 1) or stalemated.
    const terminal = replies.length > 0 ? undefined : pos.inCheck() ? MATE - 1 : 0;
    pos.unmake();
    return { move: m, uci: moveToUci(m), terminal, replies };
  });
}

/** The textbook search: iterative deepening to `depth`, a full-window alpha-beta at every depth. */
export function searchPlain(fen: string, depth: number, onIteration?: (it: Iteration) => void): SearchReport {
  const started = performance.now();
  const cpu = cpuNow();
  const engine = new AlphaBeta(new Position(fen));
  const { iterations } = iterate(engine, depth, onIteration);
  const last = iterations.at(-1);
  return {
    fen,
    depth,
    best: last?.best ?? '',
    score: last?.score ?? 0,
    nodes: engine.nodes,
    elapsedMs: performance.now() - started,
    cpuMs: cpuNow() - cpu,
    iterations,
    subtrees: 0,
  };
}

/** Options of the split search. */
export interface SplitOptions {
  /** The last this many depths are split (default 2); the shallower ones run whole in the producer. */
  splitDepths?: number;
  onEvent?: (event: SearchEvent) => void;
}

/** First depth that is split. */
export function splitFrom(depth: number, splitDepths = 2): number {
  if (!Number.isInteger(splitDepths) || splitDepths < 1) throw new RangeError(`splitDepths must be a positive integer, got ${splitDepths}`);
  return Math.max(2, depth - splitDepths + 1);
}

/** The split search in one process: at each split depth, the subtrees one after the other, in order. */
export function searchLocal(fen: string, depth: number, options: SplitOptions = {}): SearchReport {
  const pos = new Position(fen);
  if (!Number.isInteger(depth) || depth < 2 || pos.legalMoves().length === 0) return searchPlain(fen, depth);
  const { onEvent } = options;
  const started = performance.now();
  const cpu = cpuNow();
  const engine = new AlphaBeta(pos);
  const from = splitFrom(depth, options.splitDepths);
  let { first, iterations } = iterate(engine, from - 1, onEvent && ((it) => onEvent({ type: 'iteration', iteration: it })));
  const unitEngine = new AlphaBeta(new Position());
  let subtrees = 0;
  for (let d = from; d <= depth; d++) {
    const t = performance.now();
    const nodesBefore = unitEngine.nodes;
    const unit = (fen: string, alpha: number, beta: number) => {
      subtrees++;
      return searchSubtreeSync(unitEngine, { fen, depth: d - 2, alpha, beta, ply: 2, run: '' }).score;
    };
    const refutes = (c: RootChild, threshold: number) =>
      c.terminal !== undefined ? c.terminal <= threshold : c.replies.some((r) => unit(r.fen, threshold, threshold + 1) <= threshold);
    const exact = (c: RootChild, threshold: number) => {
      if (c.terminal !== undefined) return c.terminal;
      let value = INF;
      for (const r of c.replies) value = Math.min(value, unit(r.fen, threshold, value));
      return value;
    };
    const children = splitRoot(pos, first);
    const emitBest = (i: number, score: number) =>
      onEvent?.({
        type: 'best',
        depth: d,
        move: children[i]!.uci,
        score,
        rootMove: i + 1,
        rootMoves: children.length,
        elapsedMs: performance.now() - started,
      });
    let best = 0;
    let alpha = exact(children[0]!, -INF);
    emitBest(0, alpha);
    for (let i = 1; i < children.length; i++) {
      if (refutes(children[i]!, alpha)) continue;
      alpha = exact(children[i]!, alpha);
      best = i;
      emitBest(i, alpha);
    }
    first = children[best]!.move;
    const it = {
      depth: d,
      best: children[best]!.uci,
      score: alpha,
      nodes: unitEngine.nodes - nodesBefore,
      elapsedMs: performance.now() - t,
    };
    iterations = [...iterations, it];
    onEvent?.({ type: 'iteration', iteration: it });
  }
  const last = iterations.at(-1)!;
  return {
    fen,
    depth,
    best: last.best,
    score: last.score,
    nodes: engine.nodes + unitEngine.nodes,
    elapsedMs: performance.now() - started,
    cpuMs: cpuNow() - cpu,
    iterations,
    subtrees,
  };
}
