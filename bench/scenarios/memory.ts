/**
 * Scenario 7: coordinator memory. RSS and heapUsed deltas after full GCs (the coordinator runs with
 * --expose-gc) for N pending artifacts with empty payloads and producer-chosen ids, submitted
 * without a watch; and for live leases (from the subtree run: the same artifacts pending, then
 * leased by connected workers). BullMQ: Redis used_memory per waiting job with empty data.
 */
import { randomBytes } from 'node:crypto';
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, until, verdict } from '../lib/context.js';
import type { Proc } from '../lib/proc.js';
import { subtree } from './cancel.js';
import type { SubtreeResult } from './cancel.js';

interface Mem {
  rss: number;
  heapUsed: number;
  gc: boolean;
}

async function pending(b: Bench, store: 'memory' | 'sqlite', n: number): Promise<{ n: number; rss: number; heap: number; ms: number }> {
  const coord = await b.coordinator(store);
  const driver = await b.atpDriver(coord.ready['url'] as string);
  try {
    const m0 = await coord.request<Mem>('mem');
    b.expect('memory', m0.gc, 'the coordinator has no gc() (--expose-gc)');
    const r = await driver.request<{ accepted: number; ms: number }>(
      'submitBulk',
      { n, chunk: 10_000, kind: 'idle', empty: true, nonce: randomBytes(6).toString('hex') },
      600_000,
    );
    const m1 = await coord.request<Mem>('mem', {}, 300_000);
    const counts = await coord.request<Record<string, number>>('counts');
    b.expect(
      `memory atp-${store}`,
      r.accepted === n && counts['PENDING'] === n,
      `${r.accepted} accepted, ${counts['PENDING']} pending; expected ${n}`,
    );
    return { n, rss: (m1.rss - m0.rss) / n, heap: (m1.heapUsed - m0.heapUsed) / n, ms: r.ms };
  } finally {
    await stopProcs(driver);
    await stopProcs(coord);
  }
}

interface Finished {
  n: number;
  retainMs: number;
  /** Per completed artifact, once every result was seen: remembered within the retention. */
  kept: { rss: number; heap: number };
  /** Per completed artifact, once the retention had passed and the sweep had forgotten them all. */
  forgotten: { rss: number; heap: number };
}

/**
 * Completed artifacts (ATP_SPEC §3.11): n no-op artifacts through 4 workers, with a short retention;
 * the coordinator's memory once every result is seen (each artifact still remembered: its record and
 * result, as for the default 24 hours), and again once the sweep has forgotten them.
 */
async function finished(b: Bench, store: 'memory' | 'sqlite', n: number): Promise<Finished> {
  const s = b.settings;
  const retainMs = 5_000;
  const coord = await b.coordinator(store, { retainMs });
  let workers: Proc[] = [];
  let driver: Proc | undefined;
  try {
    const url = coord.ready['url'] as string;
    workers = await b.atpWorkers(s.workers, { url, sessions: 1, concurrency: s.concurrency, kinds: { work: 'noop' }, report: 'none' });
    driver = await b.atpDriver(url);
    const m0 = await coord.request<Mem>('mem');
    const r = await driver.request<{ completed: number }>(
      'throughput',
      { n, chunk: s.chunk, kind: 'work', nonce: randomBytes(6).toString('hex') },
      600_000,
    );
    const m1 = await coord.request<Mem>('mem', {}, 300_000);
    b.expect(`memory finished atp-${store}`, r.completed === n, `${r.completed} of ${n} artifacts completed`);
    await until(
      'every completed artifact forgotten',
      async () => (await coord.request<Record<string, number>>('counts'))['COMPLETED'] === 0,
      retainMs + 120_000,
    ).catch((err: unknown) => b.fail(`memory finished atp-${store}`, String(err)));
    const m2 = await coord.request<Mem>('mem', {}, 300_000);
    const per = (a: Mem, z: Mem) => ({ rss: (z.rss - a.rss) / n, heap: (z.heapUsed - a.heapUsed) / n });
    return { n, retainMs, kept: per(m0, m1), forgotten: per(m0, m2) };
  } finally {
    await stopProcs(driver, workers);
    await stopProcs(coord);
  }
}

