/**
 * Crash test of the SQLite store with real processes: a coordinator process is killed with
 * SIGKILL while thousands of artifacts flow, at a random moment, and restarted on the same file
 * (and port) three times. Producer and workers run in this process with the SDKs and reconnect.
 * The resume window is 300 ms, mostly shorter than a restart, so the workers' sessions are lost and
 * their leases re-issued; after the last crash it is 5 s (as is the lease ttl), so that the workers
 * resume their sessions and deliver results under the leases they held. A lease whose LEASE frame
 * died with the coordinator is not named by the resumed worker, ends by ttl and is re-issued.
 * At the end every accepted artifact is COMPLETED exactly once, every result acknowledged before a
 * crash is the one kept, and the leases held at each crash were resumed or re-issued at a higher
 * epoch. ATP_SPEC §3.2 (ACCEPTED after durable), §6.1 (exactly once), §11.6 (resume).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Client } from '../../src/client/client.js';
import type { SubmitSpec } from '../../src/client/client.js';
import { toHex } from '../../src/internal/ids.js';
import type { Message } from '../../src/wire/index.js';
import { Worker } from '../../src/worker/worker.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/sqlite-coordinator.js', import.meta.url));
const ARTIFACTS = 3000;
const CRASHES = 3;
const WORKERS = 3;
const CONCURRENCY = 16;
/** The COMPLETE message type, as ACK.ackedType names it. */
const COMPLETE_TYPE = 0x0027;
/** Safety bound of every wait loop, so that a broken build fails instead of hanging. */
const DEADLINE_MS = 50_000;

/** A seeded generator (mulberry32), so that a failing run can be repeated with ATP_CRASH_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Running {
  child: ChildProcess;
  url: string;
  started: { sessions: number; leases: number };
  exited: Promise<number | null>;
}

/** Start the coordinator fixture and wait for its URL. */
async function startCoordinator(path: string, port: number, resumeWindowMs = 300): Promise<Running> {
  const child = spawn(process.execPath, [FIXTURE, path, String(port), String(resumeWindowMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout });
  let started = { sessions: 0, leases: 0 };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the coordinator did not print its URL within 15 s')), 15_000);
    lines.on('line', (line) => {
      const m = JSON.parse(line) as { url?: string; started?: { sessions: number; leases: number } };
      if (m.started !== undefined) started = m.started;
      if (m.url !== undefined) {
        clearTimeout(timer);
        resolve(m.url);
      }
    });
    void exited.then((code) => reject(new Error(`the coordinator exited with ${String(code)} before listening`)));
  });
  return { child, url, started, exited };
}

interface HeldOnDisk {
  artifactId: string;
  leaseId: string;
  epoch: number;
  sessionId: string;
}

/** The current leases in the database file, as a crash left them. */
function heldLeasesOnDisk(path: string): HeldOnDisk[] {
  const db = new Database(path);
  try {
    const rows = db.prepare('SELECT id, leases FROM artifacts WHERE leases IS NOT NULL').all() as Array<{ id: string; leases: string }>;
    return rows.flatMap((r) =>
      (JSON.parse(r.leases) as Array<{ leaseId: string; epoch: number; sessionId: string }>).map((l) => ({
        artifactId: r.id,
        leaseId: l.leaseId,
        epoch: l.epoch,
        sessionId: l.sessionId,
      })),
    );
  } finally {
    db.close();
  }
}

