/**
 * Alpha-beta search of a position split two plies down, run in one process (`searchLocal`) or over
 * ATP workers (`searchDistributed`): the same algorithm, evaluation and move order, and so the same
 * best move and score. `searchPlain` is the textbook root loop, for a cross-check.
 *
 * Both deepen iteratively at the root, each depth trying the previous depth's best move first. The
 * shallow depths run whole in this process (they are cheap); the last `splitDepths` depths (default
 * 2) are split: a root move's value is the minimum over the opponent's replies of the value of the
 * position after the reply, and the search of each such position to depth d-2 is one subtree (a
 * `chess.search` artifact; subtree.ts).
 *
 * - The first root move is valued exactly: its first reply with the open window, then the others
 *   with the window capped at the lowest value found.
 * - Every later root move is scouted with the null window (alpha, alpha+1): the first reply that
 *   scores <= alpha refutes the move, and the siblings are useless. A move that no reply refutes is
 *   better than the best so far, and is then valued exactly.
 *
 * In one process the subtrees run one after the other and a refutation simply stops the loop. Over
 * ATP, each scout is a group artifact under the search's root artifact; the producer submits the
 * eldest reply (the likeliest refutation) under it and, if that does not refute the move, all the
 * younger replies at once. Scouts run speculatively ahead of the move being decided (`lookahead`
 * of them unresolved at all times), against the best score known when they start. A refutation
 * cancels the group with its subtree (client.cancel(id, { subtree: true })): the siblings still
 * pending or running stop. A scout whose threshold turned out too low to prove anything is
 * cancelled and scouted again.
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
  | { type: 'best'; depth: number; move: string; score: number; rootMove: number; rootMoves: number; elapsedMs: number }
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

/** A root move and the positions after each reply (the subtrees). */
interface RootChild {
  move: number;
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

/** The root moves in the order of the next depth (the previous best first), with their replies. */
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
    return { move: m, uci: moveToUci(m), terminal, replies };
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

/** Options of the split search. */
export interface SplitOptions {
  /** The last this many depths are split (default 2); the shallower ones run whole in the producer. */
  splitDepths?: number;
  onEvent?: (event: SearchEvent) => void;
}

/** First depth that is split. */
function splitFrom(depth: number, splitDepths = 2): number {
  if (!Number.isInteger(splitDepths) || splitDepths < 1) throw new RangeError(`splitDepths must be a positive integer, got ${splitDepths}`);
  return Math.max(2, depth - splitDepths + 1);
}

/** The split search in one process: at each split depth, the subtrees one after the other, in order. */
export function searchLocal(fen: string, depth: number, options: SplitOptions = {}): SearchReport {
  const pos = new Position(fen);
  if (!Number.isInteger(depth) || depth < 2 || pos.legalMoves().length === 0) return searchPlain(fen, depth);
  const { onEvent } = options;
  const started = performance.now();
  const cpu = cpuNow();
  const engine = new AlphaBeta(pos);
  const from = splitFrom(depth, options.splitDepths);
  let { first, iterations } = iterate(engine, from - 1, onEvent && ((it) => onEvent({ type: 'iteration', iteration: it })));
  const unitEngine = new AlphaBeta(new Position());
  let subtrees = 0;
  for (let d = from; d <= depth; d++) {
    const t = performance.now();
    const nodesBefore = unitEngine.nodes;
    const unit = (fen: string, alpha: number, beta: number) => {
      subtrees++;
      return searchSubtreeSync(unitEngine, { fen, depth: d - 2, alpha, beta, ply: 2, run: '' }).score;
    };
    const refutes = (c: RootChild, threshold: number) =>
      c.terminal !== undefined ? c.terminal <= threshold : c.replies.some((r) => unit(r.fen, threshold, threshold + 1) <= threshold);
    const exact = (c: RootChild, threshold: number) => {
      if (c.terminal !== undefined) return c.terminal;
      let value = INF;
      for (const r of c.replies) value = Math.min(value, unit(r.fen, threshold, value));
      return value;
    };
    const children = splitRoot(pos, first);
    const emitBest = (i: number, score: number) =>
      onEvent?.({
        type: 'best',
        depth: d,
        move: children[i]!.uci,
        score,
        rootMove: i + 1,
        rootMoves: children.length,
        elapsedMs: performance.now() - started,
      });
    let best = 0;
    let alpha = exact(children[0]!, -INF);
    emitBest(0, alpha);
    for (let i = 1; i < children.length; i++) {
      if (refutes(children[i]!, alpha)) continue;
      alpha = exact(children[i]!, alpha);
      best = i;
      emitBest(i, alpha);
    }
    first = children[best]!.move;
    const it = {
      depth: d,
      best: children[best]!.uci,
      score: alpha,
      nodes: unitEngine.nodes - nodesBefore,
      elapsedMs: performance.now() - t,
    };
    iterations = [...iterations, it];
    onEvent?.({ type: 'iteration', iteration: it });
  }
  const last = iterations.at(-1)!;
  return {
    fen,
    depth,
    best: last.best,
    score: last.score,
    nodes: engine.nodes + unitEngine.nodes,
    elapsedMs: performance.now() - started,
    cpuMs: cpuNow() - cpu,
    iterations,
    subtrees,
  };
}

/** Options of a distributed search. */
export interface DistributedOptions extends SplitOptions {
  /** Root moves scouted ahead of the one being decided (default 4). */
  lookahead?: number;
  /**
   * Replies of a scouted move submitted first (default 1); the others follow only if none of these
   * refutes the move. 0 submits every reply at once (more speculation, more cancelled work).
   */
  eldest?: number;
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
  readonly #splitFrom: number;
  readonly #lookahead: number;
  readonly #eldest: number;
  readonly #emit: (e: SearchEvent) => void;
  readonly #run = randomUUID();
  readonly #started = performance.now();
  readonly #outcomes: Array<Promise<unknown>> = [];
  #rootId = '';
  #groups = 0;
  /** The depth being split, and its root moves. */
  #iterationDepth = 0;
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
    this.#splitFrom = splitFrom(depth, options.splitDepths);
    this.#lookahead = lookahead;
    const eldest = options.eldest ?? 1;
    if (!Number.isInteger(eldest) || eldest < 0) throw new RangeError(`eldest must be a non-negative integer, got ${eldest}`);
    this.#eldest = eldest;
    this.#emit = options.onEvent ?? (() => undefined);
  }

