/**
 * One race: a root artifact names the problem; each strategy is an `agents.solve` child of it. The
 * first COMPLETED answer that verifies (the assignment satisfies every clause) wins; the producer
 * then cancels the root with its subtree, which revokes every agent still running, and collects,
 * for each loser, when its thread saw the signal and how much work it did.
 */
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { CancelSummary, Client } from '../../src/client/client.js';
import type { ArtifactHandle, ArtifactOutcome } from '../../src/client/handle.js';
import { COORDINATOR_DIAGNOSTICS } from '../../src/coordinator/coordinator.js';
import type { ReportBook } from './agent-process.js';
import { clauseCount, decodeAssignment, firstFalsified, plantedThreeSat } from './cnf.js';
import type { ProblemSpec } from './cnf.js';
import { PROBLEM_KIND, SOLVE_KIND, hostNow, stepsAt } from './protocol.js';
import type { AgentAnswer, AgentTask, ProblemRoot, StopReport } from './protocol.js';
import { STRATEGIES } from './strategies.js';
import type { Strategy } from './strategies.js';

const dec = new TextDecoder();

/** How one agent of a race went, as the producer saw it. */
export interface AgentRecord {
  strategy: Strategy;
  id: string;
  /** The artifact was leased to a worker (a STATE LEASED event arrived). */
  leased: boolean;
  /** The handler started (its first partial arrived). */
  started: boolean;
  outcome: ArtifactOutcome;
}

/** A loser and what it cost. */
export interface LoserRecord extends AgentRecord {
  /** The thread's stop report (undefined when the agent never ran or finished on its own). */
  report: StopReport | undefined;
  /** ms from the winner's solver finding the answer to this loser's thread seeing its signal. */
  signalAfterWinMs: number | undefined;
  /** ms from the producer sending CANCEL to this loser's thread seeing its signal. */
  cancelToSignalMs: number | undefined;
  /** ms from the producer sending CANCEL to the coordinator receiving this lease's REVOKE_ACK. */
  cancelToAckMs: number | undefined;
  /** Steps after the winner's answer (from the loser's work curve). */
  stepsAfterWin: number | undefined;
  /** ms the loser's handler ran in all. */
  busyMs: number | undefined;
}

/** The outcome of a race. */
export interface RaceResult {
  problem: ProblemSpec;
  clauses: number;
  rootId: string;
  rootState: string;
  winner: AgentRecord & { answer: AgentAnswer; solveMs: number };
  /** The winner's assignment checked again against every clause (an answer that fails is never taken). */
  verified: boolean;
  /** Answers that did not verify (reported, never taken). */
  rejected: AgentRecord[];
  /** When the producer had the winning result, and when it sent CANCEL (host clock). */
  resultSeenAt: number;
  cancelAt: number;
  cancel: CancelSummary;
  losers: LoserRecord[];
}

/** Options of a race. */
export interface RaceOptions {
  strategies?: readonly Strategy[];
  reports: ReportBook;
  /** REVOKE_ACK arrival times, when the coordinator runs in this process. */
  revokeAcks?: RevokeAckLog;
  /** How long to wait for a loser's stop report. Default 10 s. */
  reportTimeoutMs?: number;
}

