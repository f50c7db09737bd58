/**
 * A worker process of the agents example:
 *
 *   node dist/examples/agents/worker-main.js <coordinator url> [--threads N]
 *
 * It takes `agents.solve` leases and runs each in a worker thread (agent-thread.ts), so that a
 * solver that never yields does not delay renewals or the REVOKE that stops it. Stop reports that
 * the threads post on the report channel are printed as `AGENTS-REPORT {json}` lines.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { Worker } from '../../src/worker/worker.js';
import { REPORT_CHANNEL, REPORT_PREFIX, SOLVE_KIND } from './protocol.js';
import type { StopReport } from './protocol.js';

const [url, ...rest] = process.argv.slice(2);
if (url === undefined || url.startsWith('--')) {
  console.error('usage: node dist/examples/agents/worker-main.js <coordinator url> [--threads N]');
  process.exit(2);
}
const i = rest.indexOf('--threads');
const threads = i < 0 ? 1 : Number(rest[i + 1]);
if (!Number.isInteger(threads) || threads < 1) {
  console.error(`--threads must be a positive integer, got ${rest[i + 1]}`);
  process.exit(2);
}

const reports = new BroadcastChannel(REPORT_CHANNEL);
reports.onmessage = (ev: unknown) => {
  const report = (ev as { data: StopReport }).data;
  process.stdout.write(`${REPORT_PREFIX}${JSON.stringify({ ...report, pid: process.pid })}\n`);
};

const worker = new Worker({ url });
worker.handleInThreads(SOLVE_KIND, { module: new URL('./agent-thread.js', import.meta.url), threads });
await worker.start();
console.log(`agents worker pid ${process.pid} connected to ${url}, ${threads} solver thread(s)`);
process.once('SIGTERM', () => {
  reports.close();
  void worker.close().then(() => process.exit(0));
});