  async run(): Promise<DistributedReport> {
    const cpu = cpuNow();
    const pos = new Position(this.#fen);
    const engine = new AlphaBeta(pos);
    const noMoves = pos.legalMoves().length === 0;
    let { first, iterations } = iterate(engine, noMoves ? this.#depth : this.#splitFrom - 1, (it) =>
      this.#emit({ type: 'iteration', iteration: it }),
    );
    const t = performance.now();
    if (!noMoves) {
      const root = await this.#client.submit({
        kind: 'chess.search.root',
        payload: JSON.stringify({ fen: this.#fen, depth: this.#depth, run: this.#run }),
        follow: 'none',
      });
      this.#rootId = root.id;
      try {
        for (let d = this.#splitFrom; d <= this.#depth; d++) {
          const started = performance.now();
          const nodesBefore = this.workerNodes;
          this.#iterationDepth = d;
          this.#children = splitRoot(pos, first);
          const [best, score] = await this.#searchRoot(iterations);
          first = this.#children[best]!.move;
          const it = {
            depth: d,
            best: this.#children[best]!.uci,
            score,
            nodes: this.workerNodes - nodesBefore,
            elapsedMs: performance.now() - started,
          };
          iterations = [...iterations, it];
          this.#emit({ type: 'iteration', iteration: it });
        }
      } finally {
        // Nothing of this search is needed any more: cancel what is left of it (the group artifacts).
        await this.#client.cancel(this.#rootId, { subtree: true, reason: 'search finished' });
      }
      await Promise.all(this.#outcomes);
    }
    const last = iterations.at(-1)!;
    return {
      fen: this.#fen,
      depth: this.#depth,
      best: last.best,
      score: last.score,
      nodes: engine.nodes + this.workerNodes,
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
      producerNodes: engine.nodes,
      refuted: this.refuted,
      rescouts: this.rescouts,
    };
  }

  /** One split depth over the workers; returns [index of the best root move, its score]. */
  async #searchRoot(iterations: Iteration[]): Promise<[number, number]> {
    const children = this.#children;
    const scouts = new Map<number, Scout>();
    // Speculation: `lookahead` + 1 scouts are kept unresolved ahead of the move being decided;
    // as one resolves, the next root move is scouted against the best score known then.
    let threshold: number;
    let next = 1;
    let unresolved = 0;
    const fill = () => {
      while (next < children.length && unresolved <= this.#lookahead) {
        const scout = this.#scout(next++, threshold);
        unresolved++;
        const settled = () => {
          unresolved--;
          fill();
        };
        scout.refuted.then(settled, settled);
        scouts.set(next - 1, scout);
      }
    };
    // While the first move is valued, the next ones are scouted against a guess: the score of the
    // last depth of the same parity, less a margin (a refutation below the final alpha stands).
    threshold = (iterations.at(-2)?.score ?? iterations.at(-1)?.score ?? 0) - 25;
    fill();
    let alpha = await this.#exact(0, -INF);
    threshold = alpha;
    let best = 0;
    this.#emitBest(0, alpha);
    for (let i = 1; i < children.length; i++) {
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
        threshold = alpha;
        best = i;
        this.#emitBest(i, alpha);
      }
    }
    return [best, alpha];
  }

