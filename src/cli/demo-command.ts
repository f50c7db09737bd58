/**
 * `atp demo`: the main job in one command — a coordinator with its embedded default store
 * (SQLite), three worker processes, and a producer that shows submit, streamed partial results,
 * a subtree cancel, a worker killed with SIGKILL, and memoized resubmission.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Client } from '../client/client.js';
import type { ArtifactHandle } from '../client/handle.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { openStore } from '../store/index.js';
import { fatal, intFlag } from './options.js';

const dec = new TextDecoder();
const say = (s = '') => process.stdout.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startWorker(url: string): ChildProcess {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const handlers = fileURLToPath(new URL('./demo-handlers.js', import.meta.url));
  const child = spawn(process.execPath, [main, 'worker', '--connect', url, '--module', handlers, '--concurrency', '2'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout?.on('data', (b: Buffer) => process.stdout.write(`    ${b.toString().trimEnd().replace(/\n/g, '\n    ')}\n`));
  return child;
}

async function waitForWorkers(c: Coordinator, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let workers = 0;
    for (const s of c.sessions.values()) if ((s.roles & 1) !== 0 && s.connected) workers++;
    if (workers >= n) return;
    await sleep(50);
  }
  throw new Error(`only some of ${n} workers connected`);
}

/** Register the command. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a coordinator, three workers and a producer, and narrate what happens')
    .option('--size <n>', 'numbers per range (bigger = longer handlers)', intFlag('--size', 1000, 100_000_000), 300_000)
    .option('--keep', 'keep the database directory')
    .action(async (flags: { size: number; keep?: boolean }) => {
      const dir = mkdtempSync(join(tmpdir(), 'atp-demo-'));
      const workers: ChildProcess[] = [];
      try {
        const store = openStore(`sqlite:${join(dir, 'atp.db')}`);
        const coordinator = new Coordinator({ store, resumeWindowMs: 500, leaseTtlMs: 5000, heartbeatMs: 1000 });
        const listener = await coordinator.listen('tcp://127.0.0.1:0');
        say(`ATP demo`);
        say(`  coordinator on ${listener.url}, store ${store.name} at ${join(dir, 'atp.db')}`);
        for (let i = 0; i < 3; i++) workers.push(startWorker(listener.url));
        await waitForWorkers(coordinator, 3);
        const client = await Client.connect(listener.url);

        say();
        say(`[1] 12 artifacts of kind primes.count, each counting the primes in ${flags.size.toLocaleString('en')} numbers.`);
        say(`    Workers stream progress as partial results and store checkpoints; results print as they arrive.`);
        const t0 = performance.now();
        const specs = Array.from({ length: 12 }, (_, i) => ({
          kind: 'primes.count',
          payload: JSON.stringify({ from: i * flags.size, to: (i + 1) * flags.size }),
          follow: 'all' as const,
        }));
        const handles = await client.submitMany(specs);
        let partials = 0;
        let total = 0;
        await Promise.all(
          handles.map(async (h, i) => {
            for await (const ev of h.events()) {
              if (ev.type === 'partial') partials++;
              if (ev.type === 'result') {
                const r = JSON.parse(dec.decode(ev.outcome.result)) as { primes: number; pid: number };
                total += r.primes;
                say(
                  `    #${String(i + 1).padStart(2)} ${h.id.slice(0, 12)}… ${ev.outcome.state}: ${r.primes} primes (worker pid ${r.pid})`,
                );
              }
            }
          }),
        );
        say(
          `    ${total.toLocaleString('en')} primes below ${(12 * flags.size).toLocaleString('en')}; ${partials} partial results streamed; ${((performance.now() - t0) / 1000).toFixed(2)} s`,
        );

        say();
        say(`[2] Subtree cancel: a root artifact with 20 children; cancel the root with its subtree while children run.`);
        const root = await client.submit({ kind: 'primes.count', payload: JSON.stringify({ from: 0, to: 10 }), follow: 'none' });
        const kids = await client.submitMany(
          Array.from({ length: 20 }, (_, i) => ({
            kind: 'primes.count',
            parentId: root.id,
            payload: JSON.stringify({ from: 3e9 + i * flags.size * 20, to: 3e9 + (i + 1) * flags.size * 20 }),
          })),
        );
        await sleep(300);
        const summary = await client.cancel(root.id, { subtree: true, reason: 'the demo cancels the whole tree' });
        say(
          `    CANCEL answered: cancelled ${summary.cancelled}, already finished ${summary.alreadyFinished}, stopping (revoked while running) ${summary.stopping}`,
        );
        const states = await Promise.all(kids.map((k: ArtifactHandle) => k.result().then((o) => o.state)));
        say(`    children now: ${states.filter((s) => s === 'CANCELLED').length} CANCELLED of ${states.length}`);
        const late = await client.submit({ kind: 'primes.count', parentId: root.id, payload: JSON.stringify({ from: 0, to: 100 }) });
        say(`    a child submitted after the cancel is born ${late.acceptedState}`);

        say();
        say(`[3] Kill -9 a worker that holds leases: its leases return after the resume window (500 ms) and run elsewhere.`);
        const big = await client.submitMany(
          Array.from({ length: 6 }, (_, i) => ({
            kind: 'primes.count',
            follow: 'all' as const,
            payload: JSON.stringify({ from: 1e9 + i * flags.size, to: 1e9 + (i + 1) * flags.size }),
          })),
        );
        // Kill once every artifact has streamed progress (and stored a checkpoint).
        let progressed = 0;
        const allProgressed = new Promise<void>((resolve) => {
          for (const h of big)
            void (async () => {
              for await (const ev of h.events())
                if (ev.type === 'partial') {
                  if (++progressed === big.length) resolve();
                  return;
                }
            })();
        });
        await allProgressed;
        const victim = workers[0]!;
        say(`    every artifact has reported progress; killing worker pid ${victim.pid} with SIGKILL`);
        victim.kill('SIGKILL');
        const results = await Promise.all(big.map((h) => h.result()));
        const pids = new Set(results.map((r) => (JSON.parse(dec.decode(r.result)) as { pid: number }).pid));
        const resumed = results.filter((r) => (JSON.parse(dec.decode(r.result)) as { resumedAt: number | null }).resumedAt !== null).length;
        say(
          `    all ${results.filter((r) => r.state === 'COMPLETED').length} of ${results.length} completed, by workers ${[...pids].join(', ')}; ${resumed} resumed from a checkpoint`,
        );
        const byVictim = results.filter((r) => (JSON.parse(dec.decode(r.result)) as { pid: number }).pid === victim.pid).length;
        say(`    ${byVictim} result(s) came from the killed worker (accepted before it died); the rest ran on the survivors`);

        say();
        say(`[4] Resubmit an artifact that already completed: answered at once from the store.`);
        const t1 = performance.now();
        const again = await client.submit({ kind: 'primes.count', payload: specs[0]!.payload });
        const memo = await again.result();
        say(
          `    duplicate=${again.duplicate}, state ${memo.state}, result ${dec.decode(memo.result)} in ${(performance.now() - t1).toFixed(1)} ms`,
        );

        const counts = await store.counts();
        say();
        say(
          `Done. Artifacts by state: ${Object.entries(counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        );
        await client.close();
        for (const w of workers) w.kill('SIGTERM');
        await coordinator.close();
        if (!flags.keep) rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      } catch (err) {
        for (const w of workers) w.kill('SIGKILL');
        fatal(err);
      }
    });
}
