/**
 * Scenario 3: dispatch latency at light load, from submit (producer's clock) to handler start
 * (worker's clock), one artifact at a time; and in the same run the raw loopback TCP ping-pong
 * between two processes, the floor. Processes share CLOCK_MONOTONIC (process.hrtime): the harness
 * checks it first with a bracket test (harness stamp ≤ child stamp ≤ harness stamp).
 */
import { randomBytes } from 'node:crypto';
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, verdict } from '../lib/context.js';
import { nowNs } from '../lib/ipc.js';
import { Proc } from '../lib/proc.js';
import { withRelayFloor } from '../lib/relay-floor.js';
import type { Summary } from '../lib/stats.js';
import { summarize } from '../lib/stats.js';

interface DispatchResult {
  start: Summary;
  round: Summary;
}

/** Bracket test of the shared clock against a child; returns the IPC round trips (µs). */
export async function clockCheck(b: Bench, child: Proc, rounds: number): Promise<Summary> {
  let bad = 0;
  const rt: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const a = nowNs();
    const { t } = await child.request<{ t: number }>('clock');
    const c = nowNs();
    if (!(a <= t && t <= c)) bad++;
    rt.push((c - a) / 1e3);
  }
  b.expect(
    'shared clock',
    bad === 0,
    `${bad} of ${rounds} child clock readings fell outside the harness's bracket: CLOCK_MONOTONIC is not shared`,
  );
  return summarize(rt);
}

async function floor(b: Bench): Promise<Summary> {
  const echo = await Proc.start('echo', 'echo', {});
  const pinger = await Proc.start('pingpong', 'ping-client', {});
  try {
    return await pinger.request<Summary>('pingpong', { port: echo.ready['port'], warm: b.settings.floorWarm, n: b.settings.floorN });
  } finally {
    await stopProcs(pinger, echo);
  }
}

/**
 * The floor of the dispatch path: the same three processes (producer, a relay in the coordinator's
 * place, one worker) moving the same frames and nothing else (bench/procs/relay-floor.ts).
 */
async function relayDispatch(b: Bench): Promise<Summary> {
  return withRelayFloor({ workers: 1, credits: 1, mode: 'stamp' }, async ({ workers, producer }) => {
    await clockCheck(b, workers[0]!, 50);
    await clockCheck(b, producer, 50);
    const { dispatchN: n, dispatchWarm: warm } = b.settings;
    return producer.request<Summary>('dispatch', { n, warm, nonce: randomBytes(6).toString('hex') }, 300_000);
  });
}

async function atpDispatch(b: Bench, store: 'memory' | 'sqlite'): Promise<DispatchResult> {
  const coord = await b.coordinator(store);
  const url = coord.ready['url'] as string;
  const workers = await b.atpWorkers(1, { url, sessions: 1, concurrency: 1, kinds: { lat: 'stamp' }, report: 'none' });
  const driver = await b.atpDriver(url);
  try {
    await clockCheck(b, workers[0]!, 50);
    await clockCheck(b, driver, 50);
    return await driver.request<DispatchResult>(
      'dispatch',
      { n: b.settings.dispatchN, warm: b.settings.dispatchWarm, kind: 'lat', nonce: randomBytes(6).toString('hex') },
      300_000,
    );
  } finally {
    await stopProcs(driver, workers);
    await stopProcs(coord);
  }
}

async function bullDispatch(b: Bench): Promise<DispatchResult> {
  const queue = `bench-lat-${randomBytes(4).toString('hex')}`;
  const workers = await b.bullWorkers(1, queue, 1, 'stamp');
  const driver = await b.bullDriver();
  try {
    return await driver.request<DispatchResult>('dispatch', { queue, n: b.settings.dispatchN, warm: b.settings.dispatchWarm }, 300_000);
  } finally {
    await stopProcs(driver, workers);
  }
}

