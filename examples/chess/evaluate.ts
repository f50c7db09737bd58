/**
 * A simple static evaluation: material plus piece-square tables (Tomasz Michniewski's "simplified
 * evaluation function"). Deterministic and history-free, so that a position always gets the same
 * score in whichever process evaluates it.
 */
import { BLACK, KING, type Position } from './movegen.js';

/** Material value per piece type (index 0 is the empty square). */
export const PIECE_VALUE = Int32Array.from([0, 100, 320, 330, 500, 900, 20000]);

// Tables from White's point of view, a8 first (rank 8 on the first row), as printed.
// prettier-ignore
const PAWN_TABLE = [
   0,  0,  0,  0,  0,  0,  0,  0,
  50, 50, 50, 50, 50, 50, 50, 50,
  10, 10, 20, 30, 30, 20, 10, 10,
   5,  5, 10, 25, 25, 10,  5,  5,
   0,  0,  0, 20, 20,  0,  0,  0,
   5, -5,-10,  0,  0,-10, -5,  5,
   5, 10, 10,-20,-20, 10, 10,  5,
   0,  0,  0,  0,  0,  0,  0,  0,
];
// prettier-ignore
const KNIGHT_TABLE = [
  -50,-40,-30,-30,-30,-30,-40,-50,
  -40,-20,  0,  0,  0,  0,-20,-40,
  -30,  0, 10, 15, 15, 10,  0,-30,
  -30,  5, 15, 20, 20, 15,  5,-30,
  -30,  0, 15, 20, 20, 15,  0,-30,
  -30,  5, 10, 15, 15, 10,  5,-30,
  -40,-20,  0,  5,  5,  0,-20,-40,
  -50,-40,-30,-30,-30,-30,-40,-50,
];
// prettier-ignore
const BISHOP_TABLE = [
  -20,-10,-10,-10,-10,-10,-10,-20,
  -10,  0,  0,  0,  0,  0,  0,-10,
  -10,  0,  5, 10, 10,  5,  0,-10,
  -10,  5,  5, 10, 10,  5,  5,-10,
  -10,  0, 10, 10, 10, 10,  0,-10,
  -10, 10, 10, 10, 10, 10, 10,-10,
  -10,  5,  0,  0,  0,  0,  5,-10,
  -20,-10,-10,-10,-10,-10,-10,-20,
];
// prettier-ignore
const ROOK_TABLE = [
   0,  0,  0,  0,  0,  0,  0,  0,
   5, 10, 10, 10, 10, 10, 10,  5,
  -5,  0,  0,  0,  0,  0,  0, -5,
  -5,  0,  0,  0,  0,  0,  0, -5,
  -5,  0,  0,  0,  0,  0,  0, -5,
  -5,  0,  0,  0,  0,  0,  0, -5,
  -5,  0,  0,  0,  0,  0,  0, -5,
   0,  0,  0,  5,  5,  0,  0,  0,
];
// prettier-ignore
const QUEEN_TABLE = [
  -20,-10,-10, -5, -5,-10,-10,-20,
  -10,  0,  0,  0,  0,  0,  0,-10,
  -10,  0,  5,  5,  5,  5,  0,-10,
   -5,  0,  5,  5,  5,  5,  0, -5,
    0,  0,  5,  5,  5,  5,  0, -5,
  -10,  5,  5,  5,  5,  5,  0,-10,
  -10,  0,  5,  0,  0,  0,  0,-10,
  -20,-10,-10, -5, -5,-10,-10,-20,
];
// prettier-ignore
const KING_TABLE = [
  -30,-40,-40,-50,-50,-40,-40,-30,
  -30,-40,-40,-50,-50,-40,-40,-30,
  -30,-40,-40,-50,-50,-40,-40,-30,
  -30,-40,-40,-50,-50,-40,-40,-30,
  -20,-30,-30,-40,-40,-30,-30,-20,
  -10,-20,-20,-20,-20,-20,-20,-10,
   20, 20,  0,  0,  0,  0, 20, 20,
   20, 30, 10,  0,  0, 10, 30, 20,
];

/**
 * Material plus table value of every piece code on every 0x88 square, from White's point of view
 * (positive for White's pieces, negative for Black's): one lookup per piece at evaluation time.
 */
export const SQUARE_VALUE = new Int32Array(16 * 128);
const TABLES = [[], PAWN_TABLE, KNIGHT_TABLE, BISHOP_TABLE, ROOK_TABLE, QUEEN_TABLE, KING_TABLE];
for (let type = 1; type <= KING; type++) {
  const table = TABLES[type]!;
  for (let sq = 0; sq < 128; sq++) {
    if ((sq & 0x88) !== 0) continue;
    const rank = sq >> 4;
    const file = sq & 7;
    SQUARE_VALUE[type * 128 + sq] = PIECE_VALUE[type]! + table[(7 - rank) * 8 + file]!;
    SQUARE_VALUE[(BLACK | type) * 128 + sq] = -(PIECE_VALUE[type]! + table[rank * 8 + file]!);
  }
}

/** Static score of the position for the side to move, in centipawns. */
export function evaluate(pos: Position): number {
  return pos.side === BLACK ? -pos.squareScore : pos.squareScore;
}

/** The same score by a scan of the board (a check of the incremental one). */
export function evaluateByScan(pos: Position): number {
  const b = pos.board;
  let score = 0;
  for (let sq = 0; sq < 120; sq++) {
    if ((sq & 0x88) !== 0) {
      sq += 7;
      continue;
    }
    const p = b[sq]!;
    if (p !== 0) score += SQUARE_VALUE[p * 128 + sq]!;
  }
  return pos.side === BLACK ? -score : score;
}
