/**
 * --cpu-prof: the ATP throughput scenario (memory store, no-op handlers) with the coordinator, the
 * producer and one worker under node --cpu-prof; prints the functions with the most self time.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Bench } from '../lib/context.js';
import { fmt } from '../lib/context.js';
import { atpThroughput } from './throughput.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One line of a self-time table. */
export interface SelfTime {
  fn: string;
  where: string;
  selfMs: number;
  percent: number;
}

/** Self time per function (summed over call sites), largest first. */
export function selfTimes(file: string, repo: string): { totalMs: number; top: SelfTime[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const acc = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    total += dt;
    const cf = node.callFrame;
    const url = cf.url.startsWith('file://') ? path.relative(repo, new URL(cf.url).pathname) : cf.url;
    const where = url === '' ? '' : `${url}:${cf.lineNumber + 1}`;
    const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName;
    const key = `${fn} ${where}`;
    const e = acc.get(key) ?? { fn, where, us: 0 };
    e.us += dt;
    acc.set(key, e);
  }
  const top = [...acc.values()]
    .sort((a, b) => b.us - a.us)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: e.us / 1e3, percent: (e.us / Math.max(1, total)) * 100 }));
  return { totalMs: total / 1e3, top };
}

function render(title: string, r: { totalMs: number; top: SelfTime[] }, count: number): string {
  const lines = [
    `${title} (${fmt.ms(r.totalMs, 0)} sampled)`,
    '|  self ms |     % | function | where |',
    '|---------:|------:|----------|-------|',
  ];
  for (const t of r.top.slice(0, count))
    lines.push(`| ${t.selfMs.toFixed(1).padStart(8)} | ${t.percent.toFixed(1).padStart(5)} | ${t.fn} | ${t.where} |`);
  return lines.join('\n');
}

/** Run the profiled throughput scenario and print its profiles. */
export async function profile(b: Bench, dir: string): Promise<void> {
  const repo = path.resolve(dir, '..', '..', '..');
  rmSync(dir, { recursive: true, force: true });
  const dirs = { coordinator: path.join(dir, 'coordinator'), driver: path.join(dir, 'producer'), worker: path.join(dir, 'worker') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const flags = (d: string) => ['--cpu-prof', `--cpu-prof-dir=${d}`];
  const n = b.settings.throughputN;
  console.log(`  ATP memory, no-op, N=${fmt.int(n)}, under --cpu-prof ...`);
  const r = await atpThroughput(b, 'memory', 'noop', n, {
    coordinator: flags(dirs.coordinator),
    driver: flags(dirs.driver),
    worker: flags(dirs.worker),
  });
  console.log(`    ${fmt.int(r.perSecond)}/s under the profiler`);
  const out: string[] = [];
  const results: Record<string, { totalMs: number; top: SelfTime[] }> = {};
  for (const [role, d] of Object.entries(dirs)) {
    const files = readdirSync(d).filter((f) => f.endsWith('.cpuprofile'));
    if (!b.expect('profile', files.length === 1, `${files.length} profiles written for the ${role}`)) continue;
    results[role] = selfTimes(path.join(d, files[0]!), repo);
    out.push(render(`${role} top ${role === 'coordinator' ? 20 : 10} self time`, results[role], role === 'coordinator' ? 20 : 10));
  }
  b.raw['profile'] = {
    n,
    perSecondUnderProfiler: r.perSecond,
    cpu: r.cpu,
    top: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { totalMs: v.totalMs, top: v.top.slice(0, 30) }])),
  };
  const text = out.join('\n\n');
  b.notes.push(
    `CPU profile of the ATP throughput run (memory store, N=${fmt.int(n)}, ${fmt.int(r.perSecond)}/s under the profiler; CPU seconds ${JSON.stringify(r.cpu)}); profiles in ${path.relative(repo, dir)}/:\n\n${text}`,
  );
}
