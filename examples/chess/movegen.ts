/**
 * A chess move generator on a 0x88 board: FEN in and out, legal moves (castling, en passant,
 * promotions, checks and pins), make/unmake on an undo stack, and perft. No allocation per node:
 * the board, the undo stack and the move buffers are typed arrays, and moves are 32-bit integers
 * (move.ts).
 */
import { formatFen, parseFen } from './fen.js';
import {
  BISHOP,
  BLACK,
  KING,
  KNIGHT,
  MAX_MOVES,
  MAX_PLY,
  MoveFlag,
  PAWN,
  QUEEN,
  ROOK,
  START_FEN,
  WHITE,
  encodeMove,
  moveToUci,
} from './move.js';

export * from './move.js';

const KNIGHT_STEPS = [33, 31, 18, 14, -33, -31, -18, -14];
const KING_STEPS = [1, -1, 16, -16, 17, 15, -17, -15];
const BISHOP_STEPS = [17, 15, -17, -15];
const ROOK_STEPS = [1, -1, 16, -16];

// Castling rights: 1 white king side, 2 white queen side, 4 black king side, 8 black queen side.
// A move from or to one of these squares clears the rights that depend on it.
const CASTLE_MASK = new Uint8Array(128).fill(15);
CASTLE_MASK[0] = 15 & ~2;
CASTLE_MASK[4] = 15 & ~3;
CASTLE_MASK[7] = 15 & ~1;
CASTLE_MASK[112] = 15 & ~8;
CASTLE_MASK[116] = 15 & ~12;
CASTLE_MASK[119] = 15 & ~4;

// Unit step of the queen line from one square to another, indexed by (to - from + 119); 0 off-line.
const RAY_STEP = new Int8Array(239);
for (const d of KING_STEPS) for (let k = 1; k < 8; k++) RAY_STEP[d * k + 119] = d;

/** A position with make/unmake. One instance per search thread; it is not shared. */
export class Position {
  /** 0x88 board: piece code per square (colour | type), 0 when empty. */
  readonly board = new Int8Array(128);
  side: number = WHITE;
  /** Castling rights, 4 bits (see CASTLE_MASK). */
  castling = 0;
  /** En passant target square, or -1. */
  epSquare = -1;
  halfmoveClock = 0;
  fullmoveNumber = 1;
  /** King squares, indexed by colour >> 3. */
  readonly kingSquare = new Int32Array(2);
  /** Plies made since the position was set (the undo stack depth). */
  ply = 0;
  /**
   * Sum of a per-(piece, square) table over the board, kept up to date by make/unmake once
   * trackSquareValues() has given the table (an evaluation's material and piece-square terms).
   */
  squareScore = 0;
  #squareValues: Int32Array | undefined;

  readonly #undoCaptured = new Int8Array(MAX_PLY);
  readonly #undoCastling = new Uint8Array(MAX_PLY);
  readonly #undoEp = new Int16Array(MAX_PLY);
  readonly #undoHalfmove = new Int32Array(MAX_PLY);
  readonly #undoMove = new Int32Array(MAX_PLY);
  readonly #undoScore = new Int32Array(MAX_PLY);
  /** Move buffers for perft, MAX_MOVES per ply (allocated by the first perft). */
  #perftMoves: Int32Array | undefined;
  /** Pin direction (king outwards) per square, valid where #pinStamp equals #stamp. */
  readonly #pinStep = new Int8Array(128);
  readonly #pinStamp = new Int32Array(128);
  #stamp = 0;

  constructor(fen: string = START_FEN) {
    this.setFen(fen);
  }

  /** Set up the position of a FEN string (RangeError when it is malformed). */
  setFen(fen: string): void {
    const f = parseFen(fen);
    this.board.set(f.board);
    this.kingSquare[0] = f.kingSquares[0];
    this.kingSquare[1] = f.kingSquares[1];
    this.side = f.side;
    this.castling = f.castling;
    this.epSquare = f.epSquare;
    this.halfmoveClock = f.halfmoveClock;
    this.fullmoveNumber = f.fullmoveNumber;
    this.ply = 0;
    this.#sumSquareValues();
  }

  /** Keep `squareScore` = the sum of table[piece * 128 + square] over the pieces on the board. */
  trackSquareValues(table: Int32Array): void {
    if (table.length < 16 * 128) throw new RangeError('a square-value table has 16 * 128 entries');
    this.#squareValues = table;
    this.#sumSquareValues();
  }

