/**
 * The worker processes of the agents example, and the stop reports they print: spawned with
 * `node worker-main.js <url>`, each line `AGENTS-REPORT {json}` of their stdout is filed by
 * artifact id until the race asks for it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { REPORT_PREFIX } from './protocol.js';
import type { StopReport } from './protocol.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** Stop reports by artifact id, as they arrive. */
export class ReportBook {
  readonly #reports = new Map<string, StopReport>();
  readonly #waiters = new Map<string, Array<(r: StopReport) => void>>();

  /** File a report (and wake whoever waits for it). */
  add(report: StopReport): void {
    this.#reports.set(report.artifactId, report);
    for (const w of this.#waiters.get(report.artifactId) ?? []) w(report);
    this.#waiters.delete(report.artifactId);
  }

  /** The report of an artifact, once it arrives; undefined after `timeoutMs` without one. */
  waitFor(artifactId: string, timeoutMs: number): Promise<StopReport | undefined> {
    const have = this.#reports.get(artifactId);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const list = this.#waiters.get(artifactId) ?? [];
        this.#waiters.set(
          artifactId,
          list.filter((w) => w !== done),
        );
        resolve(undefined);
      }, timeoutMs);
      const done = (r: StopReport) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.#waiters.set(artifactId, [...(this.#waiters.get(artifactId) ?? []), done]);
    });
  }
}

/** Options of the agent processes. */
export interface AgentProcessOptions {
  url: string;
  /** Processes to start. */
  processes: number;
  /** Solver threads per process (default 1). */
  threads?: number;
  reports: ReportBook;
  /** Lines the processes write to stderr, and their other stdout lines. */
  log?: (line: string) => void;
}

/** A set of agent worker processes. */
export class AgentProcesses {
  readonly #children: ChildProcess[] = [];
  readonly #options: AgentProcessOptions;

  constructor(options: AgentProcessOptions) {
    this.#options = options;
  }

  /** Process ids of the workers. */
  get pids(): number[] {
    return this.#children.map((c) => c.pid ?? -1);
  }

  /** Start the processes; resolves once each has connected. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#options.processes }, () => this.#spawn()));
  }

  #spawn(): Promise<void> {
    const { url, threads = 1, reports, log } = this.#options;
    const child = spawn(process.execPath, [WORKER_MAIN, url, '--threads', String(threads)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#children.push(child);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim() !== '') log?.(`[agents worker ${child.pid}] ${line}`);
    });
    return new Promise<void>((resolve, reject) => {
      let buffered = '';
      let connected = false;
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.startsWith(REPORT_PREFIX)) reports.add(JSON.parse(line.slice(REPORT_PREFIX.length)) as StopReport);
          else if (!connected && line.includes('connected')) {
            connected = true;
            resolve();
          } else if (line.trim() !== '') log?.(`[agents worker ${child.pid}] ${line}`);
        }
      });
      child.once('exit', (code, signal) => {
        if (!connected) reject(new Error(`agents worker ${child.pid} exited (${signal ?? `code ${code}`}) before connecting`));
      });
    });
  }

  /** SIGTERM every process and wait for them to exit (SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const live = this.#children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exits = live.map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
    for (const c of live) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 5_000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
