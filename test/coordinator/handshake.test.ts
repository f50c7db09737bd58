/**
 * The handshake and connection-level rules (ATP_SPEC §4): versions, roles, auth tokens, tenants,
 * frames before HELLO, a second HELLO, handshake and idle timeouts, the PING budget, and fatal
 * errors that end one connection only.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { artifactDigest, toHex } from '../../src/internal/ids.js';
import { Client } from '../../src/client/client.js';
import { encodeFrame } from '../../src/wire/index.js';
import { Peer, code, hello, producer, query, settle, startCoordinator, submit, submitOne, worker } from './harness.js';
import type { TestCoordinator } from './harness.js';

let tc: TestCoordinator | undefined;
afterEach(async () => {
  await tc?.close();
  tc = undefined;
});

async function refusedWith(url: string, fields: Parameters<typeof hello>[0]): Promise<number> {
  const p = await Peer.open(url);
  p.send(hello(fields));
  const g = await p.goaway();
  assert.equal(
    p.log.some((m) => m.type === 'WELCOME'),
    false,
    'no WELCOME before a refusal',
  );
  return g.code;
}

void describe('handshake: versions and roles (ATP_SPEC §4.2, §4.3)', () => {
  void it('answers HELLO with WELCOME carrying version 1, the roles, a session id and a 32-byte resume token', async () => {
    tc = await startCoordinator();
    const p = await Peer.open(tc.url);
    const w = await p.hello({ roles: 7, minVersion: 1, maxVersion: 3, credits: 0 });
    assert.equal(w.version, 1);
    assert.equal(w.roles, 7);
    assert.equal(w.resumed, 0);
    assert.equal(w.sessionId.length, 16);
    assert.equal(w.resumeToken.length, 32);
    assert.ok(w.heartbeatMs > 0);
    assert.equal(w.resumeWindowMs, 5000);
    assert.equal(w.cancelDeadlineMs, 5000);
    p.close();
  });

  void it('refuses a HELLO with no version in common with GOAWAY ATP_ERR_UNSUPPORTED_VERSION (ATP-4.3-2)', async () => {
    tc = await startCoordinator();
    assert.equal(await refusedWith(tc.url, { minVersion: 2, maxVersion: 5 }), code('ATP_ERR_UNSUPPORTED_VERSION'));
    assert.equal(await refusedWith(tc.url, { minVersion: 0, maxVersion: 0 }), code('ATP_ERR_UNSUPPORTED_VERSION'));
  });

  void it('refuses an empty or unknown role set with ATP_ERR_PARAM', async () => {
    tc = await startCoordinator();
    assert.equal(await refusedWith(tc.url, { roles: 0 }), code('ATP_ERR_PARAM'));
    assert.equal(await refusedWith(tc.url, { roles: 8 }), code('ATP_ERR_PARAM'));
  });

  void it('answers a message the session role lacks with ERROR ATP_ERR_FORBIDDEN on its stream, and keeps the connection', async () => {
    tc = await startCoordinator();
    const prod = await producer(tc.url);
    prod.send({ type: 'RENEW', stream: 7, leaseIds: [] });
    const e = await prod.next('ERROR', (m) => m.stream === 7);
    assert.equal(e.code, code('ATP_ERR_FORBIDDEN'));
    const w = await worker(tc.url);
    w.send(submit(9, 'k', 'x'));
    const e2 = await w.next('ERROR', (m) => m.stream === 9);
    assert.equal(e2.code, code('ATP_ERR_FORBIDDEN'));
    // Both still work.
    await submitOne(prod, 'k', 'still here');
    assert.equal(prod.isClosed, false);
    assert.equal(w.isClosed, false);
    prod.close();
    w.close();
  });

  void it('closes with ATP_ERR_PROTOCOL a frame that only a coordinator sends', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    p.send({
      type: 'ACCEPTED',
      stream: 1,
      artifactId: new Uint8Array(16),
      digest: { alg: 0, value: new Uint8Array(0) },
      state: 1,
      duplicate: 0,
    });
    assert.equal((await p.goaway()).code, code('ATP_ERR_PROTOCOL'));
  });
});

void describe('handshake: auth tokens and tenants (ATP_SPEC §4.6)', () => {
  const tokens = new Map([
    ['tok-a', { roles: 7, tenant: 'a' }],
    ['tok-b', { roles: 7, tenant: 'b' }],
    ['tok-observer', { roles: 4, tenant: 'a' }],
  ]);
  const auth = (t: string) => new TextEncoder().encode(t);

  void it('refuses a missing token with ATP_ERR_UNAUTHORIZED, a wrong one with ATP_ERR_AUTH_FAILED, a role not granted with ATP_ERR_FORBIDDEN (ATP-4.6-1)', async () => {
    tc = await startCoordinator({ tokens });
    assert.equal(await refusedWith(tc.url, { roles: 2 }), code('ATP_ERR_UNAUTHORIZED'));
    assert.equal(await refusedWith(tc.url, { roles: 2, authToken: auth('tok-c') }), code('ATP_ERR_AUTH_FAILED'));
    assert.equal(await refusedWith(tc.url, { roles: 2, authToken: auth('tok-') }), code('ATP_ERR_AUTH_FAILED'));
    assert.equal(await refusedWith(tc.url, { roles: 2, authToken: auth('tok-observer') }), code('ATP_ERR_FORBIDDEN'));
    assert.equal(await refusedWith(tc.url, { roles: 2, authToken: auth('tok-a'), tenant: 'b' }), code('ATP_ERR_FORBIDDEN'));
    const ok = await Peer.open(tc.url);
    const w = await ok.hello({ roles: 4, authToken: auth('tok-observer') });
    assert.equal(w.roles, 4);
    ok.close();
  });

  void it('without configured tokens the tenant is the empty string: a HELLO naming another tenant is refused (ATP-4.6-4)', async () => {
    tc = await startCoordinator();
    assert.equal(await refusedWith(tc.url, { roles: 2, tenant: 'x' }), code('ATP_ERR_FORBIDDEN'));
    const p = await Peer.open(tc.url);
    await p.hello({ roles: 2, tenant: '' });
    p.close();
  });

  void it('isolates tenants: the same id is two artifacts, another tenant sees UNKNOWN and NOT_FOUND, and workers lease only their tenant (ATP-4.6-5)', async () => {
    tc = await startCoordinator({ tokens });
    const a = await producer(tc.url, { authToken: auth('tok-a') });
    const b = await producer(tc.url, { authToken: auth('tok-b') });
    const accA = await submitOne(a, 'k', 'same');
    const st = await query(b, accA.artifactId);
    assert.equal(st.state, 0, 'tenant b does not see tenant a artifact');
    b.send({ type: 'CANCEL', stream: 41, artifactId: accA.artifactId, subtree: 0, reason: '' });
    assert.equal((await b.next('ERROR', (m) => m.stream === 41)).code, code('ATP_ERR_NOT_FOUND'));
    // A child under another tenant's artifact: its parent does not exist.
    b.send(submit(43, 'k', 'child', { parentId: accA.artifactId }));
    assert.equal((await b.next('ERROR', (m) => m.stream === 43)).code, code('ATP_ERR_NOT_FOUND'));
    // Same content in tenant b: a new artifact, not a duplicate.
    const accB = await submitOne(b, 'k', 'same');
    assert.equal(accB.duplicate, 0);
    assert.equal(accB.id, accA.id);

    const wb = await worker(tc.url, ['k'], 5, { authToken: auth('tok-b') });
    const lb = await wb.next('LEASE');
    assert.equal(toHex(lb.artifactId), accB.id);
    wb.send({ type: 'COMPLETE', stream: 3, leaseId: lb.leaseId, epoch: lb.epoch, result: new TextEncoder().encode('from b') });
    await wb.next('ACK', (m) => m.stream === 3);
    assert.equal((await wb.take('LEASE')).length, 0, 'the worker of tenant b gets nothing of tenant a');
    assert.equal((await query(a, accA.artifactId)).state, 1, 'tenant a artifact is still PENDING');
    const wa = await worker(tc.url, ['k'], 5, { authToken: auth('tok-a') });
    const la = await wa.next('LEASE');
    assert.equal(toHex(la.artifactId), accA.id);
    for (const p of [a, b, wa, wb]) p.close();
  });
});

void describe('handshake: order and timing (ATP_SPEC §4.1, §4.8, §4.9)', () => {
  void it('answers PING before HELLO with PONG, and closes with ATP_ERR_PROTOCOL any other frame before HELLO', async () => {
    tc = await startCoordinator();
    const p = await Peer.open(tc.url);
    p.send({ type: 'PING', stream: 0, nonce: 77 });
    assert.equal((await p.next('PONG')).nonce, 77);
    p.send(submit(1, 'k', 'early'));
    assert.equal((await p.goaway()).code, code('ATP_ERR_PROTOCOL'));
  });

  void it('closes with ATP_ERR_PROTOCOL a second HELLO, after WELCOME or pipelined behind the first', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    p.send(hello());
    assert.equal((await p.goaway()).code, code('ATP_ERR_PROTOCOL'));

    const q = await Peer.open(tc.url);
    q.sendAll([hello({ roles: 1, kinds: ['k'], credits: 1 }), hello({ roles: 1, kinds: ['k'], credits: 1 })]);
    const g = await q.goaway();
    assert.equal(g.code, code('ATP_ERR_PROTOCOL'));
    assert.ok(q.log.filter((m) => m.type === 'WELCOME').length <= 1, 'at most one WELCOME');
    await settle();
    assert.equal([...tc.coord.sessions.values()].filter((s) => s.connected).length, 0, 'no session is left open by the pipelined HELLOs');
  });

  void it('closes with ATP_ERR_HANDSHAKE_TIMEOUT a connection that sends no HELLO within 10 s', async () => {
    tc = await startCoordinator();
    const p = await Peer.open(tc.url);
    await settle();
    tc.clock.advance(9_999);
    await settle();
    assert.equal(p.isClosed, false);
    tc.clock.advance(1);
    assert.equal((await p.goaway()).code, code('ATP_ERR_HANDSHAKE_TIMEOUT'));
  });

  void it('applies the smaller non-zero idle timeout and closes with ATP_ERR_IDLE_TIMEOUT when no frame arrives in it (ATP-4.8-1, ATP-4.8-2)', async () => {
    tc = await startCoordinator({ idleTimeoutMs: 30_000 });
    const p = await Peer.open(tc.url);
    const w = await p.hello({ idleTimeoutMs: 4_000 });
    assert.equal(w.idleTimeoutMs, 4_000);
    await settle();
    tc.clock.advance(3_000);
    p.send({ type: 'PING', stream: 0, nonce: 1 });
    await p.next('PONG');
    tc.clock.advance(3_000); // 6 s since WELCOME, 3 s since the PING: still open
    await settle();
    assert.equal(p.isClosed, false);
    tc.clock.advance(1_000);
    assert.equal((await p.goaway()).code, code('ATP_ERR_IDLE_TIMEOUT'));

    const q = await Peer.open(tc.url);
    assert.equal((await q.hello({ idleTimeoutMs: 0 })).idleTimeoutMs, 30_000);
    q.close();
  });

  void it('announces a heartbeat of at most a third of the idle timeout, so that SDK clients are never idle-closed (ATP-4.8-3)', async () => {
    tc = await startCoordinator({ idleTimeoutMs: 3_000, heartbeatMs: 10_000 });
    const p = await Peer.open(tc.url);
    const w = await p.hello({ idleTimeoutMs: 0 });
    assert.equal(w.idleTimeoutMs, 3_000);
    assert.ok(w.heartbeatMs <= 1_000, `heartbeat ${w.heartbeatMs}`);
    p.close();
    const c = await Client.connect(tc.url, { clock: tc.clock });
    let downs = 0;
    const sessions = () => [...tc!.coord.sessions.values()].length;
    for (let i = 0; i < 40; i++) {
      tc.clock.advance(500);
      await settle();
      if (!c.connection.connected) downs++;
    }
    assert.equal(downs, 0, 'the producer stayed connected for 20 s with a 3 s idle timeout');
    assert.equal(sessions(), 1);
    assert.equal(
      tc.events.filter((e) => e.event === 'session' && e['roles'] === 6).length,
      2,
      'no reconnect: the raw peer and the client, once each',
    );
    await c.close();
  });

  void it('closes with ATP_ERR_ENHANCE_YOUR_CALM a connection that sends more than 10 PINGs in a second (ATP-4.8-5)', async () => {
    tc = await startCoordinator();
    const calm = await producer(tc.url);
    for (let round = 0; round < 3; round++) {
      calm.sendAll(Array.from({ length: 10 }, (_, i) => ({ type: 'PING' as const, stream: 0, nonce: round * 10 + i })));
      await settle();
      tc.clock.advance(1_000);
    }
    assert.equal((await calm.take('PONG')).length, 30);
    assert.equal(calm.isClosed, false);

    const flood = await producer(tc.url);
    flood.sendAll(Array.from({ length: 11 }, (_, i) => ({ type: 'PING' as const, stream: 0, nonce: i })));
    assert.equal((await flood.goaway()).code, code('ATP_ERR_ENHANCE_YOUR_CALM'));
    calm.close();
  });

  void it('a malformed frame closes only its own connection, with a GOAWAY naming the code; another session keeps working (ATP-4.9-3)', async () => {
    tc = await startCoordinator();
    const good = await producer(tc.url);
    const cases: Array<[string, Uint8Array, number]> = [];
    // Type 0x0000 is reserved.
    const zeroType = new Uint8Array(12);
    cases.push(['type 0', zeroType, code('ATP_ERR_PROTOCOL')]);
    // A SUBMIT body shorter than its fixed part.
    const short = Buffer.from(encodeFrame(submit(1, 'k', 'x')).subarray(0, 12 + 5));
    short.writeUInt32BE(5, 0);
    cases.push(['truncated SUBMIT', short, code('ATP_ERR_ENCODING')]);
    // A frame longer than the negotiated maximum.
    const huge = Buffer.alloc(12);
    huge.writeUInt32BE(64 * 1024 * 1024, 0);
    huge.writeUInt16BE(0x0010, 4);
    cases.push(['too large', huge, code('ATP_ERR_FRAME_TOO_LARGE')]);
    // Invalid UTF-8 in the kind.
    const badUtf8 = Buffer.from(encodeFrame(submit(1, 'kk', 'x')));
    const kindAt = badUtf8.indexOf(Buffer.from('kk'));
    badUtf8[kindAt] = 0xff;
    cases.push(['bad UTF-8', badUtf8, code('ATP_ERR_ENCODING')]);

    for (const [name, bytes, want] of cases) {
      const bad = await producer(tc.url);
      bad.sendRaw(bytes);
      const g = await bad.goaway();
      assert.equal(g.code, want, name);
      const acc = await submitOne(good, 'k', `after ${name}`);
      assert.equal(acc.state, 1);
    }
    assert.equal(good.isClosed, false);
    good.close();
  });

  void it('answers a preface of another major version with its own preface and closes; closes on an HTTP request without answering (ATP-4.1-3, ATP-4.1-4)', async () => {
    tc = await startCoordinator();
    const v2 = await Peer.open(tc.url, { preface: false });
    v2.transport.write(Buffer.from('ATP2\r\n\r\n'));
    await v2.closed;
    assert.equal(v2.bytesIn, 8, 'the ATP1 preface and nothing else');
    assert.equal(v2.log.length, 0);
    const http = await Peer.open(tc.url, { preface: false });
    http.transport.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await http.closed;
    assert.equal(http.bytesIn, 0, 'not answered');
  });

  void it('closes with ATP_ERR_FRAME_TOO_LARGE a HELLO over 16 KiB (ATP-4.5-1)', async () => {
    tc = await startCoordinator();
    const p = await Peer.open(tc.url);
    p.send(hello({ agent: 'a'.repeat(200), kinds: Array.from({ length: 200 }, (_, i) => `kind-${i}-${'x'.repeat(100)}`) }));
    assert.equal((await p.goaway()).code, code('ATP_ERR_FRAME_TOO_LARGE'));
  });

  void it('closes with ATP_ERR_ENHANCE_YOUR_CALM a flood of unknown frame types', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const one = Buffer.alloc(12);
    one.writeUInt16BE(0x0a0a, 4);
    p.sendRaw(Buffer.concat(Array.from({ length: 1001 }, () => one)));
    assert.equal((await p.goaway()).code, code('ATP_ERR_ENHANCE_YOUR_CALM'));
  });

  void it('ignores unregistered and GREASE frame types', async () => {
    tc = await startCoordinator();
    const p = await producer(tc.url);
    const unknown = Buffer.alloc(16);
    unknown.writeUInt32BE(4, 0);
    unknown.writeUInt16BE(0x0a0a, 4);
    const unregistered = Buffer.from(unknown);
    unregistered.writeUInt16BE(0x0777, 4);
    p.sendRaw(Buffer.concat([unknown, unregistered]));
    const acc = await submitOne(p, 'k', artifactDigest('k', new Uint8Array(0)));
    assert.equal(acc.state, 1);
    p.close();
  });
});
