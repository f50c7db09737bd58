/**
 * Distributed perft: the producer splits a position into subtrees (the positions after the moves of
 * the first one or two plies), submits one `chess.perft` artifact per subtree, and sums the counts.
 * Artifacts are content-addressed (the id is a digest of kind and payload), so running the same
 * perft again against the same coordinator is answered from its store without any work.
 *
 * Also a command against a running coordinator:
 *   node dist/examples/chess/perft-distributed.js --connect tcp://127.0.0.1:7000 [--depth 5] [--split 2] [--fen FEN]
 */
import { pathToFileURL } from 'node:url';
import { Client } from '../../src/client/client.js';
import type { ArtifactHandle } from '../../src/client/handle.js';
import type { PerftAnswer, PerftTask } from './handlers.js';
import { Position, START_FEN, moveToUci } from './movegen.js';

/**
 * Published perft counts of well-known positions (nodes[d - 1] is depth d), from the Chess
 * Programming Wiki "Perft Results" page, to check a run against.
 */
export const PERFT_TABLE: ReadonlyArray<{ name: string; fen: string; nodes: readonly number[] }> = [
  { name: 'start', fen: START_FEN, nodes: [20, 400, 8_902, 197_281, 4_865_609, 119_060_324] },
  // "Kiwipete" (Peter McKenzie), as published on the Chess Programming Wiki.
  {
    name: 'kiwipete',
    fen: 'r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1',
    nodes: [48, 2_039, 97_862, 4_085_603, 193_690_690],
  },
  { name: 'position3', fen: '8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1', nodes: [14, 191, 2_812, 43_238, 674_624, 11_030_083] },
  {
    name: 'position4',
    fen: 'r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1',
    nodes: [6, 264, 9_467, 422_333, 15_833_292],
  },
  {
    name: 'position5',
    fen: 'rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8',
    nodes: [44, 1_486, 62_379, 2_103_487, 89_941_194],
  },
];

/** The published count for (fen, depth), if the table has it. */
export function expectedPerft(fen: string, depth: number): number | undefined {
  const key = (f: string) => f.trim().split(/\s+/).slice(0, 4).join(' ');
  return PERFT_TABLE.find((p) => key(p.fen) === key(fen))?.nodes[depth - 1];
}

/** Options of a distributed perft. */
export interface PerftOptions {
  /** Plies played by the producer before handing subtrees out: 1 or 2 (default 1). */
  splitDepth?: number;
  /** Attempts per subtree before it fails (default 20: workers may be killed under it). */
  maxAttempts?: number;
  /** Called as each subtree's count arrives. */
  onProgress?: (done: number, subtrees: number) => void;
}

/** Count of one root move. */
export interface PerftRow {
  move: string;
  nodes: number;
}

/** What a distributed perft found. */
export interface PerftReport {
  fen: string;
  depth: number;
  rows: PerftRow[];
  total: number;
  expected: number | undefined;
  /** Artifacts submitted (one per subtree). */
  subtrees: number;
  /** Their ids, in the order of the subtrees. */
  ids: string[];
  /** Of those, already completed in the store (a rerun): answered without any work. */
  fromStore: number;
  elapsedMs: number;
}

interface Leaf {
  root: number;
  fen: string;
  depth: number;
}

