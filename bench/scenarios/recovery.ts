/**
 * Scenario 5: recovery. A worker process holds K leases; the harness SIGKILLs it and stamps the
 * time; a second worker process, connected and idle, reports when each artifact starts again
 * (attempt 2). Recovery = that start − the kill, printed beside the resume window it waited for.
 */
import { randomBytes } from 'node:crypto';
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, until, verdict, workerStats } from '../lib/context.js';
import type { ChildEvent } from '../lib/ipc.js';
import { nowNs } from '../lib/ipc.js';
import type { Proc } from '../lib/proc.js';
import { median } from '../lib/stats.js';

/**
 * BullMQ's recovery with its defaults: a SIGKILLed worker's active jobs go back to wait once their
 * lock (lockDuration 30 s, renewed every 15 s) has expired and another worker's stalled-job check
 * (every stalledInterval, 30 s) finds them. One round; full runs only (it takes 30–60 s).
 */
async function bullRecovery(b: Bench, k: number): Promise<{ firstMs: number; allMs: number }> {
  const queue = `bench-rec-${randomBytes(4).toString('hex')}`;
  const [victim] = await b.bullWorkers(1, queue, k, 'hold');
  const driver = await b.bullDriver();
  let rescuer: Proc | undefined;
  try {
    const held: string[] = [];
    const allHeld = new Promise<void>((resolve) => victim!.on((e) => e.ev === 'started' && held.push(String(e['id'])) === k && resolve()));
    await driver.request('addJobs', { queue, n: k });
    await allHeld;
    [rescuer] = await b.bullWorkers(1, queue, k, 'relay');
    const starts: number[] = [];
    const done = new Promise<void>((resolve) => rescuer!.on((e) => e.ev === 'started' && starts.push(e['t'] as number) === k && resolve()));
    const t0 = nowNs();
    victim!.kill('SIGKILL');
    await Promise.race([
      done,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`BullMQ re-ran ${starts.length} of ${k} jobs within 120 s`)), 120_000)),
    ]);
    return { firstMs: (Math.min(...starts) - t0) / 1e6, allMs: (Math.max(...starts) - t0) / 1e6 };
  } finally {
    await stopProcs(rescuer, driver, victim);
  }
}

/** Scenario 5 with its rows. */
export async function recovery(b: Bench): Promise<void> {
  const s = b.settings;
  const windowMs = s.resumeWindowMs;
  const coord = await b.coordinator('memory', { resumeWindowMs: windowMs });
  const url = coord.ready['url'] as string;
  const driver = await b.atpDriver(url);
  const first: number[] = [];
  const last: number[] = [];
  try {
    for (let round = 0; round < s.recoveryRounds; round++) {
      const [victim] = await b.atpWorkers(1, { url, sessions: 1, concurrency: s.recoveryLeases, kinds: { rec: 'hold' }, report: 'none' });
      await driver.request('submitBulk', {
        n: s.recoveryLeases,
        chunk: s.recoveryLeases,
        kind: 'rec',
        empty: false,
        nonce: randomBytes(6).toString('hex'),
      });
      await until('the victim holds every lease', async () => (await workerStats([victim!]))[0]!.started === s.recoveryLeases, 10_000);
      let rescuer: Proc | undefined;
      try {
        [rescuer] = await b.atpWorkers(1, { url, sessions: 1, concurrency: s.recoveryLeases, kinds: { rec: 'relay' }, report: 'each' });
        const starts: number[] = [];
        const done = new Promise<void>((resolve) => {
          rescuer!.on((e: ChildEvent) => {
            if (e.ev === 'started' && (e['attempt'] as number) > 1 && starts.push(e['t'] as number) === s.recoveryLeases) resolve();
          });
        });
        const t0 = nowNs();
        victim!.kill('SIGKILL');
        await Promise.race([
          done,
          new Promise((_, reject) =>
            setTimeout(
              () => reject(new Error(`only ${starts.length} of ${s.recoveryLeases} artifacts re-leased within ${windowMs + 10_000} ms`)),
              windowMs + 10_000,
            ),
          ),
        ]);
        first.push((Math.min(...starts) - t0) / 1e6);
        last.push((Math.max(...starts) - t0) / 1e6);
        console.log(
          `    round ${round + 1}: first ${first.at(-1)!.toFixed(1)} ms, all ${last.at(-1)!.toFixed(1)} ms (window ${windowMs} ms)`,
        );
      } finally {
        await stopProcs(rescuer);
        await victim!.exited;
      }
    }
  } finally {
    await stopProcs(driver);
    await stopProcs(coord);
  }
  let bull: { firstMs: number; allMs: number } | undefined;
  if (b.redis !== undefined && !b.short) {
    console.log('  BullMQ (defaults: lockDuration 30 s, stalledInterval 30 s) ...');
    bull = await bullRecovery(b, s.recoveryLeases);
    console.log(`    first ${bull.firstMs.toFixed(0)} ms, all ${bull.allMs.toFixed(0)} ms`);
  }
  b.raw['recovery'] = { resumeWindowMs: windowMs, leasesPerRound: s.recoveryLeases, firstMs: first, allMs: last, bullmq: bull };
  const label = `5. recovery after SIGKILL (${s.recoveryLeases} leases, ${s.recoveryRounds} round${s.recoveryRounds > 1 ? 's' : ''}, median)`;
  const all = median(last);
  b.row({ scenario: label, metric: 'resume window (coordinator setting)', memory: fmt.ms(windowMs, 0) });
  b.row({ scenario: label, metric: 'SIGKILL → first artifact running on another worker', memory: fmt.ms(median(first)) });
  b.row({
    scenario: label,
    metric: 'SIGKILL → all artifacts running on another worker',
    memory: `${fmt.ms(all)} (window + ${fmt.ms(all - windowMs)})`,
    bullmq:
      bull === undefined
        ? 'not run in --short (defaults: lockDuration 30 s + stalledInterval 30 s)'
        : `${fmt.ms(bull.allMs, 0)} (1 round; lockDuration 30 s, stalledInterval 30 s)`,
    target: `≤ window + 50 ms = ${fmt.ms(windowMs + 50, 0)}`,
    result: verdict(all <= windowMs + 50),
  });
}
