/**
 * Scenario 6: head-of-line blocking. One session (worker and producer roles, holding one lease)
 * sends maximum-size SUBMIT frames (the payload travels inline: ATP has no separate blob channel
 * yet) while it samples PING→PONG and RENEW→RENEWED round trips on the same connection, open-loop
 * (a probe every 125 ms and every 5 ms, answered or not).
 */
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, verdict } from '../lib/context.js';
import type { Summary } from '../lib/stats.js';

interface HolResult {
  frames: number;
  frameBytes: number;
  windowFrames: number;
  bytes: number;
  floodMs: number;
  mbPerS: number;
  idlePing: Summary;
  idleRenew: Summary;
  floodPing: Summary;
  floodRenew: Summary;
}

/** Scenario 6 with its rows. */
export async function hol(b: Bench): Promise<void> {
  const s = b.settings;
  const coord = await b.coordinator('memory');
  const driver = await b.atpDriver(coord.ready['url'] as string);
  let r: HolResult;
  try {
    r = await driver.request<HolResult>(
      'hol',
      { totalBytes: s.holBytes, windowBytes: s.holWindowBytes, idleMs: 2000, pingEveryMs: 125, renewEveryMs: 5 },
      300_000,
    );
  } finally {
    await stopProcs(driver);
    await stopProcs(coord);
  }
  b.raw['hol'] = r;
  const mib = (r.bytes / 2 ** 20).toFixed(0);
  const label = `6. head-of-line: ${r.frames} SUBMIT frames of ${fmt.int(r.frameBytes)} B (${mib} MiB, ≤ ${r.windowFrames} unacknowledged) on the control connection`;
  const target = 'p99 < 5 ms';
  b.row({ scenario: label, metric: `flood duration / rate`, memory: `${fmt.ms(r.floodMs, 0)} / ${r.mbPerS.toFixed(0)} MB/s` });
  b.row({
    scenario: label,
    metric: `PING → PONG idle, one every 125 ms, p50 / p99 (n=${r.idlePing.n})`,
    memory: `${fmt.us(r.idlePing.p50)} / ${fmt.us(r.idlePing.p99)}`,
  });
  b.row({
    scenario: label,
    metric: `PING → PONG under the flood, one every 125 ms (10/s allowed), p50 / p99 (n=${r.floodPing.n})`,
    memory: `${fmt.us(r.floodPing.p50)} / ${fmt.us(r.floodPing.p99)}`,
    target,
    result: verdict(r.floodPing.p99 < 5000),
  });
  b.row({
    scenario: label,
    metric: `RENEW → RENEWED idle, one every 5 ms, p50 / p99 (n=${r.idleRenew.n})`,
    memory: `${fmt.us(r.idleRenew.p50)} / ${fmt.us(r.idleRenew.p99)}`,
  });
  b.row({
    scenario: label,
    metric: `RENEW → RENEWED under the flood, one every 5 ms, p50 / p99 (n=${r.floodRenew.n})`,
    memory: `${fmt.us(r.floodRenew.p50)} / ${fmt.us(r.floodRenew.p99)}`,
    target,
    result: verdict(r.floodRenew.p99 < 5000),
  });
}
