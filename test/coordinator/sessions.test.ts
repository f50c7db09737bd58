/**
 * Sessions (ATP_SPEC §11): abrupt leave and the resume window, resume, session replacement, leases
 * kept over a resume that the worker never received, drain started by the worker or by the
 * coordinator (finish and hand-back), graceful leave and coordinator shutdown.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { toHex } from '../../src/internal/ids.js';
import { Client } from '../../src/client/client.js';
import { Worker } from '../../src/worker/worker.js';
import type { MessageOf } from '../../src/wire/index.js';
import { Peer, code, producer, query, queryResult, settle, startCoordinator, submitOne, text, worker } from './harness.js';
import type { TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});
const enc = new TextEncoder();

async function resume(
  url: string,
  w: MessageOf<'WELCOME'>,
  nodeId: Uint8Array,
  fields: Partial<MessageOf<'HELLO'>> = {},
): Promise<{ peer: Peer; welcome: MessageOf<'WELCOME'> }> {
  const peer = await Peer.open(url);
  const welcome = await peer.hello({
    roles: 1,
    kinds: ['k'],
    credits: 0,
    nodeId,
    resumeSessionId: w.sessionId,
    resumeToken: w.resumeToken,
    ...fields,
  });
  return { peer, welcome };
}

void describe('abrupt leave and resume (ATP_SPEC §11.5, §11.6)', () => {
  void it('keeps the leases of a dropped worker for the resume window; a resume gets the same session and a new token, and its result is accepted', async () => {
    tc = await startCoordinator({ resumeWindowMs: 5_000, leaseTtlMs: 30_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'survives');
    const nodeId = Buffer.alloc(16, 7);
    const a = await worker(tc.url, ['k'], 1, { nodeId });
    const l = await a.next('LEASE');
    a.close();
    await settle();
    assert.ok(tc.events.some((e) => e.event === 'detached'));
    tc.clock.advance(4_000);
    const other = await worker(tc.url, ['k'], 1);
    assert.equal((await other.take('LEASE')).length, 0, 'the lease is still held by the detached session');
    const { peer, welcome } = await resume(tc.url, a.welcome!, nodeId);
    assert.equal(welcome.resumed, 1);
    assert.deepEqual(welcome.sessionId, a.welcome!.sessionId);
    assert.notDeepEqual(welcome.resumeToken, a.welcome!.resumeToken);
    peer.send({ type: 'RENEW', stream: 1, leaseIds: [l.leaseId] });
    assert.equal((await peer.next('RENEWED')).renewed, 1);
    tc.clock.advance(2_000); // past the old window: the session is attached again
    peer.send({ type: 'COMPLETE', stream: 3, leaseId: l.leaseId, epoch: l.epoch, result: enc.encode('resumed') });
    await peer.next('ACK', (m) => m.stream === 3);
    assert.equal(text((await queryResult(p, acc.artifactId)).result), 'resumed');
    for (const x of [p, peer, other]) x.close();
  });

  void it('after the window, re-issues the leases at a higher epoch, answers the resume with a new session and fences the old holder (ATP-11.5-3, ATP-11.6-5)', async () => {
    tc = await startCoordinator({ resumeWindowMs: 300, leaseTtlMs: 30_000 });
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'moves on');
    const nodeId = Buffer.alloc(16, 8);
    const a = await worker(tc.url, ['k'], 1, { nodeId });
    const l1 = await a.next('LEASE');
    a.close();
    await settle();
    const b = await worker(tc.url, ['k'], 1);
    tc.clock.advance(299);
    await settle();
    assert.equal((await b.take('LEASE')).length, 0, 'not before the window ends');
    tc.clock.advance(1);
    const l2 = await b.next('LEASE');
    assert.equal(l2.epoch, 2);
    assert.deepEqual(l2.artifactId, acc.artifactId);
    const { peer, welcome } = await resume(tc.url, a.welcome!, nodeId);
    assert.equal(welcome.resumed, 0);
    assert.notDeepEqual(welcome.sessionId, a.welcome!.sessionId);
    peer.send({ type: 'COMPLETE', stream: 1, leaseId: l1.leaseId, epoch: 1, result: enc.encode('old') });
    assert.equal((await peer.next('LEASE_LOST', (m) => m.stream === 1)).code, code('ATP_ERR_LEASE_EXPIRED'));
    b.send({ type: 'COMPLETE', stream: 1, leaseId: l2.leaseId, epoch: 2, result: enc.encode('new') });
    await b.next('ACK');
    assert.equal(text((await queryResult(p, acc.artifactId)).result), 'new');
    for (const x of [p, peer, b]) x.close();
  });

  void it('loses the lease of a detached session when its ttl runs out before the window ends (ATP-11.5-2)', async () => {
    tc = await startCoordinator({ resumeWindowMs: 5_000 });
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'short ttl', { leaseTtlMs: 500 });
    const a = await worker(tc.url, ['k'], 1);
    await a.next('LEASE');
    a.close();
    await settle();
    const b = await worker(tc.url, ['k'], 1);
    tc.clock.advance(501);
    assert.equal((await b.next('LEASE')).epoch, 2);
    p.close();
    b.close();
  });

  void it('refuses to resume with a wrong token by opening a new session, leaving the old one alone', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'x');
    const nodeId = Buffer.alloc(16, 9);
    const a = await worker(tc.url, ['k'], 1, { nodeId });
    const l = await a.next('LEASE');
    a.close();
    await settle();
    const { peer, welcome } = await resume(tc.url, { ...a.welcome!, resumeToken: Buffer.alloc(32, 1) }, nodeId);
    assert.equal(welcome.resumed, 0);
    const real = await resume(tc.url, a.welcome!, nodeId);
    assert.equal(real.welcome.resumed, 1);
    real.peer.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: new Uint8Array(0) });
    await real.peer.next('ACK');
    for (const x of [p, peer, real.peer]) x.close();
  });

  void it('closes the old connection with ATP_ERR_SESSION_REPLACED when the session resumes elsewhere, and keeps the session (ATP-11.6-4)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'x');
    const nodeId = Buffer.alloc(16, 10);
    const a = await worker(tc.url, ['k'], 1, { nodeId });
    const l = await a.next('LEASE');
    const { peer, welcome } = await resume(tc.url, a.welcome!, nodeId);
    assert.equal(welcome.resumed, 1);
    assert.equal((await a.goaway()).code, code('ATP_ERR_SESSION_REPLACED'));
    await settle();
    peer.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: new Uint8Array(0) });
    await peer.next('ACK');
    assert.equal(tc.coord.sessions.get(toHex(welcome.sessionId))?.connected, true);
    p.close();
    peer.close();
  });

  void it('does not let empty RENEWs keep alive a lease the resumed worker never named: it ends by ttl and is re-issued (ATP-11.6-7)', async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'one');
    await submitOne(p, 'k', 'two');
    const nodeId = Buffer.alloc(16, 11);
    const a = await worker(tc.url, ['k'], 2, { nodeId });
    const [known, ghost] = [await a.next('LEASE'), await a.next('LEASE')];
    a.close(); // as if the second LEASE had been lost with the connection
    await settle();
    const { peer } = await resume(tc.url, a.welcome!, nodeId);
    peer.send({ type: 'RENEW', stream: 1, leaseIds: [known.leaseId] });
    assert.equal((await peer.next('RENEWED', (m) => m.stream === 1)).renewed, 1);
    for (let i = 0; i < 3; i++) {
      tc.clock.advance(600);
      const s = 3 + 2 * i;
      peer.send({ type: 'RENEW', stream: s, leaseIds: [] });
      await peer.next('RENEWED', (m) => m.stream === s);
    }
    const lost = await peer.next('LEASE_LOST', (m) => m.stream === 0);
    assert.deepEqual(lost.leaseId, ghost.leaseId);
    assert.equal(lost.code, code('ATP_ERR_LEASE_EXPIRED'));
    assert.equal((await peer.take('LEASE_LOST')).length, 0, 'the named lease is kept alive');
    const b = await worker(tc.url, ['k'], 1);
    const re = await b.next('LEASE');
    assert.deepEqual(re.artifactId, ghost.artifactId);
    assert.equal(re.epoch, 2);
    peer.send({ type: 'COMPLETE', stream: 99, leaseId: known.leaseId, epoch: known.epoch, result: new Uint8Array(0) });
    await peer.next('ACK', (m) => m.stream === 99);
    for (const x of [p, peer, b]) x.close();
  });

  void it('the worker SDK resumes after a dropped connection, names its leases, and its result is accepted once', async () => {
    tc = await startCoordinator({ leaseTtlMs: 1_000 });
    const clock = tc.clock;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = new Worker({ url: tc.url, clock, concurrency: 2 });
    w.handle('k', async (a) => {
      await gate;
      return `done ${text(a.payload)}`;
    });
    await w.start();
    const c = await Client.connect(tc.url, { clock });
    const h = await c.submit({ kind: 'k', payload: 'x' });
    await settle();
    assert.equal(w.activeLeases, 1);
    w.dropConnection();
    await settle(30);
    const sessions = [...tc.coord.sessions.values()].filter((s) => (s.roles & 1) !== 0);
    assert.equal(sessions.length, 1, 'the same session, resumed');
    assert.equal(sessions[0]!.connected, true);
    // Renewals continue on the resumed session well past the ttl.
    for (let i = 0; i < 10; i++) {
      clock.advance(300);
      await settle();
    }
    release();
    const r = await h.result();
    assert.equal(r.state, 'COMPLETED');
    assert.equal(text(r.result), 'done x');
    assert.equal(tc.events.filter((e) => e.event === 'lease-lost').length, 0);
    await w.close();
    await c.close();
  });
});

void describe('drain (ATP_SPEC §11.2, §11.3)', () => {
  void it('a worker drain with finish stops new grants, lets held leases complete, and a graceful GOAWAY then closes', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    for (const x of ['a', 'b', 'c']) await submitOne(p, 'k', x);
    const w = await worker(tc.url, ['k'], 2);
    const leases = [await w.next('LEASE'), await w.next('LEASE')];
    w.send({ type: 'GOAWAY', stream: 5, code: 0, mode: 1, deadlineMs: 10_000, reason: 'deploy' });
    const ack = await w.next('ACK', (m) => m.stream === 5);
    assert.equal(ack.ackedType, 0x0005);
    w.send({ type: 'CREDIT', stream: 0, credits: 5 });
    for (const [i, l] of leases.entries()) {
      w.send({ type: 'COMPLETE', stream: 11 + 2 * i, leaseId: l.leaseId, epoch: l.epoch, result: new Uint8Array(0) });
      await w.next('ACK', (m) => m.stream === 11 + 2 * i);
    }
    assert.equal((await w.take('LEASE')).length, 0, 'no grant while draining');
    w.bye();
    await w.closed;
    const other = await worker(tc.url, ['k'], 5);
    assert.equal(text((await other.next('LEASE')).payload), 'c');
    p.close();
    other.close();
  });

  void it('a worker drain with hand-back releases each lease with its checkpoint; the artifact is re-issued at once with it, not as a failed attempt', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'handed back', { maxAttempts: 1 });
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    w.send({ type: 'GOAWAY', stream: 3, code: 0, mode: 2, deadlineMs: 10_000, reason: 'scale down' });
    await w.next('ACK', (m) => m.stream === 3);
    w.send({
      type: 'RELEASE',
      stream: 5,
      leaseId: l.leaseId,
      epoch: 1,
      hasCheckpoint: 1,
      checkpoint: enc.encode('step 7'),
      reason: 'handed back on drain',
    });
    const ack = await w.next('ACK', (m) => m.stream === 5);
    assert.equal(ack.ackedType, 0x0029);
    assert.deepEqual(ack.subject, l.leaseId);
    const other = await worker(tc.url, ['k'], 1);
    const l2 = await other.next('LEASE');
    assert.deepEqual(l2.artifactId, acc.artifactId);
    assert.equal(l2.epoch, 2);
    assert.equal(text(l2.checkpoint), 'step 7');
    w.bye();
    await w.closed;
    assert.equal((await w.take('LEASE')).length, 0, 'the draining worker got nothing back');
    p.close();
    other.close();
  });

  void it('a graceful GOAWAY with leases held releases them without counting a failed attempt (ATP-11.4-1)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'x', { maxAttempts: 1 });
    const w = await worker(tc.url, ['k'], 1);
    await w.next('LEASE');
    w.bye();
    const g = await w.goaway();
    assert.equal(g.code, 0);
    const st = await query(p, acc.artifactId);
    assert.equal(st.state, 1, 'PENDING again, not FAILED');
    const other = await worker(tc.url, ['k'], 1);
    assert.equal((await other.next('LEASE')).epoch, 2);
    p.close();
    other.close();
  });

  void it('a coordinator drain sends GOAWAY with the mode and deadline; at the deadline it revokes what is left with ATP_ERR_WORKER_LEAVING and re-issues it (ATP-11.3-3)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const acc = await submitOne(p, 'k', 'x', { maxAttempts: 1 });
    const w = await worker(tc.url, ['k'], 1);
    const l = await w.next('LEASE');
    assert.equal(tc.coord.drainSession(toHex(w.welcome!.sessionId), 1, 2_000), true);
    const g = await w.next('GOAWAY');
    assert.deepEqual([g.code, g.mode, g.deadlineMs, g.stream], [0, 1, 2_000, 0]);
    w.send({ type: 'CREDIT', stream: 0, credits: 3 });
    await settle();
    assert.equal((await w.take('LEASE')).length, 0);
    tc.clock.advance(2_000);
    const rv = await w.next('REVOKE');
    assert.deepEqual(rv.leaseId, l.leaseId);
    assert.equal(rv.code, code('ATP_ERR_WORKER_LEAVING'));
    const other = await worker(tc.url, ['k'], 1);
    const l2 = await other.next('LEASE');
    assert.equal(l2.epoch, 2);
    assert.equal((await query(p, acc.artifactId)).state, 2, 'not a failed attempt');
    w.send({ type: 'COMPLETE', stream: 1, leaseId: l.leaseId, epoch: 1, result: new Uint8Array(0) });
    assert.equal((await w.next('LEASE_LOST', (m) => m.stream === 1)).code, code('ATP_ERR_WORKER_LEAVING'));
    w.send({ type: 'REVOKE_ACK', stream: 0, leaseId: l.leaseId, epoch: 1 });
    await settle();
    assert.ok(tc.events.some((e) => e.event === 'revoke-ack'));
    // Once the revoke deadline has passed too, the coordinator closes the drained session.
    tc.clock.advance(5_000);
    assert.equal((await w.goaway()).code, 0);
    p.close();
    other.close();
    w.close();
  });

  void it('the worker SDK hands back on a coordinator drain: RELEASE with its checkpoint, re-issued with it, not a failed attempt', async () => {
    tc = await startCoordinator();
    const clock = tc.clock;
    const first = new Worker({ url: tc.url, clock, concurrency: 1 });
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    first.handle('k', async (_a, ctx) => {
      await ctx.checkpoint('half-way');
      started();
      await new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
      return 'never';
    });
    await first.start();
    const c = await Client.connect(tc.url, { clock });
    const h = await c.submit({ kind: 'k', payload: 'long job', maxAttempts: 1 });
    await running;
    const sid = [...tc.coord.sessions.values()].find((s) => (s.roles & 1) !== 0)!.id;
    tc.coord.drainSession(sid, 2, 10_000);
    await settle(30);
    assert.equal(first.activeLeases, 0);
    assert.equal(tc.coord.sessions.has(sid), false, 'the drained worker left with a graceful GOAWAY, not a reconnect');
    const second = new Worker({ url: tc.url, clock, concurrency: 1 });
    let seen: string | undefined;
    second.handle('k', (_a, ctx) => {
      seen = ctx.checkpointData === undefined ? undefined : text(ctx.checkpointData);
      return Promise.resolve('finished');
    });
    await second.start();
    const r = await h.result();
    assert.equal(r.state, 'COMPLETED');
    assert.equal(text(r.result), 'finished');
    assert.equal(seen, 'half-way');
    await first.close();
    await second.close();
    await c.close();
  });

  void it('a resumed draining session stays draining (ATP-4.11-1)', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    await submitOne(p, 'k', 'x');
    await submitOne(p, 'k', 'y');
    const nodeId = Buffer.alloc(16, 12);
    const a = await worker(tc.url, ['k'], 1, { nodeId });
    await a.next('LEASE');
    a.send({ type: 'GOAWAY', stream: 1, code: 0, mode: 1, deadlineMs: 60_000, reason: '' });
    await a.next('ACK');
    a.close();
    await settle();
    const { peer } = await resume(tc.url, a.welcome!, nodeId, { credits: 5 });
    assert.equal((await peer.take('LEASE')).length, 0);
    p.close();
    peer.close();
  });
});

void describe('coordinator shutdown (ATP_SPEC §11.7)', () => {
  void it('sends GOAWAY ATP_ERR_SHUTTING_DOWN to every session', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const w = await worker(tc.url, ['k'], 1);
    const done = tc.close();
    tc = undefined;
    await done;
    assert.equal((await p.goaway()).code, code('ATP_ERR_SHUTTING_DOWN'));
    assert.equal((await w.goaway()).code, code('ATP_ERR_SHUTTING_DOWN'));
  });
});
