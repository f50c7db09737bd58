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
  b.raw['recovery'] = { resumeWindowMs: windowMs, leasesPerRound: s.recoveryLeases, firstMs: first, allMs: last };
  const label = `5. recovery after SIGKILL (${s.recoveryLeases} leases, ${s.recoveryRounds} round${s.recoveryRounds > 1 ? 's' : ''}, median)`;
  const all = median(last);
  b.row({ scenario: label, metric: 'resume window (coordinator setting)', memory: fmt.ms(windowMs, 0) });
  b.row({ scenario: label, metric: 'SIGKILL → first artifact running on another worker', memory: fmt.ms(median(first)) });
  b.row({
    scenario: label,
    metric: 'SIGKILL → all artifacts running on another worker',
    memory: `${fmt.ms(all)} (window + ${fmt.ms(all - windowMs)})`,
    bullmq: 'n/a (stalled jobs return after lockDuration 30 s, checked every stalledInterval 30 s)',
    target: `≤ window + 50 ms = ${fmt.ms(windowMs + 50, 0)}`,
    result: verdict(all <= windowMs + 50),
  });
}
