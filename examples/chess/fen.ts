/** Forsyth-Edwards Notation: a position as one line of text, read and written on the 0x88 board. */
import { BLACK, KING, PIECE_LETTERS, WHITE, squareName } from './move.js';

/** The fields of a FEN string. */
export interface FenFields {
  /** 0x88 board: piece code per square (colour | type), 0 when empty. */
  board: Int8Array;
  /** WHITE or BLACK. */
  side: number;
  /** Castling rights: 1 white king side, 2 white queen side, 4 black king side, 8 black queen side. */
  castling: number;
  /** En passant target square, or -1. */
  epSquare: number;
  halfmoveClock: number;
  fullmoveNumber: number;
}

/** Parse a FEN string (RangeError when it is malformed); the move counters may be left out. */
export function parseFen(fen: string): FenFields & { kingSquares: [number, number] } {
  const parts = fen.trim().split(/\s+/);
  const [placement, side = 'w', castling = '-', ep = '-', half = '0', full = '1'] = parts;
  if (placement === undefined || parts.length < 2)
    throw new RangeError(`FEN needs at least the placement and the side to move: ${JSON.stringify(fen)}`);
  const board = new Int8Array(128);
  const kings: [number, number] = [-1, -1];
  const ranks = placement.split('/');
  if (ranks.length !== 8) throw new RangeError(`FEN placement needs 8 ranks: ${JSON.stringify(fen)}`);
  for (let r = 0; r < 8; r++) {
    let file = 0;
    for (const ch of ranks[r]!) {
      if (ch >= '1' && ch <= '8') {
        file += Number(ch);
        continue;
      }
      const type = PIECE_LETTERS.indexOf(ch.toLowerCase());
      if (type <= 0 || file > 7) throw new RangeError(`bad FEN placement ${JSON.stringify(ranks[r])}`);
      const color = ch === ch.toLowerCase() ? BLACK : WHITE;
      const sq = (7 - r) * 16 + file;
      board[sq] = color | type;
      if (type === KING) kings[color >> 3] = sq;
      file++;
    }
    if (file !== 8) throw new RangeError(`FEN rank ${8 - r} does not have 8 files: ${JSON.stringify(ranks[r])}`);
  }
  if (kings[0] === -1 || kings[1] === -1) throw new RangeError(`FEN needs one king of each colour: ${JSON.stringify(fen)}`);
  if (side !== 'w' && side !== 'b') throw new RangeError(`FEN side to move must be w or b, got ${JSON.stringify(side)}`);
  let rights = 0;
  if (castling !== '-') {
    for (const ch of castling) {
      const bit = 'KQkq'.indexOf(ch);
      if (bit < 0) throw new RangeError(`bad FEN castling field ${JSON.stringify(castling)}`);
      rights |= 1 << bit;
    }
  }
  if (ep !== '-' && !/^[a-h][36]$/.test(ep)) throw new RangeError(`bad FEN en passant square ${JSON.stringify(ep)}`);
  return {
    board,
    kingSquares: kings,
    side: side === 'w' ? WHITE : BLACK,
    castling: rights,
    epSquare: ep === '-' ? -1 : (ep.charCodeAt(1) - 49) * 16 + (ep.charCodeAt(0) - 97),
    halfmoveClock: Number.parseInt(half, 10) || 0,
    fullmoveNumber: Number.parseInt(full, 10) || 1,
  };
}

/** Write a position as a FEN string (the en passant square after every double push). */
export function formatFen(p: Readonly<FenFields>): string {
  const rows: string[] = [];
  for (let rank = 7; rank >= 0; rank--) {
    let row = '';
    let empty = 0;
    for (let file = 0; file < 8; file++) {
      const piece = p.board[rank * 16 + file]!;
      if (piece === 0) {
        empty++;
        continue;
      }
      if (empty > 0) row += String(empty);
      empty = 0;
      const letter = PIECE_LETTERS[piece & 7]!;
      row += (piece & BLACK) !== 0 ? letter : letter.toUpperCase();
    }
    rows.push(empty > 0 ? row + String(empty) : row);
  }
  let castling = '';
  for (let bit = 0; bit < 4; bit++) if ((p.castling & (1 << bit)) !== 0) castling += 'KQkq'[bit];
  const ep = p.epSquare < 0 ? '-' : squareName(p.epSquare);
  return `${rows.join('/')} ${p.side === WHITE ? 'w' : 'b'} ${castling || '-'} ${ep} ${p.halfmoveClock} ${p.fullmoveNumber}`;
}
