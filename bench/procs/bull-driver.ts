/**
 * Benchmark child: the producer side of the BullMQ peer. Completion is observed the way a BullMQ
 * producer observes it: through QueueEvents (one stream reader for all jobs), with the events
 * stream long enough that no event is trimmed away before it is read.
 */
import { FlowProducer, Queue, QueueEvents } from 'bullmq';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { childConfig, emit, nowNs, serve } from '../lib/ipc.js';
import { summarize } from '../lib/stats.js';

/** Configuration of the BullMQ driver child. */
export interface BullDriverConfig {
  redis: { host: string; port: number };
}

const cfg = childConfig<BullDriverConfig>();
const connection = cfg.redis;

async function open(name: string, maxEvents: number) {
  const queue = new Queue(name, { connection, streams: { events: { maxLen: maxEvents } } });
  const events = new QueueEvents(name, { connection });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  return { queue, events };
}

async function close(q: { queue: Queue; events: QueueEvents }): Promise<void> {
  await q.events.close();
  await q.queue.obliterate({ force: true });
  await q.queue.close();
}

/** End to end: addBulk in awaited chunks; the producer counts `completed` events until it has n. */
async function throughput(a: { queue: string; n: number; chunk: number; nonce: string }) {
  const q = await open(a.queue, Math.max(10_000, a.n * 4));
  let completed = 0;
  let t1 = 0;
  const done = new Promise<void>((resolve) => {
    q.events.on('completed', () => {
      if (++completed === a.n) {
        t1 = nowNs();
        resolve();
      }
    });
  });
  const t0 = nowNs();
  for (let i = 0; i < a.n; i += a.chunk) {
    const jobs = [];
    for (let j = i; j < Math.min(a.n, i + a.chunk); j++) jobs.push({ name: 'unit', data: { unit: j, run: a.nonce } });
    await q.queue.addBulk(jobs);
  }
  const tSubmitted = nowNs();
  await done;
  const counts = await q.queue.getJobCounts('completed', 'failed', 'wait', 'active');
  await close(q);
  return { t0, tSubmitted, t1, n: a.n, completed: counts['completed'] ?? 0, failed: counts['failed'] ?? 0 };
}

/** Light load: one job at a time; the processor returns the time it started. */
async function dispatch(a: { queue: string; n: number; warm: number }) {
  const q = await open(a.queue, 10_000);
  const startUs: number[] = [];
  const roundUs: number[] = [];
  for (let i = 0; i < a.warm + a.n; i++) {
    const t0 = nowNs();
    const job = await q.queue.add('lat', { i });
    const started = (await job.waitUntilFinished(q.events, 30_000)) as string;
    const t1 = nowNs();
    if (i < a.warm) continue;
    startUs.push((Number(started) - t0) / 1e3);
    roundUs.push((t1 - t0) / 1e3);
  }
  await close(q);
  return { start: summarize(startUs), round: summarize(roundUs) };
}

/** The nearest BullMQ has to cancelling a pending artifact: Job.remove() of a waiting job. */
async function removeWaiting(a: { queue: string; n: number; warm: number }) {
  const q = await open(a.queue, 10_000);
  const us: number[] = [];
  for (let i = 0; i < a.warm + a.n; i++) {
    const job: Job = await q.queue.add('pending', { i });
    const t0 = nowNs();
    await job.remove();
    const t1 = nowNs();
    if (i >= a.warm) us.push((t1 - t0) / 1e3);
  }
  const left = await q.queue.getJobCounts('wait');
  await close(q);
  if ((left['wait'] ?? 0) !== 0) throw new Error(`${left['wait']} jobs left waiting after remove`);
  return summarize(us);
}

/** The nearest BullMQ has to a subtree cancel: removing a flow parent with n waiting children. */
async function removeFlow(a: { queue: string; n: number }) {
  const q = await open(a.queue, 10_000);
  const flow = new FlowProducer({ connection });
  const children = Array.from({ length: a.n }, (_, i) => ({ name: 'child', queueName: a.queue, data: { i } }));
  const tree = await flow.add({ name: 'root', queueName: a.queue, data: {}, children });
  const before = await q.queue.getJobCounts('wait', 'waiting-children');
  const t0 = nowNs();
  await q.queue.remove(tree.job.id!, { removeChildren: true });
  const t1 = nowNs();
  const after = await q.queue.getJobCounts('wait', 'waiting-children');
  await flow.close();
  await close(q);
  return { ms: (t1 - t0) / 1e6, before, after };
}

/** Redis memory per waiting job: used_memory before and after addBulk of n jobs with empty data. */
async function memory(a: { queue: string; n: number; chunk: number }) {
  const q = await open(a.queue, 10_000);
  const redis = new Redis(connection);
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? NaN);
  const m0 = await used();
  for (let i = 0; i < a.n; i += a.chunk) {
    const jobs = [];
    for (let j = i; j < Math.min(a.n, i + a.chunk); j++) jobs.push({ name: 'm', data: {} });
    await q.queue.addBulk(jobs);
  }
  const m1 = await used();
  const waiting = (await q.queue.getJobCounts('wait'))['wait'] ?? 0;
  redis.disconnect();
  await close(q);
  return { bytesPerJob: (m1 - m0) / a.n, waiting };
}

/** Add n jobs to a queue (for the recovery scenario). */
async function addJobs(a: { queue: string; n: number }) {
  const queue = new Queue(a.queue, { connection });
  await queue.addBulk(Array.from({ length: a.n }, (_, i) => ({ name: 'rec', data: { i } })));
  await queue.close();
  return { added: a.n };
}

serve({ addJobs, throughput, dispatch, removeWaiting, removeFlow, memory });
emit('ready', { pid: process.pid });
