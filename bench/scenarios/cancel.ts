/**
 * Scenario 4: cancel latency.
 * - One leased artifact: from the producer handing CANCEL to the SDK (producer's clock) to the
 *   handler's AbortSignal firing in the worker process (worker's clock; the clocks are one,
 *   CLOCK_MONOTONIC, checked by the latency scenario's bracket test). Coordinator, worker and
 *   producer are three processes.
 * - One pending artifact: the producer's CANCEL → CANCEL_RESULT round trip (BullMQ: Job.remove()).
 * - A subtree of N leased artifacts spread over 4 worker processes: until CANCEL_RESULT, and until
 *   every handler's signal fired (BullMQ: removing a flow parent with N waiting children).
 * The subtree run also measures coordinator memory per live lease (scenario 7).
 */
import { randomBytes } from 'node:crypto';
import type { Bench, Peer } from '../lib/context.js';
import { fmt, stopProcs, until, verdict, workerStats } from '../lib/context.js';
import type { ChildEvent } from '../lib/ipc.js';
import { Proc } from '../lib/proc.js';
import { withRelayFloor } from '../lib/relay-floor.js';
import { procCpuSeconds } from '../lib/redis.js';
import { nowNs } from '../lib/ipc.js';
import type { Summary } from '../lib/stats.js';
import { summarize } from '../lib/stats.js';

interface CancelReply {
  t0: number;
  t1: number;
  cancelled: number;
  alreadyFinished: number;
  stopping: number;
}

interface Mem {
  rss: number;
  heapUsed: number;
}

/** What the subtree run measured. */
export interface SubtreeResult {
  n: number;
  toResultMs: number;
  /** Until the first handler signal fired in each worker process, the latest of them. */
  toFirstSignalsMs: number;
  toAllSignalsMs: number;
  /** CPU time from the CANCEL until every REVOKE was acknowledged: the coordinator, and the workers together. */
  cpuMs: { coordinator: number; workers: number };
  cancelled: number;
  stopping: number;
  aborted: number;
  leaseRssBytes: number;
  leaseHeapBytes: number;
}

async function oneLeased(b: Bench, store: 'memory' | 'sqlite'): Promise<{ signal: Summary; result: Summary; pending: Summary }> {
  const s = b.settings;
  const coord = await b.coordinator(store);
  const url = coord.ready['url'] as string;
  const [worker] = await b.atpWorkers(1, { url, sessions: 1, concurrency: 1, kinds: { hold: 'hold' }, report: 'each' });
  const driver = await b.atpDriver(url);
  try {
    const signal: number[] = [];
    const result: number[] = [];
    const nonce = randomBytes(6).toString('hex');
    const warm = 20;
    for (let i = 0; i < warm + s.cancelN; i++) {
      const started = worker!.waitEvent('started', () => true, 10_000);
      const { id } = await driver.request<{ id: string }>('submitOne', { kind: 'hold', payload: `cancel-${nonce}-${i}` });
      const st = await started;
      if (st['id'] !== id) throw new Error(`worker started ${String(st['id'])}, expected ${id}`);
      const aborted = worker!.waitEvent('aborted', (e: ChildEvent) => e['id'] === id, 10_000);
      const c = await driver.request<CancelReply>('cancel', { id, subtree: false });
      const ab = await aborted;
      if (
        !b.expect(
          `cancel leased atp-${store}`,
          c.cancelled === 1 && c.stopping === 1,
          `CANCEL_RESULT cancelled ${c.cancelled}, stopping ${c.stopping}; expected 1, 1`,
        )
      )
        break;
      if (i < warm) continue;
      signal.push(((ab['t'] as number) - c.t0) / 1e3);
      result.push((c.t1 - c.t0) / 1e3);
    }
    const pending = await driver.request<Summary>('cancelPending', { n: s.cancelPendingN, warm: 50, kind: 'nobody', nonce });
    return { signal: summarize(signal), result: summarize(result), pending };
  } finally {
    await stopProcs(driver, worker);
    await stopProcs(coord);
  }
}

