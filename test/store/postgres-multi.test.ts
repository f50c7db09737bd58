/**
 * Three coordinators share one PostgreSQL database; workers and producers are spread across them;
 * one coordinator is killed with SIGKILL mid-run (ATP_SPEC §11.7). Every artifact must end in
 * exactly one terminal state with exactly one accepted result.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Client } from '../../src/client/client.js';
import type { ArtifactHandle } from '../../src/client/handle.js';
import { Worker } from '../../src/worker/worker.js';

const PG_URL = process.env.ATP_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/postgres';
const SCHEMA = `atp_multi_${process.pid}`;
const fixture = fileURLToPath(new URL('../fixtures/pg-coordinator.js', import.meta.url));
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (process.env.ATP_SKIP_PG === '1') return;
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.end();
});

function startCoordinator(): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [fixture, PG_URL, SCHEMA], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    rl.once('line', (line) => resolve({ proc, url: (JSON.parse(line) as { url: string }).url }));
    proc.once('exit', (code) => reject(new Error(`coordinator exited with ${code}`)));
  });
}

void test(
  'three coordinators on one PostgreSQL: one killed mid-run, every artifact completes exactly once',
  { skip: process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false, timeout: 180_000 },
  async () => {
    // Start one first so that it creates the schema, then the other two.
    const first = await startCoordinator();
    const rest = await Promise.all([startCoordinator(), startCoordinator()]);
    const coords = [first, ...rest];
    const urls = coords.map((c) => c.url);
    const others = (i: number) => urls.filter((_, j) => j !== i);

    const workers: Worker[] = [];
    for (let i = 0; i < 6; i++) {
      const home = i % 3;
      const w = new Worker({ url: urls[home]!, fallbackUrls: others(home), concurrency: 8 });
      w.handle('multi.square', async (a) => {
        await new Promise((r) => setTimeout(r, 2));
        const n = Number(new TextDecoder().decode(a.payload));
        return String(n * n);
      });
      await w.start();
      workers.push(w);
    }
    const clients = await Promise.all(urls.map((u, i) => Client.connect(u, { fallbackUrls: others(i) })));

    const PER = 200;
    const handles: Array<{ n: number; h: ArtifactHandle }> = [];
    for (let i = 0; i < 3; i++) {
      const specs = Array.from({ length: PER }, (_, k) => ({ kind: 'multi.square', payload: String(i * PER + k) }));
      const hs = await clients[i]!.submitMany(specs);
      hs.forEach((h, k) => handles.push({ n: i * PER + k, h }));
    }
    // Kill coordinator 1 once some results are in.
    let done = 0;
    const results = handles.map(({ h }) =>
      h.result().then((r) => {
        done++;
        return r;
      }),
    );
    while (done < handles.length / 4) await new Promise((r) => setTimeout(r, 10));
    if (process.env.ATP_DEBUG) console.error('killing; done', done);
    coords[1]!.proc.kill('SIGKILL');
    if (process.env.ATP_DEBUG) {
      const settled = new Set<number>();
      results.forEach((r, i) => void r.then(() => settled.add(i)));
      setTimeout(() => {
        const open = handles.filter((_, i) => !settled.has(i));
        console.error(
          `after 20 s: ${open.length} open:`,
          open.slice(0, 5).map(({ n, h }) => `${n} ${h.id} home ${Math.floor(n / PER)}`),
        );
        clients.forEach((c, i) => console.error(`client ${i}: connected ${String(c.connection.connected)}`));
      }, 20_000).unref();
    }
    const outcomes = await Promise.all(results);

    for (let i = 0; i < handles.length; i++) {
      const o = outcomes[i]!;
      assert.equal(o.state, 'COMPLETED', `artifact ${handles[i]!.n} ended ${o.state} ${o.code ?? ''} ${o.message}`);
      assert.equal(new TextDecoder().decode(o.result), String(handles[i]!.n ** 2));
    }
    // The database agrees: every artifact COMPLETED once, none left in another state, no lease left.
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const states = await db.query(`SELECT state, count(*)::int AS n FROM ${SCHEMA}.atp_artifacts GROUP BY state`);
    assert.deepEqual(states.rows, [{ state: 3, n: handles.length }]);
    const leases = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.atp_leases`);
    assert.equal(leases.rows[0]?.n, 0);
    await db.end();

    for (const w of workers) await w.close();
    for (const c of clients) await c.close();
  },
);
