/**
 * Worker processes: `atp worker --connect URL --module <handlers.js> --concurrency N`, one `node`
 * process per worker (that is what gives CPU parallelism), as `atp demo` starts them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Running worker processes. */
export interface WorkerProcesses {
  readonly pids: number[];
  /** SIGTERM (finish the leases held, then leave) and wait for every process to exit. */
  stop(): Promise<void>;
}

/** Start `count` workers running the handlers of `modulePath`; resolves once each has connected. */
export async function startWorkers(
  url: string,
  modulePath: string,
  count: number,
  options: { concurrency?: number; log?: (line: string) => void } = {},
): Promise<WorkerProcesses> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    const exits = children.map((c) =>
      c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())),
    );
    for (const c of children) c.kill('SIGTERM');
    const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 5_000);
    await Promise.all(exits);
    clearTimeout(timer);
  };
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [CLI_MAIN, 'worker', '--connect', url, '--module', modulePath, '--concurrency', String(options.concurrency ?? 1)],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      let out = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        for (const line of s.split('\n')) if (line.trim() !== '') options.log?.(`[worker ${child.pid}] ${line}`);
      });
      const onExit = (code: number | null, signal: string | null) =>
        reject(new Error(`worker process ${child.pid} exited (${signal ?? `code ${code}`}) before connecting: ${out.trim()}`));
      child.once('exit', onExit);
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        if (out.includes('connected')) return;
        out += s;
        if (out.includes('connected')) {
          child.off('exit', onExit);
          resolve(child.pid!);
        }
      });
    });
  try {
    const pids = await Promise.all(Array.from({ length: count }, one));
    return { pids, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
