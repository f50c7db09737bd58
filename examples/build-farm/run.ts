/**
 * A package build farm over ATP: the producer walks the build graph in dependency order and submits
 * each step once its inputs are built; worker processes run the compiler. Steps are
 * content-addressed (the payload embeds every input), the coordinator's store is a SQLite file in
 * the out directory, and outputs land in an immutable store keyed by digest (out/store/<digest>).
 * A second run on unchanged sources is answered by the coordinator's store at once (memoized) and
 * starts no worker at all; after `--touch src/gcd.c` only that compile, the link and the test run.
 *
 *   node dist/examples/build-farm/run.js [--touch FILE [--comment-only]] [--clean] [--workers 2]
 *     [--concurrency 2] [--out DIR] [--report FILE]
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { openStore } from '../../src/store/index.js';
import { ContentStore } from './content-store.js';
import { toolchainId } from './handlers.js';
import { EXPECTED_OUTPUT, ensureProject, readProject, touchFile } from './project.js';
import type { BuildStep, TestReport } from './steps.js';
import { BuildKind, buildGraph } from './steps.js';
import type { WorkerProcesses } from '../shared/worker-processes.js';
import { startWorkers } from '../shared/worker-processes.js';

const HANDLERS = fileURLToPath(new URL('./handlers.js', import.meta.url));
/** examples/build-farm/out/ in the source tree (this file runs from dist/examples/build-farm/). */
export const DEFAULT_OUT_DIR = fileURLToPath(new URL('../../../examples/build-farm/out/', import.meta.url));

/** Options of one run of the farm. */
export interface BuildFarmOptions {
  /** Holds work/ (the project), store/ (outputs), atp.db (the coordinator's store) and result. */
  outDir: string;
  /** Worker processes, started only if some step is not memoized (default 2). */
  workers?: number;
  /** Steps each worker runs at once (default 2: the compiler is a child process). */
  concurrency?: number;
  /** Change one file of the project before building. */
  touch?: { file: string; how: 'code' | 'comment' };
  log?: (line: string) => void;
}

/** How a step went. */
export interface StepReport {
  kind: BuildKind;
  name: string;
  artifactId: string;
  /** SHA-256 of the output (its name in the store), when built. */
  digest: string | null;
  status: 'built' | 'memoized' | 'failed' | 'skipped';
  ms: number;
  message: string;
}

/** What one run did. */
export interface BuildFarmReport {
  steps: StepReport[];
  built: number;
  memoized: number;
  failed: number;
  skipped: number;
  workersStarted: number;
  touched: string | null;
  /** What the test program printed, if the test step ran (or was memoized). */
  testOutput: string | null;
  /** out/result: a link to the program in the store. */
  program: string | null;
  ok: boolean;
  totalMs: number;
}

/** Build the project in `outDir` once. */
export async function runBuildFarm(o: BuildFarmOptions): Promise<BuildFarmReport> {
  const t0 = performance.now();
  const workDir = join(o.outDir, 'work');
  ensureProject(workDir);
  const touched = o.touch !== undefined ? touchFile(workDir, o.touch.file, o.touch.how) : null;
  const graph = buildGraph(readProject(workDir), await toolchainId(), EXPECTED_OUTPUT);
  const store = new ContentStore(join(o.outDir, 'store'));
  // A build cache: finished steps are remembered for ever (ATP_SPEC §3.11), not for the default 24 hours.
  const coordinator = new Coordinator({ store: openStore(`sqlite:${join(o.outDir, 'atp.db')}`), retainMs: Infinity });
  let workers: Promise<WorkerProcesses> | undefined;
  let client: Client | undefined;
  const reports = new Map<string, StepReport>();
  const results = new Map<string, Uint8Array>();
  try {
    const { url } = await coordinator.listen('tcp://127.0.0.1:0');
    client = await Client.connect(url);
    const c = client;
    // Workers are started the first time a step is not answered from the store: a fully memoized
    // run needs none.
    const needWorkers = () =>
      (workers ??= startWorkers(url, HANDLERS, o.workers ?? 2, { concurrency: o.concurrency ?? 2, ...(o.log ? { log: o.log } : {}) }));

    const runStep = async (step: BuildStep): Promise<void> => {
      const t = performance.now();
      const handle = await c.submit({ kind: step.kind, payload: step.payload(results) });
      const memoized = handle.duplicate && handle.acceptedState === 'COMPLETED';
      const outcome = memoized ? await handle.result() : (await Promise.all([handle.result(), needWorkers()]))[0];
      const report: StepReport = {
        kind: step.kind,
        name: step.name,
        artifactId: handle.id,
        digest: null,
        status: memoized ? 'memoized' : 'built',
        ms: performance.now() - t,
        message: '',
      };
      reports.set(step.name, report);
      if (outcome.state !== 'COMPLETED') {
        Object.assign(report, { status: 'failed', message: `${outcome.state} ${outcome.code ?? ''}: ${outcome.message}` });
        return;
      }
      const { digest } = store.put(outcome.result, step.kind === BuildKind.LINK);
      if (outcome.digest !== null && outcome.digest !== digest)
        throw new Error(`${step.name}: the result's digest does not match its bytes`);
      report.digest = digest;
      results.set(step.name, outcome.result);
    };

    // Dependency order: a step is submitted as soon as all its inputs are built, so independent
    // steps (the compiles) run at once; a failed step leaves its dependents unsubmitted.
    await new Promise<void>((resolve, reject) => {
      const started = new Set<string>();
      let active = 0;
      const pump = () => {
        for (const step of graph) {
          if (started.has(step.name) || !step.deps.every((d) => results.has(d))) continue;
          started.add(step.name);
          active++;
          runStep(step).then(() => {
            active--;
            pump();
          }, reject);
        }
        if (active === 0) resolve();
      };
      pump();
    });
  } finally {
    await client?.close();
    await (await workers?.catch(() => undefined))?.stop();
    await coordinator.close();
  }

  const steps = graph.map(
    (s): StepReport =>
      reports.get(s.name) ?? {
        kind: s.kind,
        name: s.name,
        artifactId: '',
        digest: null,
        status: 'skipped',
        ms: 0,
        message: 'an input failed',
      },
  );
  const count = (status: StepReport['status']) => steps.filter((s) => s.status === status).length;
  const testStep = graph.find((s) => s.kind === BuildKind.TEST);
  const testResult = testStep === undefined ? undefined : results.get(testStep.name);
  const linkStep = steps.find((s) => s.kind === BuildKind.LINK);
  let program: string | null = null;
  if (linkStep !== undefined && linkStep.digest !== null) {
    program = join(o.outDir, 'result');
    rmSync(program, { force: true });
    symlinkSync(relative(o.outDir, store.path(linkStep.digest)), program); // like nix-build's ./result
  }
  return {
    steps,
    built: count('built'),
    memoized: count('memoized'),
    failed: count('failed'),
    skipped: count('skipped'),
    workersStarted: workers === undefined ? 0 : (await workers).pids.length,
    touched,
    testOutput: testResult === undefined ? null : (JSON.parse(Buffer.from(testResult).toString('utf8')) as TestReport).stdout,
    program,
    ok: count('failed') + count('skipped') === 0,
    totalMs: performance.now() - t0,
  };
}