  #emitBest(i: number, score: number): void {
    this.#emit({
      type: 'best',
      depth: this.#iterationDepth,
      move: this.#children[i]!.uci,
      score,
      rootMove: i + 1,
      rootMoves: this.#children.length,
      elapsedMs: performance.now() - this.#started,
    });
  }

  /**
   * Scheduling (higher runs first): exact values (the producer waits on them), then the eldest reply
   * of each scouted root move (it refutes the move most of the time), earlier root moves first, and
   * only then the younger replies, which a refutation usually makes useless ("young brothers wait";
   * with `eldest: 0` all replies are submitted at once and this order is what keeps them waiting).
   */
  #priority(i: number, reply: number): number {
    return (reply === 0 ? 240 : 190) - Math.min(i, 45);
  }

  async #group(phase: string, i: number, threshold: number): Promise<string> {
    const payload = JSON.stringify({
      run: this.#run,
      n: ++this.#groups,
      depth: this.#iterationDepth,
      phase,
      move: this.#children[i]!.uci,
      threshold,
    });
    const h = await this.#client.submit({ kind: 'chess.search.group', payload, parentId: this.#rootId, follow: 'none' });
    return h.id;
  }

  #unitSpec(fen: string, alpha: number, beta: number, parentId: string, priority: number): SubmitSpec {
    const task: SubtreeTask = { fen, depth: this.#iterationDepth - 2, alpha, beta, ply: 2, run: this.#run };
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
      // The eldest replies first; the younger ones only once the eldest have failed to refute.
      const cut = this.#eldest === 0 ? child.replies.length : Math.min(this.#eldest, child.replies.length);
      for (const [from, to] of [
        [0, cut],
        [cut, child.replies.length],
      ] as const) {
        if (from === to) continue;
        const specs = child.replies
          .slice(from, to)
          .map((r, k) => this.#unitSpec(r.fen, threshold, threshold + 1, group, this.#priority(i, from + k)));
        const refutation = await this.#firstRefutation(await this.#submitUnits(specs), threshold);
        if (refutation === undefined) continue;
        this.refuted++;
        // Every sibling still pending or running is useless now.
        const r = await this.#cancel(group);
        const by = child.replies[from + refutation]!.uci;
        // The group itself is counted among the cancelled.
        this.#emit({ type: 'refuted', move: child.uci, by, bound: threshold, rootMove: i + 1, cancelled: Math.max(0, r.cancelled - 1) });
        return true;
      }
      return false;
    })();
    return { threshold, groupId, refuted };
  }

  /** Index of the first answer (in arrival order) at or below `threshold`, or undefined if none is. */
  #firstRefutation(answers: Array<Promise<SearchAnswer | undefined>>, threshold: number): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      let passed = 0;
      answers.forEach((p, k) =>
        p.then((a) => {
          if (a !== undefined && a.score <= threshold) resolve(k);
          else if (++passed === answers.length) resolve(undefined);
        }, reject),
      );
    });
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