async function until(what: string, cond: () => boolean, startedAt: number): Promise<void> {
  while (!cond()) {
    if (performance.now() - startedAt > DEADLINE_MS) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

void it(
  'SIGKILL of the coordinator while artifacts flow loses no accepted artifact and no acknowledged result',
  { timeout: 90_000 },
  async (t) => {
    const seed = Number(process.env['ATP_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    t.diagnostic(`seed ${seed} (ATP_CRASH_SEED=${seed} repeats the crash moments)`);
    const rand = random(seed);
    const t0 = performance.now();
    const dir = mkdtempSync(join(tmpdir(), 'atp-crash-'));
    const path = join(dir, 'atp.db');
    let coord = await startCoordinator(path, 0);
    const port = Number(new URL(coord.url).port);
    const cleanup: Array<() => Promise<unknown>> = [];
    t.after(async () => {
      for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
      coord.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    // What the workers ran: lease id -> artifact, epoch, the result sent under it.
    const runs = new Map<string, { artifactId: string; epoch: number; result: string }>();
    // COMPLETE acknowledgements received: lease ids, in order.
    const acked: string[] = [];
    const workers: Worker[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const w = new Worker({ url: coord.url, concurrency: CONCURRENCY });
      w.handle('crash', async (a, ctx) => {
        const result = `${a.id}/${ctx.leaseId}/${ctx.epoch}`;
        runs.set(ctx.leaseId, { artifactId: a.id, epoch: ctx.epoch, result });
        await sleep(5 + Math.floor(Math.random() * 20));
        return result;
      });
      await w.start();
      // Observe acknowledgements on the connection the SDK uses (the SDK keeps only a count).
      const conn = w.connection;
      const listen = conn.listen.bind(conn);
      conn.listen = (stream: number, fn: (m: Message) => void) =>
        listen(stream, (m) => {
          if (m.type === 'ACK' && m.ackedType === COMPLETE_TYPE) acked.push(toHex(m.subject));
          fn(m);
        });
      workers.push(w);
      cleanup.push(() => w.close());
    }
    const client = await Client.connect(coord.url);
    cleanup.push(() => client.close());

    // The producer: paced submissions; a SUBMIT refused because the coordinator is down is sent again (idempotent).
    const specs: SubmitSpec[] = Array.from({ length: ARTIFACTS }, (_, i) => ({
      kind: 'crash',
      payload: `job-${i}`,
      maxAttempts: 100,
      leaseTtlMs: 5000,
      follow: 'none',
    }));
    const accepted = new Set<string>();
    let retries = 0;
    const producer = (async () => {
      let queue = specs.slice();
      while (queue.length > 0) {
        if (performance.now() - t0 > DEADLINE_MS) throw new Error('the producer could not submit everything in time');
        const batch = queue.slice(0, 100);
        queue = queue.slice(100);
        const outs = await Promise.allSettled(batch.map((s) => client.submit(s)));
        outs.forEach((o, i) => {
          if (o.status === 'fulfilled') accepted.add(o.value.id);
          else {
            retries++;
            queue.push(batch[i]!);
          }
        });
        await sleep(outs.some((o) => o.status === 'rejected') ? 50 : 20);
      }
    })();

    // Kill at random moments while work flows, and restart on the same file and port.
    const crashes: Array<{
      held: HeldOnDisk[];
      ackedBefore: number;
      acceptedBefore: number;
    }> = [];
    for (let k = 0; k < CRASHES; k++) {
      const target = acked.length + 250 + Math.floor(rand() * 350);
      await until(`${target} acknowledged results before crash ${k + 1}`, () => acked.length >= target, t0);
      await sleep(Math.floor(rand() * 40));
      const ackedBefore = acked.length;
      const acceptedBefore = accepted.size;
      coord.child.kill('SIGKILL');
      await coord.exited;
      const held = heldLeasesOnDisk(path);
      crashes.push({ held, ackedBefore, acceptedBefore });
      coord = await startCoordinator(path, port, k === CRASHES - 1 ? 5000 : 300);
      const welcomes = workers.map((w) => w.connection.welcome);
      await until(
        `the workers to reconnect after crash ${k + 1}`,
        () => workers.every((w, i) => w.connection.connected && w.connection.welcome !== welcomes[i]),
        t0,
      );
      const resumedSessions = workers.filter((w) => w.connection.welcome?.resumed === 1).length;
      // The session tokens are in the store: within a 5 s window every worker resumes its session.
      if (k === CRASHES - 1) assert.equal(resumedSessions, WORKERS, 'every worker resumed its session after the last restart');
      t.diagnostic(
        `crash ${k + 1}: ${resumedSessions} of ${WORKERS} worker sessions resumed; ${acceptedBefore} accepted, ${ackedBefore} results acknowledged, ${held.length} leases held; restarted with ${coord.started.sessions} sessions, ${coord.started.leases} leases`,
      );
    }
    await producer;
    assert.equal(accepted.size, ARTIFACTS);
    assert.ok(
      crashes.some((c) => c.acceptedBefore < ARTIFACTS),
      'at least one crash happened while artifacts were still being submitted',
    );
    assert.ok(
      crashes.some((c) => c.held.length > 0),
      'a crash happened while leases were held',
    );

    // Requests of the producer wait for it to be reconnected, and are sent again if the connection drops.
    const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      for (;;) {
        await until(`the producer to reconnect (${what})`, () => client.connection.connected, t0);
        try {
          return await fn();
        } catch (err) {
          if (performance.now() - t0 > DEADLINE_MS) throw err;
          await sleep(50);
        }
      }
    };

    // Wait until everything is COMPLETED, asking the coordinator about what was not acknowledged.
    const completed = new Set(acked.map((l) => runs.get(l)!.artifactId));
    while (completed.size < ARTIFACTS) {
      if (performance.now() - t0 > DEADLINE_MS) throw new Error(`only ${completed.size} of ${ARTIFACTS} artifacts completed in time`);
      for (const l of acked) completed.add(runs.get(l)!.artifactId);
      const open = [...accepted].filter((id) => !completed.has(id));
      for (let i = 0; i < open.length; i += 200) {
        const states = await retrying('query', () => Promise.all(open.slice(i, i + 200).map((id) => client.query(id))));
        for (const s of states) if (s.state === 'COMPLETED') completed.add(s.id);
      }
      if (completed.size < ARTIFACTS) await sleep(200);
    }

    // Exactly once: one result per artifact, the acknowledged one where there was an acknowledgement.
    const ackedPerArtifact = new Map<string, string[]>();
    for (const l of acked) {
      const run = runs.get(l)!;
      ackedPerArtifact.set(run.artifactId, [...(ackedPerArtifact.get(run.artifactId) ?? []), l]);
    }
    const finalRun = new Map<string, { leaseId: string; epoch: number }>();
    for (let i = 0; i < ARTIFACTS; i += 200) {
      const ids = [...accepted].slice(i, i + 200);
      const outcomes = await retrying('outcome', () => Promise.all(ids.map((id) => client.outcome(id))));
      outcomes.forEach((o, j) => {
        const id = ids[j]!;
        assert.equal(o?.state, 'COMPLETED', `artifact ${id}`);
        const [rid, leaseId, epoch] = new TextDecoder().decode(o.result).split('/');
        assert.equal(rid, id);
        assert.ok(runs.has(leaseId!), `the result of ${id} comes from a lease a worker ran`);
        finalRun.set(id, { leaseId: leaseId!, epoch: Number(epoch) });
        const acks = ackedPerArtifact.get(id) ?? [];
        assert.ok(acks.length <= 1, `artifact ${id} had ${acks.length} results acknowledged`);
        if (acks.length === 1) assert.equal(leaseId, acks[0], `the acknowledged result of ${id} is the one kept`);
      });
    }

    // Leases held at a crash were resumed (the result came under that very lease) or re-issued at a higher epoch.
    let resumed = 0;
    let reissued = 0;
    const perCrash: string[] = [];
    for (const c of crashes) {
      let r = 0;
      for (const h of c.held) {
        const f = finalRun.get(h.artifactId)!;
        if (f.leaseId === h.leaseId) r++;
        else {
          assert.ok(f.epoch > h.epoch, `artifact ${h.artifactId} held at epoch ${h.epoch} at a crash completed at epoch ${f.epoch}`);
          reissued++;
        }
      }
      resumed += r;
      perCrash.push(`${r} of ${c.held.length} (${new Set(c.held.map((h) => h.sessionId)).size} sessions)`);
    }
    t.diagnostic(`held leases resumed per crash: ${perCrash.join(', ')}`);
    t.diagnostic(
      `${acked.length} results acknowledged, ${retries} submits sent again, held at crashes: ${resumed} resumed, ${reissued} re-issued at a higher epoch; ${Math.round(performance.now() - t0)} ms`,
    );

    // On disk after a clean stop: every artifact COMPLETED, no lease left.
    for (const fn of cleanup.splice(0).reverse()) await fn();
    coord.child.kill('SIGTERM');
    assert.equal(await coord.exited, 0);
    const db = new Database(path, { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT state, count(*) AS n FROM artifacts GROUP BY state').all(), [{ state: 3, n: ARTIFACTS }]);
      assert.equal((db.prepare('SELECT count(*) AS n FROM artifacts WHERE leases IS NOT NULL').get() as { n: number }).n, 0);
    } finally {
      db.close();
    }
  },
);
