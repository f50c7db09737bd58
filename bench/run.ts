/**
 * The benchmark harness: `npm run bench` (full, about 10 minutes) or `node dist/bench/run.js --short`
 * (CI: small counts, under a minute, exits non-zero when a scenario fails functionally; targets are
 * printed, never enforced). Options:
 *   --short            small counts
 *   --only=a,b         run only these scenarios (throughput, latency, cancel, recovery, hol, memory, renewal)
 *   --cpu-prof         also run the ATP throughput scenario with the coordinator (and the producer and
 *                      one worker) under --cpu-prof, and print the top self-time functions
 *   --no-bullmq        skip the BullMQ peer
 *   --out=FILE         where to write the JSON results (default bench/results/latest.json)
 * Every peer runs in the same invocation; one table is printed at the end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from './lib/context.js';
import { machineInfo } from './lib/machine.js';
import { killAll, stopAll } from './lib/proc.js';
import { startRedis } from './lib/redis.js';
import { postgresUrl } from './lib/stores.js';
import { report } from './report.js';
import { cancel } from './scenarios/cancel.js';
import { hol } from './scenarios/hol.js';
import { latency } from './scenarios/latency.js';
import { memory } from './scenarios/memory.js';
import { profile } from './scenarios/profile.js';
import { recovery } from './scenarios/recovery.js';
import { renewal } from './scenarios/renewal.js';
import { throughput } from './scenarios/throughput.js';

const SCENARIOS: Record<string, (b: Bench) => Promise<void>> = { throughput, latency, cancel, recovery, hol, memory, renewal };

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const unknown = args.filter((a) => !/^--(short|cpu-prof|no-bullmq|only=.*|out=.*)$/.test(a));
if (unknown.length > 0) {
  console.error(
    `unknown option(s): ${unknown.join(' ')}\nusage: node dist/bench/run.js [--short] [--only=${Object.keys(SCENARIOS).join(',')}] [--cpu-prof] [--no-bullmq] [--out=FILE]`,
  );
  process.exit(2);
}
const only = option('only')?.split(',') ?? Object.keys(SCENARIOS);
for (const name of only) {
  if (!(name in SCENARIOS) && name !== 'profile') {
    console.error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}, profile`);
    process.exit(2);
  }
}
const out = option('out') ?? path.join(repo, 'bench', 'results', 'latest.json');

const b = new Bench(flag('short'));
const machine = machineInfo();
const startedAt = new Date();
const t0 = Date.now();
const hardLimitMs = (b.short ? 5 : 30) * 60_000;
const hard = setTimeout(() => {
  console.error(`the benchmark did not finish within ${hardLimitMs / 60_000} minutes`);
  killAll();
  process.exit(3);
}, hardLimitMs);
hard.unref();
process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

async function main(): Promise<void> {
  console.log(
    `ATP benchmarks${b.short ? ' (--short)' : ''}: ${only.join(', ')}${flag('cpu-prof') ? ' + cpu profile' : ''}; stores: ${b.stores.join(', ')}`,
  );
  if (!flag('no-bullmq')) {
    try {
      b.redis = await startRedis();
      console.log(`redis-server ${b.redis.version} on 127.0.0.1:${b.redis.port}`);
    } catch (err) {
      b.notes.push(`BullMQ peer skipped: ${err instanceof Error ? err.message : String(err)}`);
      console.log(`BullMQ peer skipped: ${String(err)}`);
    }
  }
  if (only.includes('throughput') || only.includes('profile')) {
    const pg = postgresUrl(repo);
    if (pg.url !== undefined) {
      b.throughputStores.push('postgres');
      console.log(`PostgreSQL for the throughput scenarios at ${pg.url}`);
    } else {
      b.notes.push(`ATP PostgreSQL column skipped: ${pg.why ?? 'no server'}`);
      console.log(`ATP PostgreSQL column skipped: ${pg.why ?? 'no server'}`);
    }
  }
  for (const name of only) {
    const run = SCENARIOS[name];
    if (run === undefined) continue;
    const st = Date.now();
    console.log(`== ${name}`);
    try {
      await run(b);
    } catch (err) {
      b.fail(name, err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
    console.log(`   (${((Date.now() - st) / 1000).toFixed(1)} s)`);
  }
  if (flag('cpu-prof') || only.includes('profile')) {
    console.log('== profile');
    try {
      await profile(b, path.join(repo, 'bench', 'results', 'profiles'));
    } catch (err) {
      b.fail('profile', err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
  }
}

try {
  await main();
} finally {
  await stopAll();
  await b.redis?.stop();
  b.cleanup();
}
const seconds = (Date.now() - t0) / 1000;
const text = report(b, machine, startedAt, seconds);
console.log(`\n${text}`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ startedAt: startedAt.toISOString(), seconds, short: b.short, machine, settings: b.settings, stores: b.stores, rows: b.rows, notes: b.notes, failures: b.failures, raw: b.raw }, null, 2)}\n`,
);
console.log(`\nresults written to ${path.relative(process.cwd(), out)}`);
process.exit(b.failures.length > 0 ? 1 : 0);
