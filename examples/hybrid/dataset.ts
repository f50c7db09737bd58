/**
 * Training data the example makes for itself: positions reached by random play, each labelled with
 * its exact value by the solver; split into training and held-out sets by position up to symmetry
 * (no held-out position is a rotation or reflection of a training one); the training set augmented
 * with the 8 symmetric images of each position (the value does not change under them).
 */
import { SQUARES, SYMMETRIES, canonicalKey, emptySquares, isTerminal, keyOf, pieces, relative, transform } from './board.js';
import type { ExactSolver } from './exact-solver.js';
import type { Random } from '../shared/random.js';
import { randomInt } from '../shared/random.js';

/** A position and its exact value for the side to move. */
export interface Sample {
  board: Uint8Array;
  value: -1 | 0 | 1;
}

/** Network inputs per position: 16 squares of the side to move, then 16 of the opponent. */
export const INPUTS = 2 * SQUARES;

/** Write the network inputs of a relative board (0 empty, 1 own, 2 opponent) at `out[offset..]`. */
export function writeFeatures(rel: Uint8Array, out: Float32Array, offset: number): void {
  for (let i = 0; i < SQUARES; i++) {
    out[offset + i] = rel[i] === 1 ? 1 : 0;
    out[offset + SQUARES + i] = rel[i] === 2 ? 1 : 0;
  }
}

/** The inputs of many relative boards, one after the other. */
export function featuresOf(rels: readonly Uint8Array[]): Float32Array {
  const out = new Float32Array(rels.length * INPUTS);
  rels.forEach((r, i) => writeFeatures(r, out, i * INPUTS));
  return out;
}

/**
 * `count` distinct positions (up to symmetry) that are not over, with `minPieces`..`maxPieces`
 * pieces, each reached by uniformly random moves from the empty board.
 */
export function randomPositions(count: number, random: Random, minPieces: number, maxPieces: number): Uint8Array[] {
  const seen = new Set<number>();
  const out: Uint8Array[] = [];
  for (let tries = 0; out.length < count && tries < count * 50; tries++) {
    const target = minPieces + randomInt(random, maxPieces - minPieces + 1);
    const b = new Uint8Array(SQUARES);
    let over = false;
    while (pieces(b) < target && !over) {
      const e = emptySquares(b);
      b[e[randomInt(random, e.length)]!] = pieces(b) % 2 === 0 ? 1 : 2;
      over = isTerminal(b);
    }
    if (over) continue;
    const k = canonicalKey(b);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(b);
  }
  return out;
}

/** Label positions with the solver's exact values. */
export function label(solver: ExactSolver, boards: readonly Uint8Array[]): Sample[] {
  return boards.map((board) => ({ board, value: solver.value(board) }));
}

/** Split into training and held-out sets; positions are distinct up to symmetry, so nothing leaks. */
export function split(samples: readonly Sample[], heldOutFraction: number, random: Random): { train: Sample[]; heldOut: Sample[] } {
  const order = samples.map((s, i) => ({ s, r: random(), i }));
  order.sort((a, b) => a.r - b.r || a.i - b.i);
  const cut = Math.round(order.length * heldOutFraction);
  return { heldOut: order.slice(0, cut).map((o) => o.s), train: order.slice(cut).map((o) => o.s) };
}

/** Every symmetric image of every sample (each distinct image once). */
export function augment(samples: readonly Sample[]): Sample[] {
  const out: Sample[] = [];
  for (const s of samples) {
    const keys = new Set<number>();
    for (const map of SYMMETRIES) {
      const b = transform(s.board, map);
      const k = keyOf(b);
      if (keys.has(k)) continue;
      keys.add(k);
      out.push({ board: b, value: s.value });
    }
  }
  return out;
}

/** Inputs and targets of samples, for training. */
export function tensorsOf(samples: readonly Sample[]): { inputs: Float32Array; targets: Float32Array } {
  return { inputs: featuresOf(samples.map((s) => relative(s.board))), targets: Float32Array.from(samples, (s) => s.value) };
}
