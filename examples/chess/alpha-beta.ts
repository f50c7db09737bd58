/**
 * Fail-hard alpha-beta with a capture quiescence search, written with an explicit stack instead of
 * recursion so that it can stop after any number of nodes and resume later: a worker runs it in
 * slices and yields to its event loop in between (renewals go out, a revoke gets in).
 *
 * No transposition table, no null move, no reductions: the value of a node depends only on the
 * position, the depth and the ply, never on the window or on what was searched before. That is
 * what lets a search split across processes return exactly the score of the same search run in one.
 */
import { evaluate, PIECE_VALUE, SQUARE_VALUE } from './evaluate.js';
import { MAX_MOVES, MAX_PLY, MoveFlag, type Position } from './movegen.js';

/** Larger than any score. */
export const INF = 32000;
/** Score of being mated at ply 0; mated at ply p scores -(MATE - p). */
export const MATE = 30000;

const FIRST_MOVE_SCORE = 1 << 24;
const CAPTURE_SCORE = 1 << 20;
const KILLER_SCORE = 1 << 16;

/** Order-scores of moves: the first move, then captures (MVV-LVA) and promotions, then killers. */
export function scoreMove(pos: Position, m: number, first: number, killer1: number, killer2: number): number {
  if (m === first) return FIRST_MOVE_SCORE;
  const to = (m >> 7) & 127;
  const victim = pos.board[to]! & 7;
  const promo = (m >> 14) & 7;
  if (victim !== 0 || promo !== 0 || m >> 17 === MoveFlag.EN_PASSANT) {
    const attacker = pos.board[m & 127]! & 7;
    return CAPTURE_SCORE + (victim === 0 ? 100 : PIECE_VALUE[victim]!) * 8 + PIECE_VALUE[promo]! - attacker;
  }
  if (m === killer1) return KILLER_SCORE + 1;
  if (m === killer2) return KILLER_SCORE;
  return 0;
}

/** Move the best-scored of moves[next..end) to `next` (the first of equals wins) and return it. */
export function pickNext(moves: Int32Array, scores: Int32Array, next: number, end: number): number {
  let best = next;
  for (let i = next + 1; i < end; i++) if (scores[i]! > scores[best]!) best = i;
  const m = moves[best]!;
  if (best !== next) {
    moves[best] = moves[next]!;
    moves[next] = m;
    const s = scores[best]!;
    scores[best] = scores[next]!;
    scores[next] = s;
  }
  return m;
}

/** Legal moves of a position in the order the search tries them at a node without killers. */
export function orderedMoves(pos: Position, first = 0): number[] {
  const moves = new Int32Array(MAX_MOVES);
  const scores = new Int32Array(MAX_MOVES);
  const n = pos.generateLegal(moves, 0);
  for (let i = 0; i < n; i++) scores[i] = scoreMove(pos, moves[i]!, first, 0, 0);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(pickNext(moves, scores, i, n));
  return out;
}

/** A resumable fixed-depth search of one position. */
export class AlphaBeta {
  readonly pos: Position;
  /** Nodes visited (main search and quiescence) since construction. */
  nodes = 0;
  /** Score of the finished search, for the side to move at its root. */
  score = 0;
  /** Best move at the root of the finished search; 0 if no move raised alpha (a fail low). */
  bestMove = 0;

  readonly #moves = new Int32Array(MAX_PLY * MAX_MOVES);
  readonly #scores = new Int32Array(MAX_PLY * MAX_MOVES);
  readonly #depth = new Int32Array(MAX_PLY);
  readonly #alpha = new Int32Array(MAX_PLY);
  readonly #beta = new Int32Array(MAX_PLY);
  readonly #next = new Int32Array(MAX_PLY);
  readonly #end = new Int32Array(MAX_PLY);
  readonly #current = new Int32Array(MAX_PLY);
  readonly #currentScore = new Int32Array(MAX_PLY);
  readonly #best = new Int32Array(MAX_PLY);
  readonly #killer1 = new Int32Array(MAX_PLY);
  readonly #killer2 = new Int32Array(MAX_PLY);
  #rootPly = 0;
  #rootFirst = 0;
  /** Frame of the node being searched; -1 when finished. */
  #sp = -1;
  /** A child has returned #value to frame #sp (its move is still made). */
  #returning = false;
  #value = 0;

  constructor(pos: Position) {
    this.pos = pos;
    // The evaluation's table is summed incrementally by make/unmake: evaluate() is one read.
    pos.trackSquareValues(SQUARE_VALUE);
  }

