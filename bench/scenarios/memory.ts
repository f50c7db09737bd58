/**
 * Scenario 7: coordinator memory. RSS and heapUsed deltas after full GCs (the coordinator runs with
 * --expose-gc) for N pending artifacts with empty payloads and producer-chosen ids, submitted
 * without a watch; and for live leases (from the subtree run: the same artifacts pending, then
 * leased by connected workers). BullMQ: Redis used_memory per waiting job with empty data.
 */
import { randomBytes } from 'node:crypto';
import type { Bench } from '../lib/context.js';
import { fmt, stopProcs, verdict } from '../lib/context.js';
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

/** Scenario 7 with its rows. */
export async function memory(b: Bench): Promise<void> {
  const s = b.settings;
  const per: Partial<Record<'memory' | 'sqlite', { n: number; rss: number; heap: number; ms: number }>> = {};
  const leases: Partial<Record<'memory' | 'sqlite', SubtreeResult>> = {};
  const fromCancel = (b.raw['cancel'] as { subtree?: Partial<Record<'memory' | 'sqlite', SubtreeResult>> } | undefined)?.subtree;
  for (const store of b.stores) {
    const n = store === 'sqlite' ? s.pendingSqliteN : s.pendingN;
    console.log(`  ${fmt.int(n)} pending artifacts, ATP ${store} ...`);
    per[store] = await pending(b, store, n);
    console.log(
      `    rss ${per[store].rss.toFixed(0)} B, heap ${per[store].heap.toFixed(0)} B per artifact (submitted in ${per[store].ms.toFixed(0)} ms)`,
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
  b.raw['memory'] = { pendingPerArtifact: per, leases, bull };
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
  const lease = (k: 'memory' | 'sqlite') =>
    leases[k] && `${fmt.int(leases[k].leaseHeapBytes / 1024)} KiB heap, ${fmt.int(leases[k].leaseRssBytes / 1024)} KiB RSS`;
  b.row({
    scenario: label,
    metric: `${fmt.int(s.leasesN)} live leases (pending → leased, ${s.workers} worker sessions)`,
    memory: lease('memory'),
    sqlite: lease('sqlite'),
  });
}