  #sumSquareValues(): void {
    const t = this.#squareValues;
    let sum = 0;
    if (t !== undefined)
      for (let sq = 0; sq < 128; sq++) if ((sq & 0x88) === 0 && this.board[sq] !== 0) sum += t[this.board[sq]! * 128 + sq]!;
    this.squareScore = sum;
  }

  /** The position as a FEN string. */
  toFen(): string {
    return formatFen(this);
  }

  /** Is `sq` attacked by a piece of colour `by`? */
  isAttacked(sq: number, by: number): boolean {
    const b = this.board;
    // Pawns of `by` attack sq from one rank behind it (from their point of view).
    const pawn = by | PAWN;
    const p1 = by === WHITE ? sq - 15 : sq + 15;
    const p2 = by === WHITE ? sq - 17 : sq + 17;
    if ((p1 & 0x88) === 0 && b[p1] === pawn) return true;
    if ((p2 & 0x88) === 0 && b[p2] === pawn) return true;
    const knight = by | KNIGHT;
    for (let i = 0; i < 8; i++) {
      const s = sq + KNIGHT_STEPS[i]!;
      if ((s & 0x88) === 0 && b[s] === knight) return true;
    }
    const king = by | KING;
    for (let i = 0; i < 8; i++) {
      const s = sq + KING_STEPS[i]!;
      if ((s & 0x88) === 0 && b[s] === king) return true;
    }
    const rook = by | ROOK;
    const queen = by | QUEEN;
    for (let i = 0; i < 4; i++) {
      const d = ROOK_STEPS[i]!;
      for (let s = sq + d; (s & 0x88) === 0; s += d) {
        const p = b[s]!;
        if (p === 0) continue;
        if (p === rook || p === queen) return true;
        break;
      }
    }
    const bishop = by | BISHOP;
    for (let i = 0; i < 4; i++) {
      const d = BISHOP_STEPS[i]!;
      for (let s = sq + d; (s & 0x88) === 0; s += d) {
        const p = b[s]!;
        if (p === 0) continue;
        if (p === bishop || p === queen) return true;
        break;
      }
    }
    return false;
  }

  /** Is the side to move in check? */
  inCheck(): boolean {
    return this.isAttacked(this.kingSquare[this.side >> 3]!, this.side ^ BLACK);
  }

  /** Did the last move leave its own king attacked (so that it must be taken back)? */
  leftKingInCheck(): boolean {
    const mover = this.side ^ BLACK;
    return this.isAttacked(this.kingSquare[mover >> 3]!, this.side);
  }

  /**
   * Write the pseudo-legal moves of the side to move into `out` from `start`; returns the end index.
   * With `capturesOnly`, only captures (en passant included) and queen promotions.
   */
  generate(out: Int32Array, start: number, capturesOnly = false): number {
    const b = this.board;
    const us = this.side;
    const them = us ^ BLACK;
    let n = start;
    for (let sq = 0; sq < 128; sq++) {
      if ((sq & 0x88) !== 0) {
        sq += 7;
        continue;
      }
      const p = b[sq]!;
      if (p === 0 || (p & BLACK) !== us) continue;
      const type = p & 7;
      if (type === PAWN) {
        n = this.#pawnMoves(out, n, sq, capturesOnly);
        continue;
      }
      if (type === KNIGHT || type === KING) {
        const steps = type === KNIGHT ? KNIGHT_STEPS : KING_STEPS;
        for (let i = 0; i < 8; i++) {
          const to = sq + steps[i]!;
          if ((to & 0x88) !== 0) continue;
          const t = b[to]!;
          if (t === 0) {
            if (!capturesOnly) out[n++] = sq | (to << 7);
          } else if ((t & BLACK) === them) out[n++] = sq | (to << 7);
        }
        continue;
      }
      const steps = type === BISHOP ? BISHOP_STEPS : type === ROOK ? ROOK_STEPS : KING_STEPS;
      for (let i = 0; i < steps.length; i++) {
        const d = steps[i]!;
        for (let to = sq + d; (to & 0x88) === 0; to += d) {
          const t = b[to]!;
          if (t === 0) {
            if (!capturesOnly) out[n++] = sq | (to << 7);
            continue;
          }
          if ((t & BLACK) === them) out[n++] = sq | (to << 7);
          break;
        }
      }
    }
    if (!capturesOnly && this.castling !== 0) n = this.#castlingMoves(out, n);
    return n;
  }

  #pawnMoves(out: Int32Array, n: number, sq: number, capturesOnly: boolean): number {
    const b = this.board;
    const white = this.side === WHITE;
    const fwd = white ? 16 : -16;
    const rank = sq >> 4;
    const promoting = rank === (white ? 6 : 1);
    const to = sq + fwd;
    if (b[to] === 0) {
      if (promoting) n = addPromotions(out, n, sq, to, capturesOnly);
      else if (!capturesOnly) {
        out[n++] = sq | (to << 7);
        if (rank === (white ? 1 : 6) && b[to + fwd] === 0) out[n++] = sq | ((to + fwd) << 7) | (MoveFlag.DOUBLE_PUSH << 17);
      }
    }
    for (let side = -1; side <= 1; side += 2) {
      const c = to + side;
      if ((c & 0x88) !== 0) continue;
      const t = b[c]!;
      if (t !== 0) {
        if ((t & BLACK) !== this.side) n = promoting ? addPromotions(out, n, sq, c, capturesOnly) : ((out[n] = sq | (c << 7)), n + 1);
      } else if (c === this.epSquare) out[n++] = sq | (c << 7) | (MoveFlag.EN_PASSANT << 17);
    }
    return n;
  }

  #castlingMoves(out: Int32Array, n: number): number {
    const b = this.board;
    const white = this.side === WHITE;
    const base = white ? 0 : 112;
    const them = this.side ^ BLACK;
    const rook = this.side | ROOK;
    const kingSide = white ? 1 : 4;
    const queenSide = white ? 2 : 8;
    if (b[base + 4] !== (this.side | KING)) return n;
    // The king may not castle out of, or through, check; the landing square is tested after make.
    if ((this.castling & kingSide) !== 0 && b[base + 5] === 0 && b[base + 6] === 0 && b[base + 7] === rook) {
      if (!this.isAttacked(base + 4, them) && !this.isAttacked(base + 5, them))
        out[n++] = encodeMove(base + 4, base + 6, 0, MoveFlag.CASTLE);
    }
    if ((this.castling & queenSide) !== 0 && b[base + 3] === 0 && b[base + 2] === 0 && b[base + 1] === 0 && b[base] === rook) {
      if (!this.isAttacked(base + 4, them) && !this.isAttacked(base + 3, them))
        out[n++] = encodeMove(base + 4, base + 2, 0, MoveFlag.CASTLE);
    }
    return n;
  }

  /**
   * Write the legal moves of the side to move into `out` from `start`; returns the end index.
   * Pins are found once per position, so that most moves need no make/unmake to be proven legal:
   * only king moves, en passant and the moves of a side in check are tested one by one.
   */
  generateLegal(out: Int32Array, start: number, capturesOnly = false): number {
    const end = this.generate(out, start, capturesOnly);
    const b = this.board;
    const us = this.side;
    const them = us ^ BLACK;
    const king = this.kingSquare[us >> 3]!;
    const checked = this.isAttacked(king, them);
    const stamp = this.#markPins(king);
    const pinStamp = this.#pinStamp;
    let n = start;
    for (let i = start; i < end; i++) {
      const m = out[i]!;
      const from = m & 127;
      let legal: boolean;
      if (from === king) {
        const to = (m >> 7) & 127;
        b[from] = 0;
        legal = !this.isAttacked(to, them);
        b[from] = us | KING;
      } else if (checked || m >> 17 === MoveFlag.EN_PASSANT) {
        this.make(m);
        legal = !this.leftKingInCheck();
        this.unmake();
      } else if (pinStamp[from] === stamp) {
        const to = (m >> 7) & 127;
        legal = RAY_STEP[to - king + 119] === this.#pinStep[from];
      } else legal = true;
      if (legal) out[n++] = m;
    }
    return n;
  }

  /** Mark the pieces of the side to move pinned to their king; returns the stamp that marks them. */
  #markPins(king: number): number {
    const stamp = ++this.#stamp;
    const b = this.board;
    const us = this.side;
    for (let i = 0; i < 8; i++) {
      const d = KING_STEPS[i]!;
      const diagonal = i >= 4;
      let own = -1;
      for (let s = king + d; (s & 0x88) === 0; s += d) {
        const p = b[s]!;
        if (p === 0) continue;
        if ((p & BLACK) === us) {
          if (own >= 0) break;
          own = s;
          continue;
        }
        const t = p & 7;
        if (own >= 0 && (t === QUEEN || t === (diagonal ? BISHOP : ROOK))) {
          this.#pinStamp[own] = stamp;
          this.#pinStep[own] = d;
        }
        break;
      }
    }
    return stamp;
  }

  /** Play a pseudo-legal move. Test `leftKingInCheck()` afterwards; unmake() takes it back. */
  make(m: number): void {
    const b = this.board;
    const from = m & 127;
    const to = (m >> 7) & 127;
    const promo = (m >> 14) & 7;
    const flag = (m >> 17) & 7;
    const ply = this.ply;
    const piece = b[from]!;
    let captured = b[to]!;
    this.#undoMove[ply] = m;
    this.#undoCastling[ply] = this.castling;
    this.#undoEp[ply] = this.epSquare;
    this.#undoHalfmove[ply] = this.halfmoveClock;
    this.#undoScore[ply] = this.squareScore;
    const placed = promo !== 0 ? this.side | promo : piece;
    b[to] = placed;
    b[from] = 0;
    const t = this.#squareValues;
    let capSq = to;
    if (flag === MoveFlag.EN_PASSANT) {
      capSq = this.side === WHITE ? to - 16 : to + 16;
      captured = b[capSq]!;
      b[capSq] = 0;
    } else if (flag === MoveFlag.CASTLE) {
      const rook = this.side | ROOK;
      const rookFrom = to > from ? to + 1 : to - 2;
      const rookTo = to > from ? to - 1 : to + 1;
      b[rookTo] = rook;
      b[rookFrom] = 0;
      if (t !== undefined) this.squareScore += t[rook * 128 + rookTo]! - t[rook * 128 + rookFrom]!;
    }
    if (t !== undefined) {
      this.squareScore += t[placed * 128 + to]! - t[piece * 128 + from]!;
      if (captured !== 0) this.squareScore -= t[captured * 128 + capSq]!;
    }
    this.#undoCaptured[ply] = captured;
    if ((piece & 7) === KING) this.kingSquare[this.side >> 3] = to;
    this.epSquare = flag === MoveFlag.DOUBLE_PUSH ? (from + to) >> 1 : -1;
    this.castling &= CASTLE_MASK[from]! & CASTLE_MASK[to]!;
    this.halfmoveClock = (piece & 7) === PAWN || captured !== 0 ? 0 : this.halfmoveClock + 1;
    if (this.side === BLACK) this.fullmoveNumber++;
    this.side ^= BLACK;
    this.ply = ply + 1;
  }

  /** Take back the last move made. */
  unmake(): void {
    const b = this.board;
    const ply = --this.ply;
    const m = this.#undoMove[ply]!;
    const from = m & 127;
    const to = (m >> 7) & 127;
    const promo = (m >> 14) & 7;
    const flag = (m >> 17) & 7;
    this.side ^= BLACK;
    if (this.side === BLACK) this.fullmoveNumber--;
    const moved = b[to]!;
    b[from] = promo !== 0 ? this.side | PAWN : moved;
    const captured = this.#undoCaptured[ply]!;
    if (flag === MoveFlag.EN_PASSANT) {
      b[to] = 0;
      b[this.side === WHITE ? to - 16 : to + 16] = captured;
    } else {
      b[to] = captured;
      if (flag === MoveFlag.CASTLE) {
        if (to > from) {
          b[to + 1] = b[to - 1]!;
          b[to - 1] = 0;
        } else {
          b[to - 2] = b[to + 1]!;
          b[to + 1] = 0;
        }
      }
    }
    if ((moved & 7) === KING) this.kingSquare[this.side >> 3] = from;
    this.castling = this.#undoCastling[ply]!;
    this.epSquare = this.#undoEp[ply]!;
    this.halfmoveClock = this.#undoHalfmove[ply]!;
    this.squareScore = this.#undoScore[ply]!;
  }

  /** The piece captured by the last move made (0 if none). */
  lastCaptured(): number {
    return this.ply > 0 ? this.#undoCaptured[this.ply - 1]! : 0;
  }

  /** Legal moves of the side to move, in generation order (allocates: for the root, not the tree). */
  legalMoves(): number[] {
    const buf = new Int32Array(MAX_MOVES);
    return Array.from(buf.subarray(0, this.generateLegal(buf, 0)));
  }

  /** Find the legal move with this UCI name (undefined if none). */
  parseUci(uci: string): number | undefined {
    return this.legalMoves().find((m) => moveToUci(m) === uci);
  }

  /** Count the leaf nodes of the legal move tree to `depth` (bulk-counted at the last ply). */
  perft(depth: number): number {
    if (depth <= 0) return 1;
    return this.#perft(depth);
  }

  #perft(depth: number): number {
    const buf = (this.#perftMoves ??= new Int32Array(MAX_PLY * MAX_MOVES));
    const start = this.ply * MAX_MOVES;
    const end = this.generateLegal(buf, start);
    if (depth === 1) return end - start;
    let nodes = 0;
    for (let i = start; i < end; i++) {
      this.make(buf[i]!);
      nodes += this.#perft(depth - 1);
      this.unmake();
    }
    return nodes;
  }
}

function addPromotions(out: Int32Array, n: number, from: number, to: number, queenOnly: boolean): number {
  out[n++] = from | (to << 7) | (QUEEN << 14);
  if (queenOnly) return n;
  out[n++] = from | (to << 7) | (KNIGHT << 14);
  out[n++] = from | (to << 7) | (ROOK << 14);
  out[n++] = from | (to << 7) | (BISHOP << 14);
  return n;
}
