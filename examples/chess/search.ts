/**
 * Alpha-beta search of a position split two plies down, run in one process (`searchLocal`) or over
 * ATP workers (`searchDistributed`): the same algorithm, evaluation and move order, and so the same
 * best move and score. `searchPlain` is the textbook root loop, for a cross-check.
 *
 * Both deepen iteratively at the root: depths 1..D-1 run in this process (they are cheap, and they
 * order the root moves: the previous depth's best first). Depth D is split: a root move's value is
 * the minimum over the opponent's replies of the value of the position after the reply, and the
 * search of each such position is one subtree (a `chess.search` artifact; subtree.ts).
 *
 * - The first root move is valued exactly: its first reply with the open window, then the others
 *   with the window capped at the lowest value found.
 * - Every later root move is scouted with the null window (alpha, alpha+1): the first reply that
 *   scores <= alpha refutes the move, and the siblings are useless. A move that no reply refutes is
 *   better than the best so far, and is then valued exactly.
 *
 * In one process the subtrees run one after the other and a refutation simply stops the loop. Over
 * ATP, the producer submits every reply of a scouted move as an artifact under a group artifact,
 * and scouts the next `lookahead` root moves speculatively; the coordinator's priorities run the
 * first reply of each move before the younger ones. A refutation cancels the group with its
 * subtree (client.cancel(id, { subtree: true })): the siblings, running or pending, stop.
 *
 * Why the answers agree: without transposition table or pruning heuristics a node's value depends
 * only on its position, depth and ply; a fail-hard window only bounds it. The best move is the first
 * root move (in the common order) whose value is the maximum, whichever way the values were found.
 */
import { randomUUID } from 'node:crypto';
import type { CancelSummary, Client, SubmitSpec } from '../../src/client/client.js';
import type { ArtifactOutcome } from '../../src/client/handle.js';
import { AlphaBeta, INF, MATE, orderedMoves } from './alpha-beta.js';
import type { SearchAnswer } from './handlers.js';
import { Position, moveToUci } from './movegen.js';
import { searchSubtreeSync } from './subtree.js';
import type { SubtreeTask } from './subtree.js';

/** One completed depth of the root iteration. */
export interface Iteration {
  depth: number;
  best: string;
  score: number;
  nodes: number;
  elapsedMs: number;
}

/** What a search found. */
export interface SearchReport {
  fen: string;
  depth: number;
  best: string;
  score: number;
  /** Nodes searched, all depths together (distributed: producer and workers, cancelled work included). */
  nodes: number;
  elapsedMs: number;
  /** CPU time of this process (distributed: of the producer and coordinator only). */
  cpuMs: number;
  iterations: Iteration[];
  /** Subtrees searched (distributed: submitted). */
  subtrees: number;
}

/** What the distributed search did besides finding the answer. */
export interface DistributedReport extends SearchReport {
  /** Of the subtrees submitted, those cancelled because a sibling made them useless. */
  cancelled: number;
  /** Nodes searched by workers in work that was then cancelled (from the last partial result). */
  cancelledNodes: number;
  /** Nodes searched by the workers (completed and cancelled work). */
  workerNodes: number;
  /** Time the workers spent on subtrees, summed over workers (wall clock inside the handler). */
  workerBusyMs: number;
  /** CPU time of the worker processes meanwhile. */
  workerCpuMs: number;
  /** Wall-clock time of depth D (the part on the workers). */
  splitElapsedMs: number;
  /** Nodes searched by the producer itself (depths 1..D-1). */
  producerNodes: number;
  /** Root moves refuted by a scout. */
  refuted: number;
  /** Root moves scouted again because the best score moved past the speculative window. */
  rescouts: number;
}

/** Progress of a search, as it goes. */
export type SearchEvent =
  | { type: 'iteration'; iteration: Iteration }
  | { type: 'best'; move: string; score: number; rootMove: number; rootMoves: number; elapsedMs: number }
  | { type: 'refuted'; move: string; by: string; bound: number; rootMove: number; cancelled: number }
  | { type: 'rescout'; move: string; threshold: number };