/** When the in-process coordinator received each REVOKE_ACK, read from node:diagnostics_channel. */
export class RevokeAckLog {
  readonly #acks = new Map<string, number>();
  readonly #waiters = new Map<string, () => void>();
  readonly #onMessage = (m: unknown) => {
    const ev = m as { event?: string; leaseId?: string };
    if (ev.event !== 'revoke-ack' || typeof ev.leaseId !== 'string') return;
    this.#acks.set(ev.leaseId, hostNow());
    this.#waiters.get(ev.leaseId)?.();
  };

  constructor() {
    subscribe(COORDINATOR_DIAGNOSTICS, this.#onMessage);
  }

  /** The arrival time of a lease's REVOKE_ACK (host clock); undefined after `timeoutMs` without one. */
  async waitFor(leaseId: string, timeoutMs: number): Promise<number | undefined> {
    if (!this.#acks.has(leaseId)) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.set(leaseId, resolve);
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#waiters.delete(leaseId);
    }
    return this.#acks.get(leaseId);
  }

  /** Stop listening. */
  stop(): void {
    unsubscribe(COORDINATOR_DIAGNOSTICS, this.#onMessage);
  }
}

/** Follow one agent's events: leased, started, and its outcome. */
async function follow(strategy: Strategy, h: ArtifactHandle): Promise<AgentRecord> {
  let leased = false;
  let started = false;
  for await (const ev of h.events()) {
    if (ev.type === 'state' && ev.state === 'LEASED') leased = true;
    else if (ev.type === 'partial') started = true;
    else if (ev.type === 'result') return { strategy, id: h.id, leased, started, outcome: ev.outcome };
  }
  throw new Error(`the events of ${h.id} ended without a result`);
}

/** Race the strategies on `problem`; resolves once every loser has stopped and reported. */
export async function runRace(client: Client, problem: ProblemSpec, options: RaceOptions): Promise<RaceResult> {
  const strategies = options.strategies ?? STRATEGIES;
  const { cnf } = plantedThreeSat(problem);
  const race = randomBytes(6).toString('hex');
  const rootPayload: ProblemRoot = { race, problem, strategies: [...strategies] };
  const root = await client.submit({ kind: PROBLEM_KIND, payload: JSON.stringify(rootPayload), follow: 'none' });
  const handles = await client.submitMany(
    strategies.map((strategy, i) => {
      const task: AgentTask = { race, strategy, problem, seed: problem.seed * 7919 + i };
      return { kind: SOLVE_KIND, parentId: root.id, payload: JSON.stringify(task), follow: 'all' as const };
    }),
  );
  const records = handles.map((h, i) => follow(strategies[i]!, h));

  // The first COMPLETED answer that verifies wins; answers that do not verify are set aside.
  const rejected: AgentRecord[] = [];
  const winner = await new Promise<AgentRecord & { answer: AgentAnswer }>((resolve, reject) => {
    let settled = 0;
    for (const p of records)
      p.then((r) => {
        settled++;
        if (r.outcome.state === 'COMPLETED') {
          const answer = JSON.parse(dec.decode(r.outcome.result)) as AgentAnswer;
          const ok =
            answer.status === 'sat' && answer.assignment !== null && firstFalsified(cnf, decodeAssignment(answer.assignment)) === -1;
          if (ok) resolve({ ...r, answer });
          else rejected.push(r);
        }
        if (settled === records.length) reject(new Error(`no agent found a verified answer to ${JSON.stringify(problem)}`));
      }, reject);
  });
  const resultSeenAt = hostNow();
  const cancelAt = hostNow();
  const cancel = await client.cancel(root.id, { subtree: true, reason: `${winner.strategy} won the race` });

  const timeoutMs = options.reportTimeoutMs ?? 10_000;
  const solvedAt = winner.answer.solvedAt;
  const losers = await Promise.all(
    records.map(async (p): Promise<LoserRecord | undefined> => {
      const r = await p;
      if (r.id === winner.id) return undefined;
      // A loser that ran and was cancelled reports from its thread; one that finished on its own does not.
      const report =
        r.outcome.state === 'CANCELLED' && (r.leased || r.started) ? await options.reports.waitFor(r.id, timeoutMs) : undefined;
      const ack = report !== undefined ? await options.revokeAcks?.waitFor(report.leaseId, timeoutMs) : undefined;
      return {
        ...r,
        report,
        signalAfterWinMs: report && report.signalSeenAt - solvedAt,
        cancelToSignalMs: report && report.signalSeenAt - cancelAt,
        cancelToAckMs: ack === undefined ? undefined : ack - cancelAt,
        stepsAfterWin: report && Math.max(0, Math.round(report.steps - stepsAt(report.samples, solvedAt))),
        busyMs: report && report.stoppedAt - report.startedAt,
      };
    }),
  );
  const rootState = (await client.query(root.id)).state;
  return {
    problem,
    clauses: clauseCount(cnf),
    rootId: root.id,
    rootState,
    winner: { ...winner, solveMs: winner.answer.solvedAt - winner.answer.startedAt },
    verified: firstFalsified(cnf, decodeAssignment(winner.answer.assignment ?? '')) === -1,
    rejected,
    resultSeenAt,
    cancelAt,
    cancel,
    losers: losers.filter((l): l is LoserRecord => l !== undefined),
  };
}
