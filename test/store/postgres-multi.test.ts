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
import type { ArtifactHandle, ArtifactOutcome } from '../../src/client/handle.js';
import { Worker } from '../../src/worker/worker.js';

const PG_URL = process.env.ATP_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/postgres';
const SCHEMA = `atp_multi_${process.pid}`;
const PAUSED_SCHEMA = `atp_paused_${process.pid}`;
const fixture = fileURLToPath(new URL('../fixtures/pg-coordinator.js', import.meta.url));
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (process.env.ATP_SKIP_PG === '1') return;
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  for (const schema of [SCHEMA, PAUSED_SCHEMA]) await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.end();
});

interface Coord {
  proc: ChildProcess;
  url: string;
  coordinatorId: string;
  /** `adopted` and `disowned` events, as the fixture prints them. */
  events: Array<{ event: string; sessionId: string; leases: number }>;
}

function startCoordinator(schema = SCHEMA): Promise<Coord> {
  const proc = spawn(process.execPath, [fixture, PG_URL, schema], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    let c: Coord | undefined;
    rl.on('line', (line) => {
      const m = JSON.parse(line) as Record<string, unknown>;
      if (c === undefined) resolve((c = { proc, url: m.url as string, coordinatorId: m.coordinatorId as string, events: [] }));
      else c.events.push(m as unknown as Coord['events'][number]);
    });
    proc.once('exit', (code) => reject(new Error(`coordinator exited with ${code}`)));
  });
}

async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<void> {
  const giveUp = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > giveUp) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every artifact COMPLETED once with the right result, none in another state, no lease left. */
async function assertAllCompleted(outcomes: Array<{ n: number; o: ArtifactOutcome }>, total: number, schema: string): Promise<void> {
  for (const { n, o } of outcomes) {
    assert.equal(o.state, 'COMPLETED', `artifact ${n} ended ${o.state} ${o.code ?? ''} ${o.message}`);
    assert.equal(new TextDecoder().decode(o.result), String(n ** 2));
  }
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  const states = await db.query(`SELECT state, count(*)::int AS n FROM ${schema}.atp_artifacts GROUP BY state`);
  assert.deepEqual(states.rows, [{ state: 3, n: total }]);
  const leases = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.atp_leases`);
  assert.equal(leases.rows[0]?.n, 0);
  await db.end();
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
    await assertAllCompleted(
      outcomes.map((o, i) => ({ n: handles[i]!.n, o })),
      handles.length,
      SCHEMA,
    );

    for (const w of workers) await w.close();
    for (const c of clients) await c.close();
  },
);

void test(
  'a coordinator paused past the reclaim delay, resumed, then killed: its sessions are fenced and every artifact completes exactly once',
  { skip: process.env.ATP_SKIP_PG === '1' ? 'no PostgreSQL server on this machine' : false, timeout: 180_000 },
  async () => {
    // ATP_SPEC ATP-11.8-6. A is taken for dead while it is only stopped (SIGSTOP: a long pause, as
    // under a stalled VM); B reclaims its sessions. When A runs again it must not grant under them,
    // and must hand its worker a session it owns; then A dies for real.
    const a = await startCoordinator(PAUSED_SCHEMA);
    const b = await startCoordinator(PAUSED_SCHEMA);
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const sessionsOf = async (c: Coord) =>
      (
        await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${PAUSED_SCHEMA}.atp_sessions WHERE coordinator_id = $1`, [
          c.coordinatorId,
        ])
      ).rows[0]!.n;
    const handler = async (art: { payload: Uint8Array }) => {
      await new Promise((r) => setTimeout(r, 10));
      const n = Number(new TextDecoder().decode(art.payload));
      return String(n * n);
    };
    const onA = new Worker({ url: a.url, fallbackUrls: [b.url], concurrency: 4 });
    onA.handle('paused.square', handler);
    await onA.start();
    const client = await Client.connect(b.url, { fallbackUrls: [a.url] });
    const TOTAL = 600;
    const hs = await client.submitMany(Array.from({ length: TOTAL }, (_, n) => ({ kind: 'paused.square', payload: String(n) })));
    let done = 0;
    const results = hs.map((h) => h.result().then((o) => (done++, o)));
    await until('some results before the pause', () => done >= 20);

    a.proc.kill('SIGSTOP');
    // B (which has no worker of its own yet) reclaims A's worker session once A is silent long enough.
    await until("B reclaims A's worker session", async () => (await sessionsOf(a)) === 0);
    // A worker on B keeps the work going meanwhile.
    const onB = new Worker({ url: b.url, fallbackUrls: [a.url], concurrency: 4 });
    onB.handle('paused.square', handler);
    await onB.start();
    a.proc.kill('SIGCONT');
    // A learns that the session is no longer its own, ends it, and its worker gets a new one there.
    await until('A disowns the session', () => a.events.some((e) => e.event === 'disowned'));
    await until("A's worker has a session A owns again", async () => (await sessionsOf(a)) === 1);
    await until('more results after the pause', () => done >= TOTAL / 2);
    a.proc.kill('SIGKILL');

    const outcomes = await Promise.all(results);
    await assertAllCompleted(
      outcomes.map((o, n) => ({ n, o })),
      TOTAL,
      PAUSED_SCHEMA,
    );
    await db.end();
    await onA.close();
    await onB.close();
    await client.close();
  },
);
