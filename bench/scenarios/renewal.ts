/**
 * Scenario 8: renewal cost. 100 worker sessions (the worker SDK, 25 per process) hold 100 leases
 * each; the coordinator's CPU time (process.cpuUsage, in its own process) over the window, as a
 * share of one core. The SDK renews every lease of a session with one RENEW per heartbeat.
 */
import { randomBytes } from 'node:crypto';
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, until, verdict, workerStats } from '../lib/context.js';
import type { Proc } from '../lib/proc.js';

interface Cpu {
  cpu: { user: number; system: number };
  t: number;
}

/** Scenario 8 with its rows. */
export async function renewal(b: Bench): Promise<void> {
  const s = b.settings;
  const leases = s.renewSessions * s.renewLeasesPerSession;
  const coord = await b.coordinator('memory');
  const url = coord.ready['url'] as string;
  const driver = await b.atpDriver(url);
  let workers: Proc[] = [];
  let pct: number;
  let sessions: number;
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
    sessions = await coord.request<number>('sessions');
    const c0 = await coord.request<Cpu>('cpu');
    await new Promise((r) => setTimeout(r, s.renewSeconds * 1000));
    const c1 = await coord.request<Cpu>('cpu');
    const stats = await workerStats(workers);
    const aborted = stats.reduce((a, w) => a + w.aborted, 0);
    b.expect('renewal', aborted === 0, `${aborted} leases were lost or revoked while renewing`);
    pct = ((c1.cpu.user - c0.cpu.user + c1.cpu.system - c0.cpu.system) / 1e3 / ((c1.t - c0.t) / 1e6)) * 100;
  } finally {
    await stopProcs(driver, workers);
    await stopProcs(coord);
  }
  b.raw['renewal'] = { sessions, leases, seconds: s.renewSeconds, corePercent: pct };
  const label = `8. renewal: ${fmt.int(leases)} leases held by ${s.renewSessions} worker sessions in ${s.renewProcs} processes for ${s.renewSeconds} s`;
  b.row({
    scenario: label,
    metric: 'coordinator CPU (process.cpuUsage) as share of one core',
    memory: fmt.pct(pct),
    bullmq: 'n/a',
    target: '< 1 %',
    result: verdict(pct < 1),
  });
}
