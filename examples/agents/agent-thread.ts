/**
 * The `agents.solve` handler, run in a worker thread (worker.handleInThreads): one strategy on one
 * formula. The solver is a tight synchronous loop; every ~0.1 ms of effort it reads
 * `ctx.cancelled()` (one atomic load of the flag the protocol thread sets on REVOKE), so a cancel
 * stops it within a poll.
 *
 * A cancelled lease can no longer send anything through ATP (the SDK drops partials and the result
 * of a revoked lease), so the loser's stop report — when it saw the signal, when it stopped, how
 * much work it had done — goes to the worker process's main thread on a BroadcastChannel, which
 * prints it as an `AGENTS-REPORT` line on stdout for the run script to collect (agent-process.ts).
 * Times are `performance.timeOrigin + performance.now()`: milliseconds on the host's clock, which
 * the worker processes and the producer share (they run on one machine).
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { ThreadArtifact, ThreadHandlerContext } from '../../src/worker/thread-pool.js';
import { encodeAssignment, plantedThreeSat } from './cnf.js';
import type { AgentAnswer, AgentTask, StopReport } from './protocol.js';
import { REPORT_CHANNEL, hostNow } from './protocol.js';
import { isStrategy, runStrategy } from './strategies.js';

const dec = new TextDecoder();
/** A progress sample is kept at most this often, to place the winner's time on the loser's work curve. */
const SAMPLE_MS = 2;

let reports: BroadcastChannel | undefined;

/** Solve, or stop when cancelled and report how long the stop took and the work done. */
export default function solve(artifact: ThreadArtifact, ctx: ThreadHandlerContext): string {
  const task = JSON.parse(dec.decode(artifact.payload)) as AgentTask;
  if (!isStrategy(task.strategy)) throw Object.assign(new Error(`unknown strategy ${JSON.stringify(task.strategy)}`), { retryable: false });
  const startedAt = hostNow();
  ctx.partial(JSON.stringify({ startedAt }));
  const { cnf } = plantedThreeSat(task.problem);
  const samples: Array<[number, number]> = [[startedAt, 0]];
  let signalSeenAt = 0;
  const outcome = runStrategy(task.strategy, cnf, task.seed, (steps) => {
    const t = hostNow();
    if (t - samples[samples.length - 1]![0] >= SAMPLE_MS) samples.push([t, steps]);
    if (!ctx.cancelled()) return false;
    signalSeenAt = t;
    return true;
  });
  const stoppedAt = hostNow();
  // A solver that finds its answer after the revoke but before its next poll reports too: its
  // answer is discarded like a stopped one's (the SDK sends REVOKE_ACK, not COMPLETE).
  if (outcome.status === 'stopped' || ctx.cancelled()) {
    const reason = ctx.signal.reason as { code?: string } | undefined;
    const report: StopReport = {
      artifactId: artifact.id,
      leaseId: ctx.leaseId,
      strategy: task.strategy,
      code: reason?.code ?? 'unknown',
      startedAt,
      signalSeenAt: signalSeenAt || stoppedAt,
      stoppedAt,
      finishedAnyway: outcome.status !== 'stopped',
      steps: outcome.steps,
      samples: [...samples, [stoppedAt, outcome.steps]],
      threadId,
    };
    reports ??= new BroadcastChannel(REPORT_CHANNEL);
    reports.postMessage(report);
    ctx.throwIfCancelled();
  }
  const answer: AgentAnswer = {
    strategy: task.strategy,
    status: outcome.status === 'sat' ? 'sat' : 'unsat',
    assignment: outcome.status === 'sat' ? encodeAssignment(outcome.assignment) : null,
    steps: outcome.steps,
    startedAt,
    solvedAt: stoppedAt,
    threadId,
  };
  return JSON.stringify(answer);
}