  /**
   * Prepare a search of the current position to `depth` with window (alpha, beta). `rootPly` is the
   * distance of this position from the root of the whole search (mate scores count from there);
   * `firstMove` is tried first at the root (the best move of the previous iteration).
   */
  begin(depth: number, alpha: number, beta: number, rootPly = 0, firstMove = 0): void {
    if (this.pos.ply !== 0) throw new Error('begin() needs a position with no move made');
    this.#rootPly = rootPly;
    this.#rootFirst = firstMove;
    this.bestMove = 0;
    this.#sp = 0;
    this.#returning = false;
    this.#depth[0] = depth;
    this.#alpha[0] = alpha;
    this.#beta[0] = beta;
    this.#enter(0);
  }

  /** Search up to `budget` more nodes; true when the search is finished (see score and bestMove). */
  run(budget: number): boolean {
    const pos = this.pos;
    const alpha = this.#alpha;
    const beta = this.#beta;
    const stopAt = this.nodes + budget;
    while (this.#sp >= 0) {
      let f = this.#sp;
      if (this.#returning) {
        this.#returning = false;
        pos.unmake();
        const score = -this.#value;
        if (score >= beta[f]!) {
          const m = this.#current[f]!;
          if (this.#currentScore[f]! < CAPTURE_SCORE && this.#killer1[f] !== m) {
            this.#killer2[f] = this.#killer1[f]!;
            this.#killer1[f] = m;
          }
          this.#leave(f, beta[f]!);
          continue;
        }
        if (score > alpha[f]!) {
          alpha[f] = score;
          this.#best[f] = this.#current[f]!;
        }
      }
      const next = this.#next[f]!;
      if (next >= this.#end[f]!) {
        this.#leave(f, alpha[f]!);
        continue;
      }
      if (this.nodes >= stopAt) return false;
      this.#next[f] = next + 1;
      this.#currentScore[f] = this.#scores[next]!;
      const m = pickNext(this.#moves, this.#scores, next, this.#end[f]!);
      this.#current[f] = m;
      pos.make(m);
      f++;
      this.#sp = f;
      this.#depth[f] = this.#depth[f - 1]! - 1;
      alpha[f] = -beta[f - 1]!;
      beta[f] = -alpha[f - 1]!;
      this.#enter(f);
    }
    return true;
  }

  /** Set up frame f for the position now on the board, or return its value at once. */
  #enter(f: number): void {
    this.nodes++;
    const pos = this.pos;
    const start = f * MAX_MOVES;
    this.#best[f] = 0;
    let end: number;
    if (this.#depth[f]! <= 0) {
      // Quiescence: stand pat, then captures only.
      const stand = evaluate(pos);
      if (stand >= this.#beta[f]! || f >= MAX_PLY - 2) {
        this.#leave(f, stand >= this.#beta[f]! ? this.#beta[f]! : Math.max(stand, this.#alpha[f]!));
        return;
      }
      if (stand > this.#alpha[f]!) this.#alpha[f] = stand;
      end = pos.generateLegal(this.#moves, start, true);
      this.#depth[f] = 0;
    } else {
      end = pos.generateLegal(this.#moves, start);
      if (end === start) {
        const ply = this.#rootPly + f;
        const v = pos.inCheck() ? -(MATE - ply) : 0;
        this.#leave(f, Math.min(Math.max(v, this.#alpha[f]!), this.#beta[f]!));
        return;
      }
    }
    const first = f === 0 ? this.#rootFirst : 0;
    const k1 = this.#killer1[f]!;
    const k2 = this.#killer2[f]!;
    for (let i = start; i < end; i++) this.#scores[i] = scoreMove(pos, this.#moves[i]!, first, k1, k2);
    this.#next[f] = start;
    this.#end[f] = end;
  }

  /** Frame f is done with value v: hand it to the parent, or finish the search at the root. */
  #leave(f: number, v: number): void {
    if (f === 0) {
      this.score = v;
      this.bestMove = this.#best[0]!;
      this.#sp = -1;
      return;
    }
    this.#sp = f - 1;
    this.#value = v;
    this.#returning = true;
  }

  /** Forget the killer moves (before searching an unrelated position). */
  resetKillers(): void {
    this.#killer1.fill(0);
    this.#killer2.fill(0);
  }

  /** Search to completion (no yielding). */
  searchSync(depth: number, alpha: number, beta: number, rootPly = 0, firstMove = 0): number {
    this.begin(depth, alpha, beta, rootPly, firstMove);
    while (!this.run(1 << 30));
    return this.score;
  }
}
