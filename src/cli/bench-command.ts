/** `atp bench`: run the benchmark harness (bench/, BENCHMARKS.md) with the same options as `npm run bench`. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

/** Register the command. */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks beside BullMQ and print one table (see BENCHMARKS.md)')
    .option('--short', 'small counts (what CI runs)')
    .option('--only <scenarios>', 'comma-separated: throughput, latency, cancel, recovery, hol, memory, renewal, profile')
    .option('--cpu-prof', 'also profile the throughput run and print the top functions')
    .option('--no-bullmq', 'skip the BullMQ peer')
    .option('--out <file>', 'where to write the JSON results')
    .action((flags: { short?: boolean; only?: string; cpuProf?: boolean; bullmq: boolean; out?: string }) => {
      const harness = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
      if (!existsSync(harness)) {
        process.stderr.write(`atp bench: the harness is not built at ${harness}; run "npm run build" in the repository\n`);
        process.exit(1);
      }
      const args = [
        ...(flags.short ? ['--short'] : []),
        ...(flags.only !== undefined ? [`--only=${flags.only}`] : []),
        ...(flags.cpuProf ? ['--cpu-prof'] : []),
        ...(flags.bullmq ? [] : ['--no-bullmq']),
        ...(flags.out !== undefined ? [`--out=${flags.out}`] : []),
      ];
      const r = spawnSync(process.execPath, ['--expose-gc', harness, ...args], { stdio: 'inherit' });
      process.exit(r.status ?? 1);
    });
}
