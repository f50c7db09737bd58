/**
 * Chess vocabulary shared by the move generator, the search and the producers: colours and piece
 * codes, 0x88 squares, moves as 32-bit integers (from | to << 7 | promotion << 14 | flag << 17),
 * and their UCI names.
 */

/** Side to move and piece colours: the colour is bit 3 of a piece code. */
export const WHITE = 0;
export const BLACK = 8;

/** Piece types (low three bits of a piece code; 0 is an empty square). */
export const PAWN = 1;
export const KNIGHT = 2;
export const BISHOP = 3;
export const ROOK = 4;
export const QUEEN = 5;
export const KING = 6;

/** Move flags (bits 17-19 of a move). */
export const MoveFlag = { NORMAL: 0, DOUBLE_PUSH: 1, EN_PASSANT: 2, CASTLE: 3 } as const;
/** A move flag. */
export type MoveFlag = (typeof MoveFlag)[keyof typeof MoveFlag];

/** Deepest line the undo stack and the move buffers hold (search plus quiescence). */
export const MAX_PLY = 128;
/** Room for the moves of one position (the most known is 218). */
export const MAX_MOVES = 256;

/** Start position. */
export const START_FEN = 'rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1';

/** Build a move: from and to are 0x88 squares, promo a piece type (0 for none). */
export function encodeMove(from: number, to: number, promo = 0, flag: MoveFlag = MoveFlag.NORMAL): number {
  return from | (to << 7) | (promo << 14) | (flag << 17);
}
/** Origin square of a move. */
export const moveFrom = (m: number): number => m & 127;
/** Destination square of a move. */
export const moveTo = (m: number): number => (m >> 7) & 127;
/** Promotion piece type of a move (0 for none). */
export const movePromo = (m: number): number => (m >> 14) & 7;
/** Flag of a move. */
export const moveFlag = (m: number): number => (m >> 17) & 7;

/** Piece letters by type (index 0 is the empty square), lower case. */
export const PIECE_LETTERS = ' pnbrqk';

/** Algebraic name of a 0x88 square ("e4"). */
export function squareName(sq: number): string {
  return String.fromCharCode(97 + (sq & 7)) + String.fromCharCode(49 + (sq >> 4));
}

/** A move in UCI notation ("e2e4", "e7e8q"). */
export function moveToUci(m: number): string {
  const promo = movePromo(m);
  return squareName(moveFrom(m)) + squareName(moveTo(m)) + (promo !== 0 ? PIECE_LETTERS[promo] : '');
}
