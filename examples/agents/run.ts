/**
 * Speculative agents: three SAT solvers race on each of several random 3-SAT problems; the first
 * verified answer wins and the rest are cancelled. Starts a coordinator in this process and agent
 * worker processes, runs the races one after another, and prints a table.
 *
 *   node dist/examples/agents/run.js [--problems 6] [--vars 100,150,200,250,300] [--ratio 4.26]
 *                                    [--seed 1] [--processes 3] [--threads 1]
 */
import { pathToFileURL } from 'node:url';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { AgentProcesses, ReportBook } from './agent-process.js';
import type { ProblemSpec } from './cnf.js';
import { RevokeAckLog, runRace } from './race.js';
import type { RaceResult } from './race.js';
import { STEP_UNIT, STRATEGIES } from './strategies.js';
import type { Strategy } from './strategies.js';

/** Options of a run. */
export interface RunAgentsOptions {
  problems: ProblemSpec[];
  strategies?: readonly Strategy[];
  /** Worker processes (default 3: one per strategy, so that every agent runs at once). */
  processes?: number;
  /** Solver threads per process (default 1). */
  threads?: number;
  log?: (line: string) => void;
}

/** The problems of the default run: growing sizes at the threshold, 2-hidden planted. */
export function defaultProblems(count: number, sizes: readonly number[], ratio: number, seed: number): ProblemSpec[] {
  return Array.from({ length: count }, (_, i) => ({ vars: sizes[i % sizes.length]!, ratio, seed: seed + i, balanced: true }));
}

const ms = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(1));
const int = (x: number | undefined) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));

/** The table: one row per loser, the problem and its winner on the first row of each problem. */
export function formatTable(results: readonly RaceResult[]): string[] {
  const head = [
    [
      '#',
      'vars',
      'clauses',
      'seed',
      'winner',
      'solve ms',
      'ok',
      'loser',
      'state',
      'ran after win',
      'cancel→signal',
      'cancel→ack',
      'wasted steps',
      'after win',
      'busy ms',
    ],
  ];
  const rows: string[][] = [];
  results.forEach((r, i) => {
    const w = r.winner;
    const first = [
      String(i + 1),
      String(r.problem.vars),
      String(r.clauses),
      String(r.problem.seed),
      w.strategy,
      ms(w.solveMs),
      r.verified ? 'yes' : 'NO',
    ];
    const blank = first.map(() => '');
    if (r.losers.length === 0) rows.push([...first, '-', '', '', '', '', '', '', '']);
    r.losers.forEach((l, j) => {
      const state =
        l.outcome.state !== 'CANCELLED'
          ? l.outcome.state
          : l.report === undefined
            ? 'CANCELLED (never ran)'
            : l.report.finishedAnyway
              ? 'CANCELLED (finished after the signal)'
              : 'CANCELLED';
      rows.push([
        ...(j === 0 ? first : blank),
        l.strategy,
        state,
        ms(l.signalAfterWinMs),
        ms(l.cancelToSignalMs),
        ms(l.cancelToAckMs),
        l.report === undefined ? '-' : `${int(l.report.steps)} ${STEP_UNIT[l.strategy]}`,
        int(l.stepsAfterWin),
        ms(l.busyMs),
      ]);
    });
  });
  const all = [...head, ...rows];
  const widths = head[0]!.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    row.map((cell, c) => (c <= 3 || c === 5 || c >= 9 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  return [line(head[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** Summary lines: wins per strategy, losers cancelled, the median latencies. */
export function formatSummary(results: readonly RaceResult[]): string[] {
  const wins = new Map<string, number>();
  for (const r of results) wins.set(r.winner.strategy, (wins.get(r.winner.strategy) ?? 0) + 1);
  const losers = results.flatMap((r) => r.losers);
  const reported = losers.filter((l) => l.report !== undefined);
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? undefined : s[Math.floor(s.length / 2)];
  };
  return [
    `wins: ${[...wins].map(([s, n]) => `${s} ${n}`).join(', ')}`,
    `losers: ${losers.length}, cancelled ${losers.filter((l) => l.outcome.state === 'CANCELLED').length} (${reported.length} while running, each saw its signal), finished first on their own ${losers.filter((l) => l.outcome.state === 'COMPLETED').length}`,
    `median cancel→signal ${ms(median(reported.map((l) => l.cancelToSignalMs!)))} ms, median ran after the win ${ms(median(reported.map((l) => l.signalAfterWinMs!)))} ms, steps wasted after the win ${int(reported.reduce((a, l) => a + l.stepsAfterWin!, 0))}`,
  ];
}

/** Start a coordinator and the agent processes, race every problem in turn, stop everything. */
export async function runAgents(o: RunAgentsOptions): Promise<RaceResult[]> {
  const log = o.log ?? ((line: string) => console.log(line));
  const strategies = o.strategies ?? STRATEGIES;
  const coordinator = new Coordinator();
  const listener = await coordinator.listen('tcp://127.0.0.1:0');
  const reports = new ReportBook();
  const processes = new AgentProcesses({
    url: listener.url,
    processes: o.processes ?? strategies.length,
    threads: o.threads ?? 1,
    reports,
    log,
  });
  const acks = new RevokeAckLog();
  let client: Client | undefined;
  try {
    await processes.start();
    client = await Client.connect(listener.url);
    log(`coordinator ${listener.url}; agent worker processes ${processes.pids.join(', ')} (${o.threads ?? 1} solver thread each)`);
    log(`strategies: ${strategies.join(', ')}`);
    const results: RaceResult[] = [];
    for (const problem of o.problems) {
      const r = await runRace(client, problem, { strategies, reports, revokeAcks: acks });
      results.push(r);
      log(
        `race ${results.length}: ${problem.vars} vars, ${r.clauses} clauses, seed ${problem.seed}: ${r.winner.strategy} won in ${ms(r.winner.solveMs)} ms` +
          ` (verified: ${r.verified}); cancel: ${r.cancel.cancelled} cancelled, ${r.cancel.alreadyFinished} already finished, ${r.cancel.stopping} stopping; root ${r.rootState}`,
      );
    }
    return results;
  } finally {
    acks.stop();
    await client?.close();
    await processes.stop();
    await coordinator.close();
  }
}

const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? undefined : args[i + 1];
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const sizes = (flag(args, 'vars') ?? '100,150,200,250,300').split(',').map(Number);
  const problems = defaultProblems(
    Number(flag(args, 'problems') ?? 6),
    sizes,
    Number(flag(args, 'ratio') ?? 4.26),
    Number(flag(args, 'seed') ?? 1),
  );
  const results = await runAgents({
    problems,
    ...(flag(args, 'processes') !== undefined ? { processes: Number(flag(args, 'processes')) } : {}),
    ...(flag(args, 'threads') !== undefined ? { threads: Number(flag(args, 'threads')) } : {}),
  });
  console.log();
  console.log(
    'times: host clock (performance.timeOrigin + performance.now()) read in the producer and in each solver thread, all on this machine',
  );
  console.log(
    'ran after win = loser saw its signal − winner found its answer; cancel→signal = loser saw its signal − producer sent CANCEL;',
  );
  console.log(
    'cancel→ack = coordinator got REVOKE_ACK − CANCEL sent; wasted steps = all the loser did; after win = of which after the winner answered',
  );
  console.log();
  for (const line of formatTable(results)) console.log(line);
  console.log();
  for (const line of formatSummary(results)) console.log(line);
}
