/**
 * The chess handlers, in the shape `atp worker --module` loads:
 * `export const handlers = { 'chess.perft': fn, 'chess.search': fn }`.
 *
 * Both are CPU-bound and run in slices: between slices they yield to the event loop (so that lease
 * renewals go out and a REVOKE gets in) and stop at once when ctx.signal is aborted.
 */
import type { HandlerContext, LeasedArtifact } from '../../src/worker/worker.js';
import { AlphaBeta } from './alpha-beta.js';
import { MAX_MOVES, Position } from './movegen.js';
import { iterateSubtree } from './subtree.js';
import type { SubtreeProgress, SubtreeTask } from './subtree.js';

/** Payload of a `chess.perft` artifact. */
export interface PerftTask {
  fen: string;
  depth: number;
}

/** Result of a `chess.perft` artifact. */
export interface PerftAnswer {
  nodes: number;
}

/** Result of a `chess.search` artifact, and of each partial (per completed depth, and progress). */
export interface SearchAnswer extends SubtreeProgress {
  /** Time this lease has spent on it so far. */
  elapsedMs: number;
  /** CPU time of the worker process meanwhile (the search, and the protocol around it). */
  cpuMs: number;
}

const dec = new TextDecoder();
/** A progress partial goes out every this many nodes, so that cancelled work can be counted. */
const PROGRESS_NODES = 50_000;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function stopIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/** Count the leaves of the move tree of `fen` to `depth`; yields between the first-level moves. */
export async function perftHandler(artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> {
  const task = JSON.parse(dec.decode(artifact.payload)) as PerftTask;
  const pos = new Position(task.fen);
  if (task.depth <= 1) return JSON.stringify({ nodes: pos.perft(task.depth) } satisfies PerftAnswer);
  const moves = new Int32Array(MAX_MOVES);
  const n = pos.generateLegal(moves, 0);
  let nodes = 0;
  for (let i = 0; i < n; i++) {
    pos.make(moves[i]!);
    nodes += pos.perft(task.depth - 1);
    pos.unmake();
    await yieldToLoop();
    stopIfAborted(ctx.signal);
  }
  return JSON.stringify({ nodes } satisfies PerftAnswer);
}

/**
 * Alpha-beta of one subtree with iterative deepening (subtree.ts). A partial result goes out per
 * completed depth, and every PROGRESS_NODES nodes so that cancelled work can be counted; the result
 * is the last depth's.
 */
export async function searchHandler(artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> {
  const task = JSON.parse(dec.decode(artifact.payload)) as SubtreeTask;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const answer = (p: SubtreeProgress): string => {
    const used = process.cpuUsage(cpu);
    return JSON.stringify({ ...p, elapsedMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 } satisfies SearchAnswer);
  };
  // Engines are reused across leases (their buffers are large): one per handler running at once.
  const engine = idleEngines.pop() ?? new AlphaBeta(new Position());
  try {
    engine.pos.setFen(task.fen);
    engine.resetKillers();
    const nodesBefore = engine.nodes;
    const it = iterateSubtree(engine, task);
    let last: SubtreeProgress = { depth: 0, score: task.alpha, best: '', nodes: 0 };
    let nextProgress = PROGRESS_NODES;
    for (;;) {
      const step = it.next();
      if (step.done === true) return answer(step.value);
      if (step.value !== undefined) {
        last = step.value;
        ctx.partial(answer(last));
        continue;
      }
      await yieldToLoop();
      stopIfAborted(ctx.signal);
      const nodes = engine.nodes - nodesBefore;
      if (nodes >= nextProgress) {
        nextProgress = nodes + PROGRESS_NODES;
        ctx.partial(answer({ ...last, nodes }));
      }
    }
  } finally {
    idleEngines.push(engine);
  }
}

const idleEngines: AlphaBeta[] = [];

/** The handler table (`atp worker --module dist/examples/chess/handlers.js`). */
export const handlers = {
  'chess.perft': perftHandler,
  'chess.search': searchHandler,
};
