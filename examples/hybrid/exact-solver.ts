/**
 * The exact game-theoretic value of any 4×4 tic-tac-toe position: negamax over the whole game tree
 * with a table of every position already solved (one byte per base-3 key, 43 MB), stopping at the
 * first winning move. Values are from the side to move's point of view: 1 win, 0 draw, -1 loss.
 */
import { POW3, SQUARES, keyOf, pieces, winsAt, winner } from './board.js';

/** Solves positions and remembers every one it solved. */
export class ExactSolver {
  /** value + 2 per key (1 loss, 2 draw, 3 win); 0 = not solved yet. */
  readonly #table = new Int8Array(POW3[SQUARES]!);
  /** Positions solved (table entries written). */
  solved = 0;

  /** The value of `board` for the side to move. A finished game is a loss for it (or 0 if drawn). */
  value(board: Uint8Array): -1 | 0 | 1 {
    const w = winner(board);
    if (w !== 0) return -1; // the player who just moved made the line
    const n = pieces(board);
    if (n === SQUARES) return 0;
    const b = board.slice();
    return this.#solve(b, keyOf(b), n % 2 === 0 ? 1 : 2, n) as -1 | 0 | 1;
  }

  /** The value of each legal move for the side to move (the value of the position after it, negated). */
  moveValues(board: Uint8Array): Map<number, -1 | 0 | 1> {
    const out = new Map<number, -1 | 0 | 1>();
    if (winner(board) !== 0) return out;
    const me = pieces(board) % 2 === 0 ? 1 : 2;
    for (let sq = 0; sq < SQUARES; sq++) {
      if (board[sq] !== 0) continue;
      const b = board.slice();
      b[sq] = me;
      out.set(sq, winsAt(b, sq) ? 1 : (-this.value(b) as -1 | 0 | 1));
    }
    return out;
  }

  /** The moves that reach the best value. */
  bestMoves(board: Uint8Array): number[] {
    const values = this.moveValues(board);
    const best = Math.max(...values.values());
    return [...values].filter(([, v]) => v === best).map(([sq]) => sq);
  }

  #solve(b: Uint8Array, key: number, me: 1 | 2, n: number): number {
    const cached = this.#table[key]!;
    if (cached !== 0) return cached - 2;
    const them = me === 1 ? 2 : 1;
    let best = -1;
    for (let sq = 0; sq < SQUARES && best < 1; sq++) {
      if (b[sq] !== 0) continue;
      b[sq] = me;
      let v: number;
      if (winsAt(b, sq)) v = 1;
      else if (n + 1 === SQUARES) v = 0;
      else v = -this.#solve(b, key + me * POW3[sq]!, them, n + 1);
      b[sq] = 0;
      if (v > best) best = v;
    }
    this.#table[key] = best + 2;
    this.solved++;
    return best;
  }
}
