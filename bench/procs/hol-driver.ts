/**
 * Benchmark child for scenario 6 (head-of-line blocking): one large payload crosses a connection
 * while small request/answer pairs are timed on that same connection.
 *
 * - Forward: a session (worker, producer and observer, holding one lease) sends one SUBMIT of
 *   `bytes` bytes and, meanwhile, PING→PONG, RENEW→RENEWED and CANCEL→CANCEL_RESULT (each cancel
 *   of a small pending artifact) on the same connection.
 * - Reverse: a second session (a worker holding one lease) gives one credit and is leased that
 *   artifact, payload and all, while it times PING→PONG and RENEW→RENEWED; the payload it gets is
 *   checked byte for byte (SHA-256) against the one sent.
 *
 * Probes are open-loop: one leaves every interval whether or not earlier ones were answered, so a
 * stall is sampled at its true length by every probe caught in it. The same probes run on the idle
 * connection first. Times are monotonic (process.hrtime), in µs.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { artifactDigestAsync } from '../../src/internal/digest.js';
import { ClientConnection } from '../../src/protocol/client-connection.js';
import { Role } from '../../src/wire/index.js';
import type { Message, MessageOf } from '../../src/wire/index.js';
import { childConfig, emit, nowNs, serve } from '../lib/ipc.js';
import { summarize } from '../lib/stats.js';
import type { Summary } from '../lib/stats.js';

/** Configuration of the driver child. */
export interface HolDriverConfig {
  url: string;
}

/** Arguments of the `hol` operation. */
export interface HolArgs {
  bytes: number;
  idleMs: number;
  pingEveryMs: number;
  renewEveryMs: number;
  cancelEveryMs: number;
}

/** Latencies of each probe kind (µs). */
export interface ProbeSummaries {
  ping: Summary;
  renew: Summary;
  cancel?: Summary;
}

/** One direction: how long the payload took and what the probes saw, idle and while it crossed. */
export interface HolDirection {
  ms: number;
  mbPerS: number;
  idle: ProbeSummaries;
  flood: ProbeSummaries;
}

/** The result of the `hol` operation. */
export interface HolResult {
  bytes: number;
  forward: HolDirection;
  reverse: HolDirection & { intact: boolean };
}

const cfg = childConfig<HolDriverConfig>();
const isType =
  <T extends Message['type']>(t: T) =>
  (m: Message): m is Extract<Message, { type: T }> =>
    m.type === t;

function submitMsg(conn: ClientConnection, kind: string, payload: Uint8Array): MessageOf<'SUBMIT'> {
  return {
    type: 'SUBMIT',
    stream: conn.nextStream(),
    artifactId: randomBytes(16),
    kind,
    priority: 0,
    latePolicy: 0,
    quorumK: 0,
    quorumN: 0,
    leaseTtlMs: 0,
    maxDurationMs: 0,
    deadlineMs: 0,
    maxAttempts: 0,
    watch: 0,
    parentId: new Uint8Array(16),
    tags: [],
    payload,
  };
}

/** A session with the given roles and kinds, one credit, that reports the LEASEs it gets. */
async function session(roles: number, kinds: string[], onLease: (m: MessageOf<'LEASE'>) => void): Promise<ClientConnection> {
  const conn = new ClientConnection({ url: cfg.url, roles, kinds, credits: () => 1, reconnect: false });
  await conn.start({
    push: (m) => {
      if (m.type === 'LEASE') onLease(m);
    },
    up: () => undefined,
    down: () => undefined,
    closed: () => undefined,
  });
  return conn;
}

/** Open-loop probes on one connection until the returned function is called. */
function probe(
  conn: ClientConnection,
  a: HolArgs,
  cancelIds: Uint8Array[] | undefined,
): () => Promise<{ ping: number[]; renew: number[]; cancel: number[] }> {
  const out = { ping: [] as number[], renew: [] as number[], cancel: [] as number[] };
  const pending: Array<Promise<unknown>> = [];
  const time = <T>(into: number[], p: Promise<T>, check?: (m: T) => void) => {
    const t0 = nowNs();
    pending.push(
      p.then((m) => {
        check?.(m);
        into.push((nowNs() - t0) / 1e3);
      }),
    );
  };
  const ping = () => time(out.ping, conn.request({ type: 'PING', stream: conn.nextStream(), nonce: 7 }, isType('PONG')));
  const renew = () =>
    time(out.renew, conn.request({ type: 'RENEW', stream: conn.nextStream(), leaseIds: [] }, isType('RENEWED')), (r) => {
      if (r.renewed < 1) throw new Error(`RENEWED covered ${r.renewed} leases, expected at least 1`);
    });
  const cancel = () => {
    const id = cancelIds?.pop();
    if (id === undefined) return;
    time(
      out.cancel,
      conn.request({ type: 'CANCEL', stream: conn.nextStream(), artifactId: id, subtree: 0, reason: 'probe' }, isType('CANCEL_RESULT')),
      (r) => {
        if (r.cancelled !== 1) throw new Error(`CANCEL_RESULT cancelled ${r.cancelled}, expected 1`);
      },
    );
  };
  ping();
  renew();
  const timers = [setInterval(ping, a.pingEveryMs), setInterval(renew, a.renewEveryMs)];
  if (cancelIds !== undefined) {
    cancel();
    timers.push(setInterval(cancel, a.cancelEveryMs));
  }
  return async () => {
    for (const t of timers) clearInterval(t);
    await Promise.all(pending);
    return out;
  };
}

