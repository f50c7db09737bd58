/**
 * The split search of search.ts over ATP workers.
 *
 * Each scout is a group artifact under the search's root artifact; the producer submits the
 * eldest reply (the likeliest refutation) under it and, if that does not refute the move, all the
 * younger replies at once. Scouts run speculatively ahead of the move being decided (`lookahead`
 * of them unresolved at all times), against the best score known when they start. A refutation
 * cancels the group with its subtree (client.cancel(id, { subtree: true })): the siblings still
 * pending or running stop. A scout whose threshold turned out too low to prove anything is
 * cancelled and scouted again.
 *
 * Every artifact of a run sits under one root artifact (kind `chess.search.root`) in group
 * artifacts (`chess.search.group`); no worker takes those kinds: they exist to be cancelled.
 */
import { randomUUID } from 'node:crypto';
import type { CancelSummary, Client, SubmitSpec } from '../../src/client/client.js';
import type { ArtifactOutcome } from '../../src/client/handle.js';
import { AlphaBeta, INF } from './alpha-beta.js';
import type { SearchAnswer } from './handlers.js';
import { Position } from './movegen.js';
import { cpuNow, iterate, splitFrom, splitRoot } from './search.js';
import type { Iteration, RootChild, SearchEvent, SearchReport, SplitOptions } from './search.js';
import type { SubtreeTask } from './subtree.js';

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
  async #submitUnits(specs: SubmitSpec[], onPartial?: (p: SearchAnswer) => void): Promise<Array<Promise<SearchAnswer | undefined>>> {
    const handles = await this.#client.submitMany(onPartial === undefined ? specs : specs.map((s) => ({ ...s, follow: 'all' as const })));
    this.submitted += handles.length;
    return handles.map((h) => {
      const answer =
        onPartial === undefined
          ? h.result().then((o) => this.#account(h.id, o))
          : (async () => {
              // The worker's iterative deepening, live: a partial result per completed depth.
              for await (const data of h.partials()) onPartial(answerOf(data)!);
              return this.#account(h.id, await h.result());
            })();
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
    const [a1] = await this.#submitUnits([this.#unitSpec(first!.fen, threshold, INF, group, 250)], (p) => {
      if (p.best !== '') this.#emit({ type: 'partial', depth: this.#iterationDepth, move: child.uci, reply: first!.uci, answer: p });
    });
    let value = (await a1!)!.score;
    if (rest.length > 0) {
      const answers = await this.#submitUnits(rest.map((r) => this.#unitSpec(r.fen, threshold, value, group, 250)));
      for (const a of await Promise.all(answers)) value = Math.min(value, a!.score);
    }
    return value;
  }
}