/**
 * The floor of the one-leased row: the same three processes (producer, a relay in the coordinator's
 * place, one worker holding the lease) and the same round, the same frames and nothing else
 * (bench/procs/relay-floor.ts); the worker stamps the REVOKE's arrival where ATP's handler stamps
 * its signal.
 */
async function relayCancelOne(b: Bench): Promise<Summary> {
  return withRelayFloor({ workers: 1, credits: 1, mode: 'hold' }, async ({ workers, producer }) => {
    const worker = workers[0]!;
    const signal: number[] = [];
    const warm = 20;
    for (let i = 0; i < warm + b.settings.cancelN; i++) {
      const started = worker.waitEvent('started', () => true, 10_000);
      const { id } = await producer.request<{ id: string }>('submitOne', { payload: `cancel-${i}` });
      const st = await started;
      if (st['id'] !== id) throw new Error(`floor worker started ${String(st['id'])}, expected ${id}`);
      const aborted = worker.waitEvent('aborted', (e: ChildEvent) => e['id'] === id, 10_000);
      const c = await producer.request<{ t0: number; t1: number }>('cancel', { id });
      const ab = await aborted;
      if (i >= warm) signal.push(((ab['t'] as number) - c.t0) / 1e3);
    }
    return summarize(signal);
  });
}

/** N leased artifacts under one root, spread over the worker processes, then one subtree cancel. */
export async function subtree(b: Bench, store: 'memory' | 'sqlite', n: number): Promise<SubtreeResult> {
  const s = b.settings;
  const coord = await b.coordinator(store);
  const url = coord.ready['url'] as string;
  const driver = await b.atpDriver(url);
  let workers: Proc[] = [];
  try {
    const nonce = randomBytes(6).toString('hex');
    const { id: root } = await driver.request<{ id: string }>('submitOne', { kind: 'root', payload: `root-${nonce}` });
    await driver.request('submitBulk', { n, chunk: s.chunk, kind: 'hold', parentId: root, empty: false, nonce }, 300_000);
    const m1 = await coord.request<Mem>('mem');
    // Now the workers connect: each takes its share (credits), so every child is leased.
    const per = Math.ceil(n / s.workers);
    workers = await b.atpWorkers(s.workers, { url, sessions: 1, concurrency: per, kinds: { hold: 'hold' }, report: 'none' });
    await until(`${n} handlers running`, async () => (await workerStats(workers)).reduce((a, w) => a + w.started, 0) === n, 120_000);
    const m2 = await coord.request<Mem>('mem');
    const cpu0 = { coordinator: procCpuSeconds(coord.pid), workers: workers.reduce((a, w) => a + procCpuSeconds(w.pid), 0) };
    const c = await driver.request<CancelReply>('cancel', { id: root, subtree: true });
    let stats = await workerStats(workers);
    await until(`${n} signals`, async () => (stats = await workerStats(workers)).reduce((a, w) => a + w.aborted, 0) >= n, 60_000).catch(
      (err: unknown) => {
        b.fail(`subtree cancel atp-${store}`, String(err));
      },
    );
    const aborted = stats.reduce((a, w) => a + w.aborted, 0);
    const last = Math.max(...stats.map((w) => w.lastAbortNs));
    // The whole cancel's CPU: until the coordinator holds no revoke unacknowledged.
    await until('every REVOKE acknowledged', async () => (await coord.request<number>('revoking')) === 0, 30_000).catch((err: unknown) => {
      b.fail(`subtree cancel atp-${store}`, String(err));
    });
    const cpuMs = {
      coordinator: (procCpuSeconds(coord.pid) - cpu0.coordinator) * 1000,
      workers: (workers.reduce((a, w) => a + procCpuSeconds(w.pid), 0) - cpu0.workers) * 1000,
    };
    b.expect(
      `subtree cancel atp-${store}`,
      c.cancelled === n + 1 && c.stopping === n && aborted === n,
      `cancelled ${c.cancelled} (want ${n + 1}), stopping ${c.stopping} (want ${n}), signals ${aborted} (want ${n})`,
    );
    return {
      n,
      toResultMs: (c.t1 - c.t0) / 1e6,
      toFirstSignalsMs: (Math.max(...stats.map((w) => w.firstAbortNs)) - c.t0) / 1e6,
      toAllSignalsMs: (last - c.t0) / 1e6,
      cancelled: c.cancelled,
      stopping: c.stopping,
      aborted,
      cpuMs,
      leaseRssBytes: m2.rss - m1.rss,
      leaseHeapBytes: m2.heapUsed - m1.heapUsed,
    };
  } finally {
    await stopProcs(driver, workers);
    await stopProcs(coord);
  }
}