/** Scenario 3 with its rows. */
export async function latency(b: Bench): Promise<void> {
  const s = b.settings;
  console.log('  loopback ping-pong floor ...');
  const fl = await floor(b);
  console.log(`    p50 ${fl.p50.toFixed(0)} µs p99 ${fl.p99.toFixed(0)} µs`);
  console.log('  dispatch floor: the same path and frames, nothing else ...');
  const path3 = await relayDispatch(b);
  console.log(`    p50 ${path3.p50.toFixed(0)} µs p99 ${path3.p99.toFixed(0)} µs`);
  const res: Partial<Record<'memory' | 'sqlite' | 'bullmq', DispatchResult>> = {};
  for (const store of b.stores) {
    console.log(`  dispatch ATP ${store} ...`);
    res[store] = await atpDispatch(b, store);
    console.log(`    p50 ${res[store].start.p50.toFixed(0)} µs p99 ${res[store].start.p99.toFixed(0)} µs`);
  }
  if (b.redis !== undefined) {
    console.log('  dispatch BullMQ ...');
    res.bullmq = await bullDispatch(b);
    console.log(`    p50 ${res.bullmq.start.p50.toFixed(0)} µs p99 ${res.bullmq.start.p99.toFixed(0)} µs`);
  }
  b.raw['latency'] = { floor: fl, pathFloor: path3, dispatch: res };
  const label = `3. dispatch latency, one at a time (n=${fmt.int(s.dispatchN)})`;
  const floorLabel = `loopback TCP ping-pong RTT, 2 processes (n=${fmt.int(s.floorN)}): the floor`;
  b.row({
    scenario: label,
    metric: `${floorLabel} p50 / p99 / p99.9`,
    memory: `${fmt.us(fl.p50)} / ${fmt.us(fl.p99)} / ${fmt.us(fl.p999)}`,
  });
  b.row({
    scenario: label,
    metric: 'floor (no ATP): submit → handler start over the same 3 processes and frames, nothing else, p50 / p99 / p99.9',
    memory: `${fmt.us(path3.p50)} / ${fmt.us(path3.p99)} / ${fmt.us(path3.p999)}`,
  });
  const cell = (k: 'memory' | 'sqlite' | 'bullmq', q: 'p50' | 'p99' | 'p999', what: 'start' | 'round' = 'start') =>
    res[k] === undefined ? undefined : fmt.us(res[k][what][q]);
  const ok = (k: 'memory' | 'sqlite') => (res[k] === undefined ? true : res[k].start.p50 <= 2 * fl.p50);
  b.row({
    scenario: label,
    metric: 'submit → handler start p50',
    memory: cell('memory', 'p50'),
    sqlite: cell('sqlite', 'p50'),
    bullmq: cell('bullmq', 'p50'),
    target: `≤ 2 × RTT p50 = ${fmt.us(2 * fl.p50)}`,
    result: verdict(ok('memory') && ok('sqlite')),
  });
  b.row({
    scenario: label,
    metric: 'submit → handler start p99',
    memory: cell('memory', 'p99'),
    sqlite: cell('sqlite', 'p99'),
    bullmq: cell('bullmq', 'p99'),
  });
  b.row({
    scenario: label,
    metric: 'submit → handler start p99.9',
    memory: cell('memory', 'p999'),
    sqlite: cell('sqlite', 'p999'),
    bullmq: cell('bullmq', 'p999'),
  });
  b.row({
    scenario: label,
    metric: 'submit → result seen by producer p50 / p99',
    memory: res.memory && `${cell('memory', 'p50', 'round')} / ${cell('memory', 'p99', 'round')}`,
    sqlite: res.sqlite && `${cell('sqlite', 'p50', 'round')} / ${cell('sqlite', 'p99', 'round')}`,
    bullmq: res.bullmq && `${cell('bullmq', 'p50', 'round')} / ${cell('bullmq', 'p99', 'round')}`,
  });
}
