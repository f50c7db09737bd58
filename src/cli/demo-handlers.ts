/**
 * Handlers used by `atp demo` (and a template for your own): real computation, with progress
 * streamed as partial results and the cancel signal honoured.
 */
import type { HandlerContext, LeasedArtifact } from '../worker/worker.js';

const dec = new TextDecoder();

/** Count the primes in [from, to): payload `{"from":N,"to":M}`; result `{"from","to","primes","pid"}`. */
async function countPrimes(artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> {
  const { from, to } = JSON.parse(dec.decode(artifact.payload)) as { from: number; to: number };
  // Resume from a checkpoint left by an earlier lease of this artifact.
  const resumed =
    ctx.checkpointData === undefined ? undefined : (JSON.parse(dec.decode(ctx.checkpointData)) as { next: number; primes: number });
  let n = resumed?.next ?? from;
  let primes = resumed?.primes ?? 0;
  const step = Math.max(1, Math.floor((to - from) / 4));
  let nextReport = n + step;
  while (n < to) {
    // Work in slices and yield between them, so that renewals and a cancel reach this handler.
    const end = Math.min(to, n + 5_000);
    for (; n < end; n++) if (isPrime(n)) primes++;
    await new Promise((r) => setImmediate(r));
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (n >= nextReport && n < to) {
      nextReport += step;
      ctx.partial(JSON.stringify({ done: Math.round(((n - from) / (to - from)) * 100), primes }));
      await ctx.checkpoint(JSON.stringify({ next: n, primes }));
    }
  }
  return JSON.stringify({ from, to, primes, pid: process.pid, resumedAt: resumed?.next ?? null });
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** The demo's handler table: `atp worker --module` loads modules of this shape. */
export const handlers = {
  'primes.count': countPrimes,
};