/** The table of steps: kind, name, artifact id and output digest prefixes, memoized/built, time. */
export function formatSteps(steps: readonly StepReport[]): string {
  const rows = [
    ['kind', 'step', 'artifact', 'output', 'status', 'time'],
    ...steps.map((s) => [
      s.kind,
      s.name,
      s.artifactId.slice(0, 12),
      s.digest?.slice(0, 12) ?? '-',
      s.status,
      s.status === 'skipped' ? '-' : `${s.ms.toFixed(s.ms < 10 ? 1 : 0)} ms`,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    `  ${r.map((cell, i) => (i === r.length - 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ')}`;
  const failures = steps.filter((s) => s.status === 'failed').map((s) => `  ${s.name}: ${s.message}`);
  return [line(rows[0]!), ...rows.slice(1).map(line), ...failures].join('\n');
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      touch: { type: 'string' },
      'comment-only': { type: 'boolean' },
      clean: { type: 'boolean' },
      workers: { type: 'string' },
      concurrency: { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string' },
    },
    strict: true,
  });
  const outDir = v.out ?? DEFAULT_OUT_DIR;
  if (v.clean === true) rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const int = (name: string, s: string | undefined, fallback: number) => {
    const n = s === undefined ? fallback : Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`--${name} must be an integer in [1, 64], got ${s}`);
    return n;
  };
  console.log(`ATP build farm: ${outDir}`);
  const report = await runBuildFarm({
    outDir,
    workers: int('workers', v.workers, 2),
    concurrency: int('concurrency', v.concurrency, 2),
    ...(v.touch !== undefined ? { touch: { file: v.touch, how: v['comment-only'] === true ? 'comment' : 'code' } } : {}),
    log: (line) => console.error(line),
  });
  if (report.touched !== null)
    console.log(`  touched ${report.touched}${v['comment-only'] === true ? ' (a comment only)' : ' (its revision string)'}`);
  console.log(formatSteps(report.steps));
  console.log(
    `  ${report.steps.length} steps: ${report.built} built, ${report.memoized} memoized (answered from ${join(outDir, 'atp.db')})` +
      `${report.failed + report.skipped > 0 ? `, ${report.failed} failed, ${report.skipped} skipped` : ''}; ` +
      `${report.workersStarted} worker processes started; ${(report.totalMs / 1000).toFixed(2)} s`,
  );
  console.log(`  store: ${new ContentStore(join(outDir, 'store')).size()} entries in ${join(outDir, 'store')}`);
  if (report.program !== null)
    console.log(`  program: ${report.program} -> ${report.steps.find((s) => s.kind === BuildKind.LINK)?.digest ?? ''}`);
  if (report.testOutput !== null) console.log(`  test output (as expected):\n${report.testOutput.replace(/^/gm, '    ').trimEnd()}`);
  if (v.report !== undefined) writeFileSync(v.report, JSON.stringify(report, null, 2));
  process.exit(report.ok ? 0 : 1);
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) await main();
