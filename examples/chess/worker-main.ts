/**
 * A worker process for the chess example:
 *
 *   node dist/examples/chess/worker-main.js <url> [--concurrency N] [--threads N] [--kinds chess.perft,chess.search]
 *
 * In-process handlers (the default) do what `atp worker --connect <url> --module
 * dist/examples/chess/handlers.js` does; the run scripts use the CLI when it is built. With
 * --threads N, each kind runs in a pool of N worker_threads (worker.handleInThreads): one process
 * then uses N cores.
 */
import { Worker } from '../../src/worker/worker.js';
import { handlers } from './handlers.js';

const [url, ...rest] = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = rest.indexOf(`--${name}`);
  return i < 0 ? undefined : rest[i + 1];
};
if (url === undefined || url.startsWith('--')) {
  console.error('usage: node dist/examples/chess/worker-main.js <coordinator url> [--concurrency N] [--threads N] [--kinds k1,k2]');
  process.exit(2);
}
const kinds = (flag('kinds') ?? Object.keys(handlers).join(',')).split(',') as Array<keyof typeof handlers>;
const threads = flag('threads') === undefined ? 0 : Number(flag('threads'));
const worker = new Worker({ url, concurrency: Number(flag('concurrency') ?? 1) });
const exportNames: Record<keyof typeof handlers, string> = { 'chess.perft': 'perftHandler', 'chess.search': 'searchHandler' };
for (const kind of kinds) {
  if (handlers[kind] === undefined) throw new Error(`unknown kind ${kind}; the kinds are ${Object.keys(handlers).join(', ')}`);
  if (threads > 0) worker.handleInThreads(kind, { module: new URL('./handlers.js', import.meta.url), export: exportNames[kind], threads });
  else worker.handle(kind, handlers[kind]);
}
await worker.start();
console.log(
  `chess worker pid ${process.pid} connected to ${url}, kinds ${kinds.join(', ')}${threads > 0 ? `, ${threads} threads per kind` : ''}`,
);
// SIGTERM: finish the leases held, then leave (ATP_SPEC §11.2 drain).
process.once('SIGTERM', () => {
  void worker
    .drain('finish')
    .then(() => worker.close())
    .then(() => process.exit(0));
});