const summaries = (s: { ping: number[]; renew: number[]; cancel: number[] }, withCancel: boolean): ProbeSummaries => ({
  ping: summarize(s.ping),
  renew: summarize(s.renew),
  ...(withCancel ? { cancel: summarize(s.cancel) } : {}),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function hol(a: HolArgs): Promise<HolResult> {
  // Forward session: holds one lease (so that RENEW renews something) and submits.
  let fwdLeased: () => void = () => undefined;
  const fwdLease = new Promise<void>((r) => (fwdLeased = r));
  const fwd = await session(Role.WORKER | Role.PRODUCER | Role.OBSERVER, ['hol-lease'], () => fwdLeased());
  // Reverse session: a worker that will be leased the large artifact once it gives a second credit.
  let revLeases: Array<(m: MessageOf<'LEASE'>) => void> = [];
  const nextRevLease = () => new Promise<MessageOf<'LEASE'>>((r) => revLeases.push(r));
  const rev = await session(Role.WORKER | Role.PRODUCER, ['hol-lease-r', 'hol-bulk'], (m) => {
    const waiting = revLeases;
    revLeases = [];
    for (const w of waiting) w(m);
  });
  try {
    const revFirst = nextRevLease();
    await fwd.request(submitMsg(fwd, 'hol-lease', randomBytes(16)), isType('ACCEPTED'));
    await fwd.request(submitMsg(fwd, 'hol-lease-r', randomBytes(16)), isType('ACCEPTED'));
    await Promise.all([fwdLease, revFirst]);
    // Small pending artifacts (no worker handles their kind), one per CANCEL probe.
    const probesMax = Math.ceil((a.idleMs + 60_000) / a.cancelEveryMs);
    const cancelIds: Uint8Array[] = [];
    for (let i = 0; i < Math.min(probesMax, 2_000); i += 200) {
      const batch = Array.from({ length: 200 }, () => submitMsg(fwd, 'hol-pending', randomBytes(8)));
      await Promise.all(batch.map((m) => fwd.request(m, isType('ACCEPTED'))));
      cancelIds.push(...batch.map((m) => m.artifactId));
    }
    const payload = Buffer.allocUnsafe(a.bytes);
    randomFillSync(payload);
    const sentDigest = await artifactDigestAsync('hol-bulk', payload);

    // Forward: idle, then one SUBMIT of the whole payload.
    let stop = probe(fwd, a, cancelIds);
    await sleep(a.idleMs);
    const fwdIdle = await stop();
    stop = probe(fwd, a, cancelIds);
    let t0 = nowNs();
    await fwd.request(submitMsg(fwd, 'hol-bulk', payload), isType('ACCEPTED'));
    const fwdMs = (nowNs() - t0) / 1e6;
    const fwdFlood = await stop();

    // Reverse: idle, then a credit, and the LEASE of that artifact with its payload.
    stop = probe(rev, a, undefined);
    await sleep(a.idleMs);
    const revIdle = await stop();
    stop = probe(rev, a, undefined);
    const big = nextRevLease();
    t0 = nowNs();
    rev.send({ type: 'CREDIT', stream: 0, credits: 1 });
    const lease = await big;
    const revMs = (nowNs() - t0) / 1e6;
    const revFlood = await stop();
    const gotDigest = await artifactDigestAsync(lease.kind, lease.payload);
    const intact =
      lease.payload.length === a.bytes &&
      Buffer.from(gotDigest).equals(Buffer.from(sentDigest)) &&
      Buffer.from(lease.digest.value).equals(Buffer.from(sentDigest));

    const rate = (ms: number) => a.bytes / 1e6 / (ms / 1e3);
    return {
      bytes: a.bytes,
      forward: { ms: fwdMs, mbPerS: rate(fwdMs), idle: summaries(fwdIdle, true), flood: summaries(fwdFlood, true) },
      reverse: { ms: revMs, mbPerS: rate(revMs), idle: summaries(revIdle, false), flood: summaries(revFlood, false), intact },
    };
  } finally {
    await Promise.all([fwd.close(), rev.close()]);
  }
}

serve({ hol });
emit('ready', { pid: process.pid });
