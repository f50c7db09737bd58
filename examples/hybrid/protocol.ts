/**
 * What the hybrid example sends around. `hybrid.eval` payloads are positions, 16 bytes each, from
 * the side to move's point of view (0 empty, 1 own, 2 opponent); results are one float32 score per
 * position, little-endian. `hybrid.search` payloads and results are JSON.
 */
import { SQUARES } from './board.js';

/** Kind of a search: a position to choose a move in. */
export const SEARCH_KIND = 'hybrid.search';
/** Kind of a batch of positions to score with the network. */
export const EVAL_KIND = 'hybrid.eval';
/** Prefix of the stdout line an eval worker prints for each batch it served. */
export const SERVED_PREFIX = 'HYBRID-SERVED ';

/** Payload of a `hybrid.search` artifact. */
export interface SearchTask {
  /** 16 characters of . X O, rows separated by / (formatBoard). */
  board: string;
  /** Plies searched; positions at the horizon are scored by the network. */
  depth: number;
  /** Positions per `hybrid.eval` artifact. */
  batchSize: number;
}

/** Result of a `hybrid.search` artifact. */
export interface SearchAnswer {
  move: number;
  /** The move's score for the side to move (above 1: a forced win found by the search). */
  score: number;
  /** Every legal move's score, by square. */
  moveScores: Record<string, number>;
  /** Distinct positions at the horizon, scored by the network. */
  leaves: number;
  /** Game-over positions met inside the tree, scored exactly. */
  terminals: number;
  /** Ids of the `hybrid.eval` children it submitted, and how many of them the coordinator answered from its store. */
  evalIds: string[];
  memoized: number;
  nodes: number;
  elapsedMs: number;
  pid: number;
}

/** What an eval worker prints for each batch it served. */
export interface ServedRecord {
  pid: number;
  artifactId: string;
  parentId: string | null;
  positions: number;
}

/** Payload of a batch of relative boards. */
export function encodePositions(rels: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(rels.length * SQUARES);
  rels.forEach((r, i) => out.set(r, i * SQUARES));
  return out;
}

/** The boards of a batch payload; a RangeError when it is not whole boards of 0, 1, 2. */
export function decodePositions(payload: Uint8Array): Uint8Array[] {
  if (payload.length % SQUARES !== 0) throw new RangeError(`a batch is whole boards of ${SQUARES} bytes, got ${payload.length} bytes`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < payload.length; i += SQUARES) {
    const b = payload.subarray(i, i + SQUARES);
    if (b.some((c) => c > 2)) throw new RangeError(`board ${i / SQUARES} has a square that is not 0, 1 or 2`);
    out.push(b);
  }
  return out;
}

/** Scores as float32 little-endian bytes. */
export function encodeScores(scores: Float32Array): Uint8Array {
  const out = new Uint8Array(scores.length * 4);
  const view = new DataView(out.buffer);
  scores.forEach((s, i) => view.setFloat32(i * 4, s, true));
  return out;
}

/** The scores of an eval result. */
export function decodeScores(bytes: Uint8Array): Float32Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`scores are 4 bytes each, got ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}
