/**
 * 4×4 tic-tac-toe: X and O take turns filling the 16 squares, X first; four in a row, column or
 * diagonal wins (10 lines). With perfect play it is a draw.
 *
 * A board is a Uint8Array(16), square r*4+c: 0 empty, 1 X, 2 O. The side to move follows from the
 * counts (X when they are equal).
 */

/** Squares on a side. */
export const SIZE = 4;
/** Squares on the board. */
export const SQUARES = SIZE * SIZE;
/** Values of a square. */
export const Cell = { EMPTY: 0, X: 1, O: 2 } as const;
/** A square's value. */
export type Cell = (typeof Cell)[keyof typeof Cell];

/** The ten winning lines, as square indices. */
export const LINES: readonly (readonly number[])[] = (() => {
  const lines: number[][] = [];
  for (let r = 0; r < SIZE; r++) lines.push([0, 1, 2, 3].map((c) => r * SIZE + c));
  for (let c = 0; c < SIZE; c++) lines.push([0, 1, 2, 3].map((r) => r * SIZE + c));
  lines.push([0, 5, 10, 15], [3, 6, 9, 12]);
  return lines;
})();

/** The lines through each square. */
export const LINES_THROUGH: readonly (readonly (readonly number[])[])[] = Array.from({ length: SQUARES }, (_, sq) =>
  LINES.filter((l) => l.includes(sq)),
);

/** 3^i for i in 0..16: a board's key is sum of cell * 3^square. */
export const POW3: readonly number[] = Array.from({ length: SQUARES + 1 }, (_, i) => 3 ** i);

/** The base-3 key of a board, in [0, 3^16). */
export function keyOf(board: Uint8Array): number {
  let k = 0;
  for (let i = SQUARES - 1; i >= 0; i--) k = k * 3 + board[i]!;
  return k;
}

/** The board of a key. */
export function boardOfKey(key: number): Uint8Array {
  const b = new Uint8Array(SQUARES);
  for (let i = 0; i < SQUARES; i++) {
    b[i] = key % 3;
    key = Math.floor(key / 3);
  }
  return b;
}

/** Pieces on the board. */
export function pieces(board: Uint8Array): number {
  let n = 0;
  for (const c of board) if (c !== 0) n++;
  return n;
}

/** Whose turn it is. */
export function sideToMove(board: Uint8Array): 1 | 2 {
  return pieces(board) % 2 === 0 ? 1 : 2;
}

/** Whether the piece on `square` completes a line. */
export function winsAt(board: Uint8Array, square: number): boolean {
  const p = board[square]!;
  if (p === 0) return false;
  for (const line of LINES_THROUGH[square]!)
    if (board[line[0]!] === p && board[line[1]!] === p && board[line[2]!] === p && board[line[3]!] === p) return true;
  return false;
}

/** The player with four in a line (1 or 2), or 0. */
export function winner(board: Uint8Array): 0 | 1 | 2 {
  for (const line of LINES) {
    const p = board[line[0]!]!;
    if (p !== 0 && board[line[1]!] === p && board[line[2]!] === p && board[line[3]!] === p) return p as 1 | 2;
  }
  return 0;
}

/** Whether the game is over (a line, or a full board). */
export function isTerminal(board: Uint8Array): boolean {
  return winner(board) !== 0 || pieces(board) === SQUARES;
}

/** The empty squares (the legal moves unless the game is over). */
export function emptySquares(board: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < SQUARES; i++) if (board[i] === 0) out.push(i);
  return out;
}

/** The board from the side to move's point of view: 0 empty, 1 its pieces, 2 the opponent's. */
export function relative(board: Uint8Array): Uint8Array {
  const me = sideToMove(board);
  return board.map((c) => (c === 0 ? 0 : c === me ? 1 : 2));
}

/** The 8 symmetries of the square, each as a map from square to square. */
export const SYMMETRIES: readonly (readonly number[])[] = (() => {
  const maps: number[][] = [];
  for (let t = 0; t < 8; t++) {
    const map: number[] = [];
    for (let sq = 0; sq < SQUARES; sq++) {
      let r = Math.floor(sq / SIZE);
      let c = sq % SIZE;
      for (let k = 0; k < (t & 3); k++) [r, c] = [c, SIZE - 1 - r]; // rotate 90°
      if (t >= 4) c = SIZE - 1 - c; // mirror
      map.push(r * SIZE + c);
    }
    maps.push(map);
  }
  return maps;
})();

/** A board under a symmetry. */
export function transform(board: Uint8Array, map: readonly number[]): Uint8Array {
  const out = new Uint8Array(SQUARES);
  for (let sq = 0; sq < SQUARES; sq++) out[map[sq]!] = board[sq]!;
  return out;
}

/** The smallest key among the 8 symmetric images: equal for boards that are the same up to symmetry. */
export function canonicalKey(board: Uint8Array): number {
  let best = Infinity;
  for (const map of SYMMETRIES) best = Math.min(best, keyOf(transform(board, map)));
  return best;
}

/** A board from 16 characters of `.`, `X`, `O` (row by row; spaces and slashes ignored). */
export function parseBoard(s: string): Uint8Array {
  const cells = s.replace(/[\s/]/g, '');
  if (cells.length !== SQUARES || /[^.XO]/.test(cells)) throw new RangeError(`a board is 16 of . X O, got ${JSON.stringify(s)}`);
  const b = Uint8Array.from(cells, (ch) => (ch === 'X' ? 1 : ch === 'O' ? 2 : 0));
  const x = b.filter((c) => c === 1).length;
  const o = b.filter((c) => c === 2).length;
  if (x !== o && x !== o + 1) throw new RangeError(`X moves first: ${x} X and ${o} O is not a position of the game`);
  return b;
}

/** The board as 16 characters, rows separated by `/`. */
export function formatBoard(board: Uint8Array): string {
  let s = '';
  for (let i = 0; i < SQUARES; i++) s += (i > 0 && i % SIZE === 0 ? '/' : '') + '.XO'[board[i]!];
  return s;
}

/** A square as "b3" style coordinates (column letter, row number from the top). */
export function squareName(sq: number): string {
  return `${'abcd'[sq % SIZE]}${Math.floor(sq / SIZE) + 1}`;
}