/**
 * The floor of the subtree row on this machine: N AbortSignals with one listener each, spread over the
 * same number of fresh processes, all aborted at once; from the request to the last listener.
 */
async function abortFloor(b: Bench, n: number): Promise<number> {
  const per = Math.ceil(n / b.settings.workers);
  const procs = await Promise.all(
    Array.from({ length: b.settings.workers }, (_, i) => Proc.start('abort-floor', `abort-floor-${i}`, { n: per })),
  );
  try {
    const t0 = nowNs();
    const out = await Promise.all(procs.map((p) => p.request<{ t0: number; lastNs: number; fired: number }>('abortAll', {})));
    const fired = out.reduce((a, o) => a + o.fired, 0);
    b.expect('abort floor', fired === per * procs.length, `${fired} signals fired, expected ${per * procs.length}`);
    return (Math.max(...out.map((o) => o.lastNs)) - t0) / 1e6;
  } finally {
    await stopProcs(...procs);
  }
}

/** Scenario 4 with its rows. */
export async function cancel(b: Bench): Promise<void> {
  const s = b.settings;
  const one: Partial<Record<Peer, { signal: Summary; result: Summary; pending: Summary }>> = {};
  const tree: Partial<Record<Peer, SubtreeResult>> = {};
  for (const store of b.stores) {
    console.log(`  cancel one leased artifact, ATP ${store} ...`);
    one[store] = await oneLeased(b, store);
    console.log(`    signal p50 ${one[store].signal.p50.toFixed(0)} µs p99 ${one[store].signal.p99.toFixed(0)} µs`);
    console.log(`  subtree of ${fmt.int(s.subtreeN)} leased, ATP ${store} ...`);
    tree[store] = await subtree(b, store, s.subtreeN);
    console.log(`    CANCEL_RESULT ${tree[store].toResultMs.toFixed(1)} ms, all signals ${tree[store].toAllSignalsMs.toFixed(1)} ms`);
  }
  console.log('  floor: cancel one leased over the same path and frames, nothing else ...');
  const oneFloor = await relayCancelOne(b);
  console.log(`    p50 ${oneFloor.p50.toFixed(0)} µs p99 ${oneFloor.p99.toFixed(0)} µs`);
  console.log(`  floor: ${fmt.int(s.subtreeN)} AbortSignals fired in ${s.workers} fresh processes ...`);
  const floorMs = await abortFloor(b, s.subtreeN);
  console.log(`    ${floorMs.toFixed(1)} ms`);
  let bullRemove: Summary | undefined;
  let bullFlow: { ms: number; before: Record<string, number>; after: Record<string, number> } | undefined;
  if (b.redis !== undefined) {
    console.log('  BullMQ Job.remove() and flow removal ...');
    const driver = await b.bullDriver();
    try {
      bullRemove = await driver.request<Summary>('removeWaiting', {
        queue: `bench-rm-${randomBytes(4).toString('hex')}`,
        n: s.cancelPendingN,
        warm: 50,
      });
      const flow = await driver.request<{ ms: number; before: Record<string, number>; after: Record<string, number> }>(
        'removeFlow',
        { queue: `bench-flow-${randomBytes(4).toString('hex')}`, n: s.subtreeN },
        300_000,
      );
      b.expect(
        'bullmq flow removal',
        (flow.after['wait'] ?? 0) === 0 && (flow.before['wait'] ?? 0) === s.subtreeN,
        `waiting before ${flow.before['wait']}, after ${flow.after['wait']}`,
      );
      bullFlow = flow;
    } finally {
      await stopProcs(driver);
    }
  }
  b.raw['cancel'] = { one, oneFloor, subtree: tree, bullRemove, bullFlow, abortFloorMs: floorMs };
  const label = `4. cancel (one leased: n=${fmt.int(s.cancelN)}; pending: n=${fmt.int(s.cancelPendingN)})`;
  const sig = (k: 'memory' | 'sqlite') => one[k] && `${fmt.us(one[k].signal.p50)} / ${fmt.us(one[k].signal.p99)}`;
  const sigOk = b.stores.every((k) => (one[k]?.signal.p99 ?? Infinity) < 1000);
  b.row({
    scenario: label,
    metric: 'one leased: CANCEL sent → handler signal p50 / p99',
    memory: sig('memory'),
    sqlite: sig('sqlite'),
    bullmq: 'n/a (no producer-side cancel of an active job)',
    target: 'p99 < 1 ms',
    result: verdict(sigOk),
  });
  b.row({
    scenario: label,
    metric: 'floor (no ATP): one leased, CANCEL sent → REVOKE at the worker over the same 3 processes and frames, nothing else, p50 / p99',
    memory: `${fmt.us(oneFloor.p50)} / ${fmt.us(oneFloor.p99)}`,
  });
  const res = (k: 'memory' | 'sqlite') => one[k] && `${fmt.us(one[k].result.p50)} / ${fmt.us(one[k].result.p99)}`;
  b.row({ scenario: label, metric: 'one leased: CANCEL → CANCEL_RESULT p50 / p99', memory: res('memory'), sqlite: res('sqlite') });
  const pend = (k: 'memory' | 'sqlite') => one[k] && `${fmt.us(one[k].pending.p50)} / ${fmt.us(one[k].pending.p99)}`;
  b.row({
    scenario: label,
    metric: 'one pending: CANCEL → CANCEL_RESULT p50 / p99 (BullMQ: Job.remove() of a waiting job)',
    memory: pend('memory'),
    sqlite: pend('sqlite'),
    bullmq: bullRemove && `${fmt.us(bullRemove.p50)} / ${fmt.us(bullRemove.p99)}`,
  });
  const tlabel = `4. subtree cancel, ${fmt.int(s.subtreeN)} leased over ${s.workers} workers`;
  b.row({
    scenario: tlabel,
    metric: 'CANCEL sent → CANCEL_RESULT',
    memory: tree.memory && fmt.ms(tree.memory.toResultMs),
    sqlite: tree.sqlite && fmt.ms(tree.sqlite.toResultMs),
  });
  b.row({
    scenario: tlabel,
    metric: 'CANCEL sent → the first handler signal fired in every worker process',
    memory: tree.memory && fmt.ms(tree.memory.toFirstSignalsMs),
    sqlite: tree.sqlite && fmt.ms(tree.sqlite.toFirstSignalsMs),
  });
  const treeOk = b.stores.every((k) => (tree[k]?.toAllSignalsMs ?? Infinity) < 50);
  b.row({
    scenario: tlabel,
    metric: 'CANCEL sent → every handler signal fired (BullMQ: remove a flow parent with N waiting children)',
    memory: tree.memory && fmt.ms(tree.memory.toAllSignalsMs),
    sqlite: tree.sqlite && fmt.ms(tree.sqlite.toAllSignalsMs),
    bullmq: bullFlow && `${fmt.ms(bullFlow.ms)} (waiting jobs only)`,
    target: s.subtreeN === 10_000 ? '< 50 ms' : '< 50 ms (at 10,000)',
    result: s.subtreeN === 10_000 ? verdict(treeOk) : '',
  });
  const cpu = (k: 'memory' | 'sqlite') =>
    tree[k] && `coordinator ${fmt.ms(tree[k].cpuMs.coordinator)}, workers ${fmt.ms(tree[k].cpuMs.workers)}`;
  b.row({
    scenario: tlabel,
    metric: `CPU from CANCEL until every REVOKE is acknowledged: the coordinator, the ${s.workers} workers together`,
    memory: cpu('memory'),
    sqlite: cpu('sqlite'),
  });
  b.row({
    scenario: tlabel,
    metric: `floor: ${fmt.int(s.subtreeN)} AbortSignals, one listener each, aborted in ${s.workers} fresh processes at once (no ATP)`,
    memory: fmt.ms(floorMs),
    sqlite: fmt.ms(floorMs),
  });
}
