/**
 * Scenario 8: renewal cost. 100 worker sessions (the worker SDK, 25 per process) hold 100 leases
 * each; the coordinator's CPU time (process.cpuUsage, in its own process) over the window, as a
 * share of one core. The SDK renews every lease of a session with one RENEW per heartbeat: at the
 * default heartbeat (10 s), and at a 1 s heartbeat to show that the cost follows RENEW frames
 * (sessions), not leases.
 */
import { randomBytes } from 'node:crypto';
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, until, verdict, workerStats } from '../lib/context.js';
import type { Proc } from '../lib/proc.js';

/** Between the last lease granted and the window. */
const SETTLE_MS = 5_000;

interface Cpu {
  cpu: { user: number; system: number };
  t: number;
}

interface RenewalResult {
  /** The same coordinator alone (no session yet, its start over) over `baselineSeconds`: what the machine costs a quiet process. */
  baselinePercent: number;
  baselineSeconds: number;
  heartbeatMs: number;
  seconds: number;
  sessions: number;
  leases: number;
  frames: number;
  corePercent: number;
}

async function run(b: Bench, heartbeatMs: number, seconds: number): Promise<RenewalResult> {
  const s = b.settings;
  const leases = s.renewSessions * s.renewLeasesPerSession;
  const coord = await b.coordinator('memory', { heartbeatMs });
  const url = coord.ready['url'] as string;
  const share = (a: Cpu, z: Cpu) => ((z.cpu.user - a.cpu.user + z.cpu.system - a.cpu.system) / 1e3 / ((z.t - a.t) / 1e6)) * 100;
  const baselineSeconds = Math.min(seconds, 10);
  // A fresh process spends its first seconds finishing its start (lazy compilation, collections:
  // about 1% of a core for 10 s here, then 0.03%): the baseline is measured after that.
  await new Promise((r) => setTimeout(r, baselineSeconds * 1000));
  const b0 = await coord.request<Cpu>('cpu');
  await new Promise((r) => setTimeout(r, baselineSeconds * 1000));
  const baselinePercent = share(b0, await coord.request<Cpu>('cpu'));
  const driver = await b.atpDriver(url);
  let workers: Proc[] = [];
  try {
    workers = await b.atpWorkers(s.renewProcs, {
      url,
      sessions: s.renewSessions / s.renewProcs,
      concurrency: s.renewLeasesPerSession,
      kinds: { hold: 'hold' },
      report: 'none',
    });
    await driver.request(
      'submitBulk',
      { n: leases, chunk: s.chunk, kind: 'hold', empty: false, nonce: randomBytes(6).toString('hex') },
      120_000,
    );
    await until(`${leases} leases held`, async () => (await workerStats(workers)).reduce((a, w) => a + w.started, 0) === leases, 60_000);
    await stopProcs(driver);
    const sessions = await coord.request<number>('sessions');
    b.expect('renewal', sessions === s.renewSessions, `${sessions} worker sessions, expected ${s.renewSessions}`);
    // The window starts once the work of setting the leases up (10,000 submits and grants, and the
    // collections they leave behind) is over: what is measured is the holding and renewing.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const f0 = await coord.request<number>('framesIn');
    const c0 = await coord.request<Cpu>('cpu');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const c1 = await coord.request<Cpu>('cpu');
    const f1 = await coord.request<number>('framesIn');
    const stats = await workerStats(workers);
    const aborted = stats.reduce((a, w) => a + w.aborted, 0);
    b.expect('renewal', aborted === 0, `${aborted} leases were lost or revoked while renewing`);
    return { baselinePercent, baselineSeconds, heartbeatMs, seconds, sessions, leases, frames: f1 - f0, corePercent: share(c0, c1) };
  } finally {
    await stopProcs(driver, workers);
    await stopProcs(coord);
  }
}

/** Scenario 8 with its rows. */
export async function renewal(b: Bench): Promise<void> {
  const s = b.settings;
  const results: RenewalResult[] = [];
  // --short runs only the 1 s heartbeat: a 5 s window at the default 10 s heartbeat may hold no renewal.
  const variants: Array<[number, number]> = b.short
    ? [[1_000, s.renewSeconds]]
    : [
        [10_000, s.renewSeconds],
        [1_000, 20],
      ];
  for (const [hb, secs] of variants) {
    console.log(`  heartbeat ${hb} ms, ${secs} s ...`);
    const r = await run(b, hb, secs);
    console.log(
      `    ${r.corePercent.toFixed(2)} % of a core (alone: ${r.baselinePercent.toFixed(2)} %), ${r.frames} frames from ${r.sessions} sessions`,
    );
    results.push(r);
  }
  b.raw['renewal'] = results;
  const label = `8. renewal: ${fmt.int(s.renewSessions * s.renewLeasesPerSession)} leases held by ${s.renewSessions} worker sessions in ${s.renewProcs} processes`;
  for (const r of results) {
    b.row({
      scenario: label,
      metric: `coordinator CPU, share of one core: heartbeat ${r.heartbeatMs / 1000} s, ${r.seconds} s window (${fmt.int(r.frames)} RENEW frames)`,
      memory: `${fmt.pct(r.corePercent)} (coordinator alone: ${fmt.pct(r.baselinePercent)})`,
      bullmq: 'n/a',
      target: '< 1 %',
      result: verdict(r.corePercent < 1),
    });
  }
}
