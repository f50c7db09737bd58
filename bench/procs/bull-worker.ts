/**
 * Benchmark child: one BullMQ Worker on the harness's Redis, doing what the ATP worker child does
 * (`noop`, `cpu1ms`, `stamp`; `hold` never finishes, `relay` reports its start) with the same
 * concurrency and BullMQ's default lock settings.
 */
import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { childConfig, emit, nowNs, serve, spin } from '../lib/ipc.js';

/** Configuration of the BullMQ worker child. */
export interface BullWorkerConfig {
  redis: { host: string; port: number };
  queue: string;
  concurrency: number;
  mode: 'noop' | 'cpu1ms' | 'stamp' | 'hold' | 'relay';
}

const cfg = childConfig<BullWorkerConfig>();
let processed = 0;
const processor = (job: Job): Promise<string | undefined> => {
  processed++;
  if (cfg.mode === 'cpu1ms') spin(1);
  if (cfg.mode === 'hold' || cfg.mode === 'relay') emit('started', { id: job.id, t: nowNs(), attempt: job.attemptsStarted });
  if (cfg.mode === 'hold') return new Promise<undefined>(() => undefined);
  return Promise.resolve(cfg.mode === 'stamp' ? String(nowNs()) : undefined);
};
const worker = new Worker(cfg.queue, processor, { connection: cfg.redis, concurrency: cfg.concurrency });
worker.on('error', (err) => console.error(`bullmq worker: ${err.message}`));
await worker.waitUntilReady();

serve({
  stats: () => ({ processed }),
  exit: async () => {
    await worker.close();
  },
});
emit('ready', { pid: process.pid });
