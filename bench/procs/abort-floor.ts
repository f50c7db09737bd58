/**
 * Benchmark child: the platform's floor under a subtree cancel. It holds `n` AbortControllers, each
 * signal with one 'abort' listener that stamps the time and settles a promise, as the scenario's
 * 'hold' handlers do, and on request aborts them all, one by one, with one shared reason. Nothing
 * else runs: no socket, no frame, no SDK.
 */
import { childConfig, emit, nowNs, serve } from '../lib/ipc.js';

const cfg = childConfig<{ n: number }>();
const controllers: AbortController[] = [];
const settled: Array<Promise<void>> = [];
let lastNs = 0;
let fired = 0;
for (let i = 0; i < cfg.n; i++) {
  const c = new AbortController();
  settled.push(
    new Promise<void>((resolve) =>
      c.signal.addEventListener(
        'abort',
        () => {
          fired++;
          lastNs = nowNs();
          resolve();
        },
        { once: true },
      ),
    ),
  );
  controllers.push(c);
}

serve({
  abortAll: async () => {
    const t0 = nowNs();
    const reason = new Error('cancelled');
    for (const c of controllers) c.abort(reason);
    await Promise.all(settled);
    return { t0, lastNs, fired };
  },
});
emit('ready', { pid: process.pid });
