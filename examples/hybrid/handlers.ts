/**
 * The two kinds of worker of the hybrid example.
 *
 * - `hybrid.eval` runs the network on a batch of positions and returns their scores.
 * - `hybrid.search` runs the search; for the positions at its horizon it submits `hybrid.eval`
 *   artifacts as children of its own artifact (parentId) and waits for their results. It submits
 *   through a Client of its own, connected to the same coordinator: the worker SDK's connection
 *   can carry the producer role, but submitting and following results is the Client's job.
 *   Cancelling a search with its subtree cancels its batches too.
 */
import type { Client } from '../../src/client/client.js';
import type { HandlerContext, LeasedArtifact } from '../../src/worker/worker.js';
import { parseBoard } from './board.js';
import { featuresOf } from './dataset.js';
import type { Mlp } from './mlp.js';
import { EVAL_KIND, decodePositions, decodeScores, encodePositions, encodeScores } from './protocol.js';
import type { SearchAnswer, SearchTask } from './protocol.js';
import { hybridSearch } from './search.js';
import type { BatchEvaluator } from './search.js';

const dec = new TextDecoder();

/** Scores of relative boards by a model in this process. */
export function scoreBoards(model: Mlp, rels: readonly Uint8Array[]): Float32Array {
  return model.forward(featuresOf(rels), rels.length);
}

/** A batch evaluator that runs the model in this process. */
export function localEvaluator(model: Mlp): BatchEvaluator {
  return (rels) => Promise.resolve(scoreBoards(model, rels));
}

/** The `hybrid.eval` handler serving `model`; `onServed` is told of each batch. */
export function evalHandler(model: Mlp, onServed?: (artifact: LeasedArtifact, positions: number) => void) {
  return (artifact: LeasedArtifact, _ctx: HandlerContext): Promise<Uint8Array> => {
    const rels = decodePositions(artifact.payload);
    const scores = encodeScores(scoreBoards(model, rels));
    onServed?.(artifact, rels.length);
    return Promise.resolve(scores);
  };
}

/** What a remote evaluator did. */
export interface RemoteEvalLog {
  ids: string[];
  /** Batches the coordinator answered from its store (a batch with the same positions was served before). */
  memoized: number;
}

/** A batch evaluator that submits each batch as a `hybrid.eval` child of `parentId` and awaits its result. */
export function remoteEvaluator(client: Client, parentId: string, log: RemoteEvalLog): BatchEvaluator {
  return async (rels) => {
    const h = await client.submit({ kind: EVAL_KIND, payload: encodePositions(rels), parentId });
    log.ids.push(h.id);
    if (h.duplicate) log.memoized++;
    const out = await h.result();
    if (out.state !== 'COMPLETED') throw new Error(`eval batch ${h.id} ended ${out.state}: ${out.message}`);
    return decodeScores(out.result);
  };
}

/** The `hybrid.search` handler; it submits its batches through `client`. */
export function searchHandler(client: Client) {
  return async (artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> => {
    const started = performance.now();
    const task = JSON.parse(dec.decode(artifact.payload)) as SearchTask;
    const log: RemoteEvalLog = { ids: [], memoized: 0 };
    const r = await hybridSearch(parseBoard(task.board), remoteEvaluator(client, artifact.id, log), {
      depth: task.depth,
      batchSize: task.batchSize,
      signal: ctx.signal,
      onBatch: (done, total) => ctx.partial(JSON.stringify({ batches: done, of: total })),
    });
    const answer: SearchAnswer = {
      move: r.move,
      score: r.score,
      moveScores: Object.fromEntries([...r.moveScores].map(([sq, v]) => [String(sq), v])),
      leaves: r.leaves,
      terminals: r.terminals,
      evalIds: log.ids,
      memoized: log.memoized,
      nodes: r.nodes,
      elapsedMs: performance.now() - started,
      pid: process.pid,
    };
    return JSON.stringify(answer);
  };
}