/** Scores as text: centipawns for the side to move, or "mate in N" / "mated in N" (moves). */
export function formatScore(score: number): string {
  if (Math.abs(score) >= MATE - 1000) {
    const plies = MATE - Math.abs(score);
    return `${score > 0 ? 'mate' : 'mated'} in ${Math.ceil(plies / 2)}`;
  }
  return `${score > 0 ? '+' : ''}${score} cp`;
}

/** A root move and the positions after each reply (the subtrees of depth D). */
interface RootChild {
  uci: string;
  /** Value of the root move when the position after it is mate or stalemate (no replies). */
  terminal: number | undefined;
  replies: Array<{ uci: string; fen: string }>;
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Depths 1..last with a full window on `engine`, as both searches run them. */
function iterate(
  engine: AlphaBeta,
  last: number,
  onIteration: ((it: Iteration) => void) | undefined,
): { first: number; iterations: Iteration[] } {
  const iterations: Iteration[] = [];
  let first = 0;
  for (let d = 1; d <= last; d++) {
    const before = engine.nodes;
    const t = performance.now();
    engine.searchSync(d, -INF, INF, 0, first);
    if (engine.bestMove !== 0) first = engine.bestMove;
    const it = {
      depth: d,
      best: first === 0 ? '' : moveToUci(first),
      score: engine.score,
      nodes: engine.nodes - before,
      elapsedMs: performance.now() - t,
    };
    iterations.push(it);
    onIteration?.(it);
  }
  return { first, iterations };
}

/** The root moves in the order of depth D (the previous best first), with their replies. */
function splitRoot(pos: Position, first: number): RootChild[] {
  return orderedMoves(pos, first).map((m) => {
    pos.make(m);
    const replies = orderedMoves(pos).map((r) => {
      pos.make(r);
      const fen = pos.toFen();
      pos.unmake();
      return { uci: moveToUci(r), fen };
    });
    // No reply: the root side has mated (scored from the root: MATE - 1) or stalemated.
    const terminal = replies.length > 0 ? undefined : pos.inCheck() ? MATE - 1 : 0;
    pos.unmake();
    return { uci: moveToUci(m), terminal, replies };
  });
}

/** The textbook search: iterative deepening to `depth`, a full-window alpha-beta at every depth. */
export function searchPlain(fen: string, depth: number, onIteration?: (it: Iteration) => void): SearchReport {
  const started = performance.now();
  const cpu = cpuNow();
  const engine = new AlphaBeta(new Position(fen));
  const { iterations } = iterate(engine, depth, onIteration);
  const last = iterations.at(-1);
  return {
    fen,
    depth,
    best: last?.best ?? '',
    score: last?.score ?? 0,
    nodes: engine.nodes,
    elapsedMs: performance.now() - started,
    cpuMs: cpuNow() - cpu,
    iterations,
    subtrees: 0,
  };
}

/** The split search in one process: the subtrees one after the other, in order. */
export function searchLocal(fen: string, depth: number, onEvent?: (e: SearchEvent) => void): SearchReport {
  if (!Number.isInteger(depth) || depth < 2) return searchPlain(fen, depth);
  const started = performance.now();
  const cpu = cpuNow();
  const pos = new Position(fen);
  const engine = new AlphaBeta(pos);
  const { first, iterations } = iterate(engine, depth - 1, onEvent && ((it) => onEvent({ type: 'iteration', iteration: it })));
  const t = performance.now();
  const children = splitRoot(pos, first);
  const unitEngine = new AlphaBeta(new Position());
  let subtrees = 0;
  const unit = (fen: string, alpha: number, beta: number) => {
    subtrees++;
    return searchSubtreeSync(unitEngine, { fen, depth: depth - 2, alpha, beta, ply: 2, run: '' }).score;
  };
  const refutes = (c: RootChild, threshold: number) =>
    c.terminal !== undefined ? c.terminal <= threshold : c.replies.some((r) => unit(r.fen, threshold, threshold + 1) <= threshold);
  const exact = (c: RootChild, threshold: number) => {
    if (c.terminal !== undefined) return c.terminal;
    let value = INF;
    for (const r of c.replies) value = Math.min(value, unit(r.fen, threshold, value));
    return value;
  };
  let best = -1;
  let alpha: number;
  if (children.length === 0) alpha = engine.searchSync(depth, -INF, INF);
  else {
    alpha = exact(children[0]!, -INF);
    best = 0;
    onEvent?.({
      type: 'best',
      move: children[0]!.uci,
      score: alpha,
      rootMove: 1,
      rootMoves: children.length,
      elapsedMs: performance.now() - started,
    });
    for (let i = 1; i < children.length; i++) {
      if (refutes(children[i]!, alpha)) continue;
      alpha = exact(children[i]!, alpha);
      best = i;
      onEvent?.({
        type: 'best',
        move: children[i]!.uci,
        score: alpha,
        rootMove: i + 1,
        rootMoves: children.length,
        elapsedMs: performance.now() - started,
      });
    }
  }
  const bestUci = best < 0 ? '' : children[best]!.uci;
  const nodes = engine.nodes + unitEngine.nodes;
  iterations.push({ depth, best: bestUci, score: alpha, nodes: unitEngine.nodes, elapsedMs: performance.now() - t });
  return {
    fen,
    depth,
    best: bestUci,
    score: alpha,
    nodes,
    elapsedMs: performance.now() - started,
    cpuMs: cpuNow() - cpu,
    iterations,
    subtrees,
  };
}

/** Options of a distributed search. */
export interface DistributedOptions {
  /** Root moves scouted ahead of the one being decided (default 4). */
  lookahead?: number;
  onEvent?: (event: SearchEvent) => void;
}

/** The split search of `fen` to `depth` over the workers of the coordinator `client` talks to. */
export async function searchDistributed(
  client: Client,
  fen: string,
  depth: number,
  options: DistributedOptions = {},
): Promise<DistributedReport> {
  return new DistributedSearch(client, fen, depth, options).run();
}

interface Scout {
  threshold: number;
  groupId: Promise<string>;
  /** True when a reply refuted the move (value <= threshold), false when every reply scored above. */
  refuted: Promise<boolean>;
}

const dec = new TextDecoder();
const answerOf = (bytes: Uint8Array): SearchAnswer | undefined =>
  bytes.length === 0 ? undefined : (JSON.parse(dec.decode(bytes)) as SearchAnswer);

class DistributedSearch {
  readonly #client: Client;
  readonly #fen: string;
  readonly #depth: number;
  readonly #lookahead: number;
  readonly #emit: (e: SearchEvent) => void;
  readonly #run = randomUUID();
  readonly #started = performance.now();
  readonly #outcomes: Array<Promise<unknown>> = [];
  #rootId = '';
  #groups = 0;
  #children: RootChild[] = [];
  submitted = 0;
  cancelled = 0;
  cancelledNodes = 0;
  workerNodes = 0;
  workerBusyMs = 0;
  workerCpuMs = 0;
  refuted = 0;
  rescouts = 0;

