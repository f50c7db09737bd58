/** What the agents example sends around: payloads, results, stop reports, and the host clock. */
import type { ProblemSpec } from './cnf.js';
import type { Strategy } from './strategies.js';

/** Kind of the root artifact of a race: it names the problem and is never leased (no worker has the kind). */
export const PROBLEM_KIND = 'agents.problem';
/** Kind of each agent: one strategy on the root's problem. */
export const SOLVE_KIND = 'agents.solve';
/** BroadcastChannel on which solver threads post stop reports to their process's main thread. */
export const REPORT_CHANNEL = 'atp-example-agents-report';
/** Prefix of the stdout line a worker process prints for each stop report. */
export const REPORT_PREFIX = 'AGENTS-REPORT ';

/**
 * Milliseconds since the Unix epoch with sub-millisecond resolution. Every process and thread of
 * the example runs on one host, so these readings are comparable across them (each thread's
 * timeOrigin is its own start, taken from the same clock).
 */
export function hostNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Payload of an `agents.solve` artifact. */
export interface AgentTask {
  /** A nonce per race, so that a problem raced twice is two sets of artifacts (ids come from content). */
  race: string;
  strategy: Strategy;
  problem: ProblemSpec;
  /** Seed of the strategy's own randomness (WalkSAT). */
  seed: number;
}

/** Payload of the `agents.problem` root. */
export interface ProblemRoot {
  race: string;
  problem: ProblemSpec;
  strategies: Strategy[];
}

/** Result of an `agents.solve` artifact that finished. */
export interface AgentAnswer {
  strategy: Strategy;
  status: 'sat' | 'unsat';
  /** The model as 0/1 characters, variable 0 first (status sat). */
  assignment: string | null;
  steps: number;
  startedAt: number;
  /** When the solver found its answer (host clock). */
  solvedAt: number;
  threadId: number;
}

/** What a cancelled agent reports, from its thread, once it has stopped. */
export interface StopReport {
  artifactId: string;
  leaseId: string;
  strategy: Strategy;
  /** The abort reason's code (ATP_ERR_CANCELLED for a cancel). */
  code: string;
  startedAt: number;
  /** The first poll that found ctx.signal aborted (host clock). */
  signalSeenAt: number;
  stoppedAt: number;
  /** The solver finished its search after the revoke, before its next poll; the answer was discarded. */
  finishedAnyway: boolean;
  /** Steps done in all (every one wasted: only the winner's answer is used). */
  steps: number;
  /** [host time, steps so far], every ~2 ms: the work curve, to count the steps done after the win. */
  samples: Array<[number, number]>;
  threadId: number;
  /** Set by the worker process's main thread. */
  pid?: number;
}

/** Steps done by `t` according to a work curve (linear between samples). */
export function stepsAt(samples: ReadonlyArray<readonly [number, number]>, t: number): number {
  let prev: readonly [number, number] | undefined;
  for (const s of samples) {
    if (s[0] >= t) {
      if (prev === undefined) return s[1];
      const f = s[0] === prev[0] ? 1 : (t - prev[0]) / (s[0] - prev[0]);
      return prev[1] + f * (s[1] - prev[1]);
    }
    prev = s;
  }
  return prev?.[1] ?? 0;
}
