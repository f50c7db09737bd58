/**
 * The symbolic half: depth-limited negamax with alpha-beta over 4×4 tic-tac-toe, whose horizon
 * positions are scored by the network. The network is asked in batches, not one position at a
 * time: the search first walks the tree to its horizon and collects the distinct positions there,
 * has them scored (in batches, all at once), then runs alpha-beta over the tree with those scores.
 *
 * Scores are for the side to move. A finished game inside the tree is scored exactly: a loss is
 * -(2 - ply/100), beyond anything the network (tanh, in (-1, 1)) says, and the sooner the worse,
 * so a forced win is taken at once and a loss put off; a full board is 0.
 */
import { SQUARES, emptySquares, isTerminal, keyOf, relative, sideToMove, winsAt } from './board.js';

/** Scores relative boards (0 empty, 1 own, 2 opponent) for the side to move, in one batch. */
export type BatchEvaluator = (rels: Uint8Array[]) => Promise<Float32Array>;

/** Options of a search. */
export interface SearchOptions {
  depth: number;
  /** Positions per batch. */
  batchSize: number;
  signal?: AbortSignal;
  /** Called as each batch comes back. */
  onBatch?: (done: number, total: number) => void;
}

/** What a search found and did. */
export interface SearchResult {
  move: number;
  score: number;
  moveScores: Map<number, number>;
  leaves: number;
  terminals: number;
  batches: number;
  nodes: number;
}

/** Score of a finished game for the side to move at `ply` when the opponent made a line. */
export function lossAt(ply: number): number {
  return -(2 - ply / 100);
}

/** Choose a move in `board` (which must not be over). */
export async function hybridSearch(board: Uint8Array, evaluate: BatchEvaluator, o: SearchOptions): Promise<SearchResult> {
  if (isTerminal(board)) throw new RangeError('the game is over: there is no move to choose');
  if (!Number.isInteger(o.depth) || o.depth < 1) throw new RangeError(`depth must be a positive integer, got ${o.depth}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${o.batchSize}`);
  const b = board.slice();

  // 1. Walk to the horizon; collect the distinct positions there (a transposition is asked once).
  const horizon = new Map<number, Uint8Array>();
  let terminals = 0;
  const collect = (depth: number): void => {
    const me = sideToMove(b);
    for (let sq = 0; sq < SQUARES; sq++) {
      if (b[sq] !== 0) continue;
      b[sq] = me;
      if (winsAt(b, sq) || emptySquares(b).length === 0) terminals++;
      else if (depth === 1) {
        const k = keyOf(b);
        if (!horizon.has(k)) horizon.set(k, relative(b));
      } else collect(depth - 1);
      b[sq] = 0;
    }
  };
  collect(o.depth);

  // 2. Score them, in batches sent all at once.
  const keys = [...horizon.keys()];
  const batches: number[][] = [];
  for (let i = 0; i < keys.length; i += o.batchSize) batches.push(keys.slice(i, i + o.batchSize));
  const scores = new Map<number, number>();
  let done = 0;
  await Promise.all(
    batches.map(async (batch) => {
      const out = await evaluate(batch.map((k) => horizon.get(k)!));
      if (out.length !== batch.length) throw new Error(`a batch of ${batch.length} positions came back with ${out.length} scores`);
      batch.forEach((k, i) => scores.set(k, out[i]!));
      o.onBatch?.(++done, batches.length);
    }),
  );
  o.signal?.throwIfAborted();

  // 3. Alpha-beta over the tree with those scores.
  let nodes = 0;
  const negamax = (depth: number, ply: number, alpha: number, beta: number): number => {
    nodes++;
    const me = sideToMove(b);
    let best = -Infinity;
    for (let sq = 0; sq < SQUARES; sq++) {
      if (b[sq] !== 0) continue;
      b[sq] = me;
      let v: number;
      if (winsAt(b, sq)) v = -lossAt(ply + 1);
      else if (emptySquares(b).length === 0) v = 0;
      else if (depth === 1) v = -scores.get(keyOf(b))!;
      else v = -negamax(depth - 1, ply + 1, -beta, -alpha);
      b[sq] = 0;
      if (v > best) best = v;
      if (best > alpha) alpha = best;
      if (alpha >= beta) break;
    }
    return best;
  };
  const moveScores = new Map<number, number>();
  let move = -1;
  let score = -Infinity;
  const me = sideToMove(b);
  for (const sq of emptySquares(b)) {
    b[sq] = me;
    let v: number;
    if (winsAt(b, sq)) v = -lossAt(1);
    else if (emptySquares(b).length === 0) v = 0;
    else if (o.depth === 1) v = -scores.get(keyOf(b))!;
    else v = -negamax(o.depth - 1, 1, -Infinity, Infinity);
    b[sq] = 0;
    moveScores.set(sq, v);
    if (v > score) {
      score = v;
      move = sq;
    }
  }
  return { move, score, moveScores, leaves: horizon.size, terminals, batches: batches.length, nodes };
}