  constructor(client: Client, fen: string, depth: number, options: DistributedOptions) {
    if (!Number.isInteger(depth) || depth < 2) throw new RangeError(`the distributed search needs a depth of at least 2, got ${depth}`);
    const lookahead = options.lookahead ?? 4;
    if (!Number.isInteger(lookahead) || lookahead < 0) throw new RangeError(`lookahead must be a non-negative integer, got ${lookahead}`);
    this.#client = client;
    this.#fen = fen;
    this.#depth = depth;
    this.#lookahead = lookahead;
    this.#emit = options.onEvent ?? (() => undefined);
  }

  async run(): Promise<DistributedReport> {
    const D = this.#depth;
    const cpu = cpuNow();
    const pos = new Position(this.#fen);
    const engine = new AlphaBeta(pos);
    const { first, iterations } = iterate(engine, D - 1, (it) => this.#emit({ type: 'iteration', iteration: it }));
    const t = performance.now();
    const children = (this.#children = splitRoot(pos, first));
    let best = -1;
    let alpha: number;
    if (children.length === 0) alpha = engine.searchSync(D, -INF, INF);
    else {
      const root = await this.#client.submit({
        kind: 'chess.search.root',
        payload: JSON.stringify({ fen: this.#fen, depth: D, run: this.#run }),
        follow: 'none',
      });
      this.#rootId = root.id;
      try {
        [best, alpha] = await this.#searchRoot(iterations);
      } finally {
        // Nothing of this search is needed any more: cancel what is left of it (the group artifacts).
        await this.#client.cancel(this.#rootId, { subtree: true, reason: 'search finished' });
      }
      await Promise.all(this.#outcomes);
    }
    const producerNodes = engine.nodes;
    const bestUci = best < 0 ? '' : children[best]!.uci;
    iterations.push({ depth: D, best: bestUci, score: alpha, nodes: this.workerNodes, elapsedMs: performance.now() - t });
    return {
      fen: this.#fen,
      depth: D,
      best: bestUci,
      score: alpha,
      nodes: producerNodes + this.workerNodes,
      elapsedMs: performance.now() - this.#started,
      cpuMs: cpuNow() - cpu,
      iterations,
      subtrees: this.submitted,
      cancelled: this.cancelled,
      cancelledNodes: this.cancelledNodes,
      workerNodes: this.workerNodes,
      workerBusyMs: this.workerBusyMs,
      workerCpuMs: this.workerCpuMs,
      splitElapsedMs: performance.now() - t,
      producerNodes,
      refuted: this.refuted,
      rescouts: this.rescouts,
    };
  }

  /** Depth D over the workers; returns [index of the best root move, its score]. */
  async #searchRoot(iterations: Iteration[]): Promise<[number, number]> {
    const children = this.#children;
    const scouts = new Map<number, Scout>();
    const scoutAhead = (from: number, threshold: number) => {
      for (let k = from; k < Math.min(children.length, from + this.#lookahead + 1); k++)
        if (!scouts.has(k)) scouts.set(k, this.#scout(k, threshold));
    };
    // While the first move is valued, the next ones are scouted against a guess: the score of the
    // last depth of the same parity, less a margin (a refutation below the final alpha stands).
    const guess = (iterations.at(-2)?.score ?? iterations.at(-1)?.score ?? 0) - 25;
    scoutAhead(1, guess);
    let alpha = await this.#exact(0, -INF);
    let best = 0;
    this.#emitBest(0, alpha);
    for (let i = 1; i < children.length; i++) {
      scoutAhead(i, alpha);
      let better: boolean;
      for (;;) {
        const scout = scouts.get(i)!;
        const refuted = await scout.refuted;
        // A refutation at a threshold <= alpha stands; so does a pass at a threshold >= alpha.
        if (refuted && scout.threshold <= alpha) better = false;
        else if (!refuted && scout.threshold >= alpha) better = true;
        else {
          this.rescouts++;
          this.#emit({ type: 'rescout', move: children[i]!.uci, threshold: alpha });
          void scout.groupId.then((id) => this.#cancel(id));
          scouts.set(i, this.#scout(i, alpha));
          continue;
        }
        break;
      }
      scouts.delete(i);
      if (better) {
        alpha = await this.#exact(i, alpha);
        best = i;
        this.#emitBest(i, alpha);
      }
    }
    return [best, alpha];
  }

  #emitBest(i: number, score: number): void {
    this.#emit({
      type: 'best',
      move: this.#children[i]!.uci,
      score,
      rootMove: i + 1,
      rootMoves: this.#children.length,
      elapsedMs: performance.now() - this.#started,
    });
  }

  /**
   * Scheduling (higher runs first): exact values (the producer waits on them), then the first reply
   * of each scouted root move (it refutes the move most of the time), earlier root moves first, and
   * only then the younger replies, which a refutation usually makes useless (they are cancelled
   * while still pending). This is "young brothers wait", done by the coordinator's queue.
   */
  #priority(i: number, reply: number): number {
    return (reply === 0 ? 240 : 190) - Math.min(i, 45);
  }

  async #group(phase: string, i: number, threshold: number): Promise<string> {
    const payload = JSON.stringify({ run: this.#run, n: ++this.#groups, phase, move: this.#children[i]!.uci, threshold });
    const h = await this.#client.submit({ kind: 'chess.search.group', payload, parentId: this.#rootId, follow: 'none' });
    return h.id;
  }

  #unitSpec(fen: string, alpha: number, beta: number, parentId: string, priority: number): SubmitSpec {
    const task: SubtreeTask = { fen, depth: this.#depth - 2, alpha, beta, ply: 2, run: this.#run };
    return { kind: 'chess.search', payload: JSON.stringify(task), parentId, priority, maxAttempts: 10 };
  }

  /** Submit subtrees; each promise resolves with the answer, or undefined if it was cancelled. */
  async #submitUnits(specs: SubmitSpec[]): Promise<Array<Promise<SearchAnswer | undefined>>> {
    const handles = await this.#client.submitMany(specs);
    this.submitted += handles.length;
    return handles.map((h) => {
      const answer = h.result().then((o) => this.#account(h.id, o));
      this.#outcomes.push(answer.catch(() => undefined));
      return answer;
    });
  }

  #account(id: string, o: ArtifactOutcome): SearchAnswer | undefined {
    if (o.state === 'COMPLETED') {
      const a = answerOf(o.result)!;
      this.workerNodes += a.nodes;
      this.workerBusyMs += a.elapsedMs;
      this.workerCpuMs += a.cpuMs;
      return a;
    }
    if (o.state === 'CANCELLED') {
      // The RESULT of a cancelled artifact carries its last partial result: the work done so far.
      const last = answerOf(o.result);
      this.cancelled++;
      this.cancelledNodes += last?.nodes ?? 0;
      this.workerNodes += last?.nodes ?? 0;
      this.workerBusyMs += last?.elapsedMs ?? 0;
      this.workerCpuMs += last?.cpuMs ?? 0;
      return undefined;
    }
    throw new Error(`search subtree ${id} ended ${o.state}: ${o.code ?? ''} ${o.message}`);
  }

  #cancel(groupId: string): Promise<CancelSummary> {
    return this.#client.cancel(groupId, { subtree: true, reason: 'refuted by a sibling' });
  }

  /** Scout root move i: does every reply leave it above `threshold`? */
  #scout(i: number, threshold: number): Scout {
    const child = this.#children[i]!;
    const groupId = this.#group('scout', i, threshold);
    const refuted = (async () => {
      if (child.terminal !== undefined) return child.terminal <= threshold;
      const group = await groupId;
      const answers = await this.#submitUnits(
        child.replies.map((r, j) => this.#unitSpec(r.fen, threshold, threshold + 1, group, this.#priority(i, j))),
      );
      return new Promise<boolean>((resolve, reject) => {
        let passed = 0;
        let settled = false;
        answers.forEach((p, j) =>
          p.then((a) => {
            if (settled || a === undefined) return;
            if (a.score <= threshold) {
              settled = true;
              this.refuted++;
              resolve(true);
              this.#cancel(group).then((r) => {
                // The group itself is counted among the cancelled.
                this.#emit({
                  type: 'refuted',
                  move: child.uci,
                  by: child.replies[j]!.uci,
                  bound: threshold,
                  rootMove: i + 1,
                  cancelled: Math.max(0, r.cancelled - 1),
                });
              }, reject);
            } else if (++passed === answers.length) {
              settled = true;
              resolve(false);
            }
          }, reject),
        );
      });
    })();
    return { threshold, groupId, refuted };
  }

  /** The exact value of root move i, known to be above `threshold` (-INF for the first move). */
  async #exact(i: number, threshold: number): Promise<number> {
    const child = this.#children[i]!;
    if (child.terminal !== undefined) return child.terminal;
    const group = await this.#group('exact', i, threshold);
    const [first, ...rest] = child.replies;
    // The first reply (the likeliest best) with the open window, then the others below its score.
    const [a1] = await this.#submitUnits([this.#unitSpec(first!.fen, threshold, INF, group, 250)]);
    let value = (await a1!)!.score;
    if (rest.length > 0) {
      const answers = await this.#submitUnits(rest.map((r) => this.#unitSpec(r.fen, threshold, value, group, 250)));
      for (const a of await Promise.all(answers)) value = Math.min(value, a!.score);
    }
    return value;
  }
}
