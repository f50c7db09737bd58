/**
 * Scenario 6: head-of-line blocking. ONE payload of 100 MiB (100 × 2^20 bytes; 16 MiB with --short)
 * crosses a connection while small request/answer pairs are timed on that same connection,
 * open-loop (a probe leaves every interval, answered or not). Forward: the SUBMIT of the payload,
 * with PING→PONG, RENEW→RENEWED and CANCEL→CANCEL_RESULT (of a small pending artifact) from the
 * submitting session. Reverse: the LEASE of that payload to a worker, with that worker's
 * PING→PONG and RENEW→RENEWED. The payload travels as a fragmented message (ATP_WIRE §3.7), its
 * fragments behind the small frames (§3.9) and paced by the receiver's window (§3.8).
 */
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, verdict } from '../lib/context.js';
import { Proc } from '../lib/proc.js';
import type { Summary } from '../lib/stats.js';
import type { HolArgs, HolResult } from '../procs/hol-driver.js';

const PING_EVERY_MS = 125;
const RENEW_EVERY_MS = 5;
const CANCEL_EVERY_MS = 20;

/** Scenario 6 with its rows. */
export async function hol(b: Bench): Promise<void> {
  const s = b.settings;
  const coord = await b.coordinator('memory');
  const driver = await Proc.start('hol-driver', 'hol-driver', { url: coord.ready['url'] as string });
  let r: HolResult;
  try {
    const args: HolArgs = {
      bytes: s.holBytes,
      idleMs: 2000,
      pingEveryMs: PING_EVERY_MS,
      renewEveryMs: RENEW_EVERY_MS,
      cancelEveryMs: CANCEL_EVERY_MS,
    };
    r = await driver.request<HolResult>('hol', args, 300_000);
  } finally {
    await stopProcs(driver);
    await stopProcs(coord);
  }
  b.raw['hol'] = r;
  b.expect('hol', r.reverse.intact, 'the leased payload is not byte-identical to the submitted one');
  const mib = (r.bytes / 2 ** 20).toFixed(0);
  const target = 'p99 < 5 ms';
  const pair = (x: Summary) => `${fmt.us(x.p50)} / ${fmt.us(x.p99)}`;
  const rows = (label: string, what: string, idle: Summary, flood: Summary, every: number) => {
    b.row({ scenario: label, metric: `${what} idle, one every ${every} ms, p50 / p99 (n=${idle.n})`, memory: pair(idle) });
    b.row({
      scenario: label,
      metric: `${what} while the payload crosses, one every ${every} ms, p50 / p99 (n=${flood.n})`,
      memory: pair(flood),
      target,
      result: verdict(flood.p99 < 5000),
    });
  };

  const fwd = `6. head-of-line: one SUBMIT of ${mib} MiB, probes on the submitting connection`;
  const f = r.forward;
  b.row({
    scenario: fwd,
    metric: 'SUBMIT sent → ACCEPTED (digest checked, stored) / rate',
    memory: `${fmt.ms(f.ms, 0)} / ${f.mbPerS.toFixed(0)} MB/s`,
  });
  rows(fwd, 'PING → PONG', f.idle.ping, f.flood.ping, PING_EVERY_MS);
  rows(fwd, 'RENEW → RENEWED', f.idle.renew, f.flood.renew, RENEW_EVERY_MS);
  if (f.idle.cancel !== undefined && f.flood.cancel !== undefined)
    rows(fwd, 'CANCEL → CANCEL_RESULT (a small pending artifact)', f.idle.cancel, f.flood.cancel, CANCEL_EVERY_MS);

  const rev = `6. head-of-line: the LEASE of that ${mib} MiB artifact, probes on the worker's connection`;
  const v = r.reverse;
  b.row({
    scenario: rev,
    metric: `CREDIT sent → LEASE received whole / rate (payload byte-identical: ${v.intact ? 'yes' : 'NO'})`,
    memory: `${fmt.ms(v.ms, 0)} / ${v.mbPerS.toFixed(0)} MB/s`,
  });
  rows(rev, 'PING → PONG', v.idle.ping, v.flood.ping, PING_EVERY_MS);
  rows(rev, 'RENEW → RENEWED', v.idle.renew, v.flood.renew, RENEW_EVERY_MS);
}