/** Run a perft of `fen` to `depth` on the workers of the coordinator `client` is connected to. */
export async function perftDistributed(client: Client, fen: string, depth: number, options: PerftOptions = {}): Promise<PerftReport> {
  const started = performance.now();
  const split = Math.min(options.splitDepth ?? 1, depth);
  if (!Number.isInteger(split) || split < 0 || split > 2)
    throw new RangeError(`splitDepth must be 0, 1 or 2, got ${String(options.splitDepth)}`);
  const pos = new Position(fen);
  const rootMoves = pos.legalMoves();
  const rows: PerftRow[] = rootMoves.map((m) => ({ move: moveToUci(m), nodes: 0 }));
  const leaves: Leaf[] = [];
  if (depth === 0 || split === 0) leaves.push({ root: -1, fen, depth });
  else {
    rootMoves.forEach((m, root) => {
      pos.make(m);
      if (split === 1 || depth === 1) leaves.push({ root, fen: pos.toFen(), depth: depth - 1 });
      else for (const reply of pos.legalMoves()) leaves.push({ root, fen: afterMove(pos, reply), depth: depth - 2 });
      pos.unmake();
    });
  }
  const handles = await client.submitMany(
    leaves.map((leaf) => ({
      kind: 'chess.perft',
      payload: JSON.stringify({ fen: leaf.fen, depth: leaf.depth } satisfies PerftTask),
      maxAttempts: options.maxAttempts ?? 20,
    })),
  );
  const fromStore = handles.filter((h) => h.duplicate && h.acceptedState === 'COMPLETED').length;
  let done = 0;
  const counts = await Promise.all(
    handles.map(async (h) => {
      const n = await nodesOf(h);
      options.onProgress?.(++done, handles.length);
      return n;
    }),
  );
  let total = 0;
  leaves.forEach((leaf, i) => {
    const n = counts[i]!;
    total += n;
    const row = rows[leaf.root];
    if (row !== undefined) row.nodes += n;
  });
  return {
    fen,
    depth,
    rows,
    total,
    expected: expectedPerft(fen, depth),
    subtrees: leaves.length,
    ids: handles.map((h) => h.id),
    fromStore,
    elapsedMs: performance.now() - started,
  };
}

function afterMove(pos: Position, m: number): string {
  pos.make(m);
  const fen = pos.toFen();
  pos.unmake();
  return fen;
}

async function nodesOf(h: ArtifactHandle): Promise<number> {
  const outcome = await h.result();
  if (outcome.state !== 'COMPLETED') throw new Error(`subtree ${h.id} ended ${outcome.state} (${outcome.code ?? ''} ${outcome.message})`);
  return (JSON.parse(new TextDecoder().decode(outcome.result)) as PerftAnswer).nodes;
}

/** The report as a table: one row per root move, the total, the speed and the check. */
export function formatPerftReport(r: PerftReport): string {
  const lines: string[] = [];
  const width = Math.max(...r.rows.map((row) => row.nodes.toLocaleString('en-US').length), 5);
  for (const row of [...r.rows].sort((a, b) => (a.move < b.move ? -1 : 1)))
    lines.push(`  ${row.move.padEnd(6)} ${row.nodes.toLocaleString('en-US').padStart(width)}`);
  const seconds = r.elapsedMs / 1000;
  lines.push(`  ${'total'.padEnd(6)} ${r.total.toLocaleString('en-US').padStart(width)}`);
  if (r.fromStore === r.subtrees) lines.push(`${r.subtrees} subtrees, all answered from the store, in ${r.elapsedMs.toFixed(0)} ms`);
  else {
    const nps = Math.round(r.total / Math.max(seconds, 1e-9)).toLocaleString('en-US');
    lines.push(`${r.subtrees} subtrees (${r.fromStore} answered from the store) in ${seconds.toFixed(2)} s: ${nps} nodes/s`);
  }
  if (r.expected === undefined) lines.push('expected: not in the table');
  else
    lines.push(
      r.total === r.expected
        ? `expected ${r.expected.toLocaleString('en-US')}: OK`
        : `expected ${r.expected.toLocaleString('en-US')}: MISMATCH`,
    );
  return lines.join('\n');
}

/** Parse `--name value` flags. */
export function flagsOf(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) flags.set(a.slice(2), 'true');
    else {
      flags.set(a.slice(2), next);
      i++;
    }
  }
  return flags;
}

async function main(): Promise<void> {
  const flags = flagsOf(process.argv.slice(2));
  const url = flags.get('connect');
  if (url === undefined) throw new Error('usage: perft-distributed.js --connect URL [--fen FEN] [--depth N] [--split 1|2]');
  const fen = flags.get('fen') ?? START_FEN;
  const depth = Number(flags.get('depth') ?? 5);
  const client = await Client.connect(url);
  try {
    const report = await perftDistributed(client, fen, depth, { splitDepth: Number(flags.get('split') ?? 1) });
    console.log(`perft ${depth} of ${fen}`);
    console.log(formatPerftReport(report));
    if (report.expected !== undefined && report.total !== report.expected) process.exitCode = 1;
  } finally {
    await client.close();
  }
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) await main();
