/**
 * A worker process for the chess example: `node dist/examples/chess/worker-main.js <url> [concurrency]`.
 * It does what `atp worker --connect <url> --module dist/examples/chess/handlers.js` does, for when
 * the CLI is not built; the run scripts use whichever exists (see worker-pool.ts).
 */
import { Worker } from '../../src/worker/worker.js';
import { handlers } from './handlers.js';

const [url, concurrencyArg = '1'] = process.argv.slice(2);
if (url === undefined) {
  console.error('usage: node dist/examples/chess/worker-main.js <coordinator url> [concurrency]');
  process.exit(2);
}
const worker = new Worker({ url, concurrency: Number(concurrencyArg) });
for (const [kind, fn] of Object.entries(handlers)) worker.handle(kind, fn);
await worker.start();
console.log(`chess worker pid ${process.pid} connected to ${url}, kinds ${Object.keys(handlers).join(', ')}`);
// SIGTERM: finish the leases held, then leave (ATP_SPEC §11.2 drain).
process.once('SIGTERM', () => {
  void worker
    .drain('finish')
    .then(() => worker.close())
    .then(() => process.exit(0));
});