/** Scenario 7 with its rows. */
export async function memory(b: Bench): Promise<void> {
  const s = b.settings;
  const per: Partial<Record<'memory' | 'sqlite', { n: number; rss: number; heap: number; ms: number }>> = {};
  const leases: Partial<Record<'memory' | 'sqlite', SubtreeResult>> = {};
  const done: Partial<Record<'memory' | 'sqlite', Finished>> = {};
  const fromCancel = (b.raw['cancel'] as { subtree?: Partial<Record<'memory' | 'sqlite', SubtreeResult>> } | undefined)?.subtree;
  for (const store of b.stores) {
    const n = store === 'sqlite' ? s.pendingSqliteN : s.pendingN;
    console.log(`  ${fmt.int(n)} pending artifacts, ATP ${store} ...`);
    per[store] = await pending(b, store, n);
    console.log(
      `    rss ${per[store].rss.toFixed(0)} B, heap ${per[store].heap.toFixed(0)} B per artifact (submitted in ${per[store].ms.toFixed(0)} ms)`,
    );
    console.log(`  ${fmt.int(s.throughputN)} completed artifacts, ATP ${store} ...`);
    done[store] = await finished(b, store, s.throughputN);
    console.log(
      `    heap ${done[store].kept.heap.toFixed(0)} B per artifact remembered, ${done[store].forgotten.heap.toFixed(0)} B once forgotten`,
    );
    const reuse = fromCancel?.[store];
    leases[store] = reuse !== undefined && reuse.n === s.leasesN ? reuse : await subtree(b, store, s.leasesN);
  }
  let bull: { bytesPerJob: number; waiting: number } | undefined;
  if (b.redis !== undefined) {
    console.log(`  BullMQ: ${fmt.int(s.bullMemoryN)} waiting jobs ...`);
    const driver = await b.bullDriver();
    try {
      const m = await driver.request<{ bytesPerJob: number; waiting: number }>(
        'memory',
        { queue: `bench-mem-${randomBytes(4).toString('hex')}`, n: s.bullMemoryN, chunk: s.chunk },
        300_000,
      );
      b.expect('bullmq memory', m.waiting === s.bullMemoryN, `${m.waiting} waiting, expected ${s.bullMemoryN}`);
      bull = m;
    } finally {
      await stopProcs(driver);
    }
  }
  b.raw['memory'] = { pendingPerArtifact: per, leases, completed: done, bull };
  const label = `7. coordinator memory (${fmt.int(s.pendingN)} pending (SQLite ${fmt.int(s.pendingSqliteN)}), empty payloads, no watch; ${fmt.int(s.leasesN)} leases)`;
  const cell = (k: 'memory' | 'sqlite', f: 'rss' | 'heap') => per[k] && fmt.bytes(per[k][f]);
  b.row({
    scenario: label,
    metric: 'per pending artifact: heapUsed delta after GC',
    memory: cell('memory', 'heap'),
    sqlite: cell('sqlite', 'heap'),
    bullmq: bull && `${fmt.bytes(bull.bytesPerJob)} (Redis used_memory, ${fmt.int(s.bullMemoryN)} jobs)`,
    target: '< 400 B',
    result: verdict(b.stores.every((k) => (per[k]?.heap ?? Infinity) < 400)),
  });
  b.row({
    scenario: label,
    metric: 'per pending artifact: RSS delta after GC',
    memory: cell('memory', 'rss'),
    sqlite: cell('sqlite', 'rss'),
    target: '< 400 B',
    result: verdict(b.stores.every((k) => (per[k]?.rss ?? Infinity) < 400)),
  });
  const fin = (k: 'memory' | 'sqlite', when: 'kept' | 'forgotten') =>
    done[k] && `${fmt.bytes(done[k][when].heap)} heap, ${fmt.bytes(done[k][when].rss)} RSS`;
  const finLabel = `7. coordinator memory per completed artifact (${fmt.int(s.throughputN)} no-op artifacts, results seen; ATP_SPEC §3.11)`;
  b.row({
    scenario: finLabel,
    metric: 'remembered within the retention (record and result): heapUsed / RSS delta after GC',
    memory: fin('memory', 'kept'),
    sqlite: fin('sqlite', 'kept'),
    bullmq: 'kept until removed (removeOnComplete is off by default)',
  });
  b.row({
    scenario: finLabel,
    metric: 'after the retention (5 s here, 24 h by default), once the sweep forgot them',
    memory: fin('memory', 'forgotten'),
    sqlite: fin('sqlite', 'forgotten'),
  });
  const lease = (k: 'memory' | 'sqlite') =>
    leases[k] && `${fmt.int(leases[k].leaseHeapBytes / 1024)} KiB heap, ${fmt.int(leases[k].leaseRssBytes / 1024)} KiB RSS`;
  b.row({
    scenario: label,
    metric: `${fmt.int(s.leasesN)} live leases (pending → leased, ${s.workers} worker sessions)`,
    memory: lease('memory'),
    sqlite: lease('sqlite'),
  });
}
