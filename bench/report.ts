/** The table: machine and settings above, one row per measurement, targets beside them. */
import os from 'node:os';
import type { Bench, Row } from './lib/context.js';
import type { MachineInfo } from './lib/machine.js';

function pad(s: string, n: number): string {
  return s + ' '.repeat(Math.max(0, n - [...s].length));
}

/** Render rows as a Markdown table (it reads as plain text too). */
export function table(rows: readonly Row[], stores: readonly string[], hasBull: boolean): string {
  const cols: Array<{ title: string; get: (r: Row) => string }> = [
    { title: 'scenario', get: (r) => r.scenario },
    { title: 'metric', get: (r) => r.metric },
    { title: 'ATP memory', get: (r) => r.memory ?? '' },
  ];
  if (stores.includes('sqlite')) cols.push({ title: 'ATP SQLite', get: (r) => r.sqlite ?? '' });
  if (rows.some((r) => r.postgres !== undefined)) cols.push({ title: 'ATP PostgreSQL', get: (r) => r.postgres ?? '' });
  if (hasBull) cols.push({ title: 'BullMQ', get: (r) => r.bullmq ?? '' });
  cols.push({ title: 'target', get: (r) => r.target ?? '' }, { title: 'result', get: (r) => r.result ?? '' });
  const width = cols.map((c) => Math.max([...c.title].length, ...rows.map((r) => [...c.get(r)].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => pad(c, width[i]!)).join(' | ')} |`;
  const out = [line(cols.map((c) => c.title)), `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`];
  let last = '';
  for (const r of rows) {
    out.push(line(cols.map((c, i) => (i === 0 && r.scenario === last ? '' : c.get(r)))));
    last = r.scenario;
  }
  return out.join('\n');
}

/** The whole report: header, settings, table, notes, failures. */
export function report(b: Bench, machine: MachineInfo, startedAt: Date, seconds: number): string {
  const s = b.settings;
  const loadEnd = Math.round(os.loadavg()[0]! * 100) / 100;
  const pk = Object.entries(machine.packages)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const head = [
    `ATP benchmarks (${b.short ? '--short: small counts, functional checks only' : 'full'}), ${startedAt.toISOString()}, ${seconds.toFixed(0)} s`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}; node ${machine.node}; ` +
      `load average (1 min) ${machine.loadStart} at start, ${loadEnd} at end${Math.max(machine.loadStart, loadEnd) > machine.cores * 0.75 ? ' — OTHER WORK WAS RUNNING: treat the numbers as noisy' : ''}`,
    `packages: ${pk}`,
    `settings: ${s.workers} worker processes × concurrency ${s.concurrency} (ATP credits = BullMQ concurrency); submit in awaited chunks of ${s.chunk} (ATP submitMany, BullMQ addBulk); ` +
      `every peer in its own processes (coordinator | redis-server, ${s.workers} workers, 1 producer); redis-server --save '' --appendonly no; ATP coordinator defaults (lease ttl 30 s, heartbeat 10 s) unless a row says otherwise`,
  ];
  const parts = [head.join('\n'), '', table(b.rows, b.stores, b.redis !== undefined)];
  if (b.notes.length > 0) parts.push('', ...b.notes.map((n) => `- ${n}`));
  if (b.failures.length > 0) parts.push('', `FUNCTIONAL FAILURES (${b.failures.length}):`, ...b.failures.map((f) => `- ${f}`));
  return parts.join('\n');
}
