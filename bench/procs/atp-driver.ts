/**
 * Benchmark child: the producer side of every ATP scenario (the client SDK, plus one raw session
 * for the head-of-line measurement).
 * Times are monotonic nanoseconds (process.hrtime), comparable with the other children's.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '../../src/client/client.js';
import type { ArtifactOutcome } from '../../src/client/handle.js';
import type { SubmitSpec } from '../../src/client/client.js';
import { ClientConnection } from '../../src/protocol/client-connection.js';
import { Limits, Role, bodyBytes } from '../../src/wire/index.js';
import type { Message, MessageOf } from '../../src/wire/index.js';
import { childConfig, emit, nowNs, serve } from '../lib/ipc.js';
import { summarize } from '../lib/stats.js';

/** Configuration of the driver child. */
export interface AtpDriverConfig {
  url: string;
}

const cfg = childConfig<AtpDriverConfig>();
const client = await Client.connect(cfg.url);
const dec = new TextDecoder();
let idCounter = 0;
const idPrefix = randomBytes(8).toString('hex');
/** A fresh producer-chosen artifact id (unique in this process, random across runs). */
const freshId = () => idPrefix + (++idCounter).toString(16).padStart(16, '0');

/** End to end: submit n artifacts in awaited chunks, wait until every result is seen. */
async function throughput(a: { n: number; chunk: number; kind: string; nonce: string }) {
  const t0 = nowNs();
  const results: Array<Promise<ArtifactOutcome>> = [];
  for (let i = 0; i < a.n; i += a.chunk) {
    const specs: SubmitSpec[] = [];
    for (let j = i; j < Math.min(a.n, i + a.chunk); j++) specs.push({ kind: a.kind, payload: `{"unit":${j},"run":"${a.nonce}"}` });
    const handles = await client.submitMany(specs);
    for (const h of handles) results.push(h.result());
  }
  const tSubmitted = nowNs();
  const outcomes = await Promise.all(results);
  const t1 = nowNs();
  const completed = outcomes.filter((o) => o.state === 'COMPLETED').length;
  return { t0, tSubmitted, t1, n: a.n, completed };
}

/** Light load: one artifact at a time; the handler returns the time it started. */
async function dispatch(a: { n: number; warm: number; kind: string; nonce: string }) {
  const startUs: number[] = [];
  const roundUs: number[] = [];
  for (let i = 0; i < a.warm + a.n; i++) {
    const t0 = nowNs();
    const h = await client.submit({ kind: a.kind, payload: `lat-${a.nonce}-${i}` });
    const out = await h.result();
    const t1 = nowNs();
    if (out.state !== 'COMPLETED') throw new Error(`artifact ${h.id} ended ${out.state}`);
    if (i < a.warm) continue;
    startUs.push((Number(dec.decode(out.result)) - t0) / 1e3);
    roundUs.push((t1 - t0) / 1e3);
  }
  return { start: summarize(startUs), round: summarize(roundUs) };
}

/** Submit one artifact (no result followed); answers its id once ACCEPTED. */
async function submitOne(a: { kind: string; payload: string; parentId?: string }) {
  const h = await client.submit({
    kind: a.kind,
    payload: a.payload,
    follow: 'none',
    ...(a.parentId !== undefined ? { parentId: a.parentId } : {}),
  });
  return { id: h.id };
}

/** Cancel, stamping the time just before the CANCEL is handed to the SDK. */
async function cancel(a: { id: string; subtree: boolean }) {
  const t0 = nowNs();
  const r = await client.cancel(a.id, { subtree: a.subtree });
  const t1 = nowNs();
  return { t0, t1, ...r };
}

/** Cancel of a pending artifact: the producer's round trip (what Job.remove() is for BullMQ). */
async function cancelPending(a: { n: number; warm: number; kind: string; nonce: string }) {
  const us: number[] = [];
  for (let i = 0; i < a.warm + a.n; i++) {
    const h = await client.submit({ kind: a.kind, payload: `pend-${a.nonce}-${i}`, follow: 'none' });
    const t0 = nowNs();
    const r = await client.cancel(h.id);
    const t1 = nowNs();
    if (r.cancelled !== 1) throw new Error(`cancel of pending ${h.id} cancelled ${r.cancelled}`);
    if (i >= a.warm) us.push((t1 - t0) / 1e3);
  }
  return summarize(us);
}

/** Many artifacts with producer-chosen ids, awaited in chunks; `empty` sends empty payloads. */
async function submitBulk(a: { n: number; chunk: number; kind: string; parentId?: string; empty: boolean; nonce: string }) {
  const t0 = nowNs();
  let accepted = 0;
  for (let i = 0; i < a.n; i += a.chunk) {
    const specs: SubmitSpec[] = [];
    for (let j = i; j < Math.min(a.n, i + a.chunk); j++) {
      specs.push({
        kind: a.kind,
        id: freshId(),
        payload: a.empty ? '' : `{"unit":${j},"run":"${a.nonce}"}`,
        follow: 'none',
        ...(a.parentId !== undefined ? { parentId: a.parentId } : {}),
      });
    }
    accepted += (await client.submitMany(specs)).length;
  }
  return { accepted, ms: (nowNs() - t0) / 1e6 };
}

/**
 * Head-of-line: one session (worker and producer) holds one lease, then pushes `totalBytes` of
 * maximum-size SUBMITs (at most `windowBytes` unacknowledged) while it samples PING→PONG and
 * RENEW→RENEWED round trips on the same connection. Sampling is open-loop: a probe leaves every
 * `pingEveryMs` / `renewEveryMs` whether or not earlier ones were answered, so a stall is sampled
 * at its true length by every probe caught in it. The same probes run on the idle link first.
 */
async function hol(a: { totalBytes: number; windowBytes: number; idleMs: number; pingEveryMs: number; renewEveryMs: number }) {
  let gotLease: () => void = () => undefined;
  const leased = new Promise<void>((r) => (gotLease = r));
  const conn = new ClientConnection({
    url: cfg.url,
    roles: Role.WORKER | Role.PRODUCER | Role.OBSERVER,
    kinds: ['hol-lease'],
    credits: () => 1,
    reconnect: false,
  });
  await conn.start({
    push: (m) => {
      if (m.type === 'LEASE') gotLease();
    },
    up: () => undefined,
    down: () => undefined,
    closed: () => undefined,
  });
  const submitMsg = (kind: string, payload: Uint8Array): MessageOf<'SUBMIT'> => ({
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
  });
  const isAccepted = (m: Message): m is MessageOf<'ACCEPTED'> => m.type === 'ACCEPTED';
  await conn.request(submitMsg('hol-lease', randomBytes(16)), isAccepted);
  await leased;

  const probes: Array<Promise<unknown>> = [];
  const ping = (into: number[]) => {
    const t0 = nowNs();
    probes.push(
      conn
        .request({ type: 'PING', stream: conn.nextStream(), nonce: 7 }, (m): m is MessageOf<'PONG'> => m.type === 'PONG')
        .then(() => into.push((nowNs() - t0) / 1e3)),
    );
  };
  const renew = (into: number[]) => {
    const t0 = nowNs();
    probes.push(
      conn
        .request({ type: 'RENEW', stream: conn.nextStream(), leaseIds: [] }, (m): m is MessageOf<'RENEWED'> => m.type === 'RENEWED')
        .then((r) => {
          if (r.renewed !== 1) throw new Error(`RENEWED covered ${r.renewed} leases, expected 1`);
          into.push((nowNs() - t0) / 1e3);
        }),
    );
  };
  /** Probe at fixed intervals until stop() is called. */
  const sample = (pings: number[], renews: number[]) => {
    ping(pings);
    renew(renews);
    const pt = setInterval(() => ping(pings), a.pingEveryMs);
    const rt = setInterval(() => renew(renews), a.renewEveryMs);
    return () => {
      clearInterval(pt);
      clearInterval(rt);
    };
  };

  const idlePing: number[] = [];
  const idleRenew: number[] = [];
  const stopIdle = sample(idlePing, idleRenew);
  await new Promise((r) => setTimeout(r, a.idleMs));
  stopIdle();
  await Promise.all(probes.splice(0));

  // The flood: maximum-size SUBMIT frames (body = the negotiated maximum frame payload).
  const frameMax = conn.welcome?.maxFrameBytes ?? Limits.DEFAULT_MAX_FRAME_BYTES;
  const overhead = bodyBytes(submitMsg('hol-bulk', new Uint8Array(0)));
  const payload = randomBytes(frameMax - overhead);
  const count = Math.ceil(a.totalBytes / frameMax);
  const window = Math.max(1, Math.floor(a.windowBytes / frameMax));
  const floodPing: number[] = [];
  const floodRenew: number[] = [];
  const t0 = nowNs();
  const stopFlood = sample(floodPing, floodRenew);
  let sent = 0;
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent < count && sent - acked < window) {
        payload.writeUInt32BE(sent, 0); // distinct content per artifact
        sent++;
        conn.request(submitMsg('hol-bulk', payload), isAccepted).then(() => {
          if (++acked === count) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  const floodMs = (nowNs() - t0) / 1e6;
  stopFlood();
  await Promise.all(probes.splice(0));
  await conn.close();
  return {
    frames: count,
    frameBytes: frameMax,
    windowFrames: window,
    bytes: count * frameMax,
    floodMs,
    mbPerS: (count * frameMax) / 1e6 / (floodMs / 1e3),
    idlePing: summarize(idlePing),
    idleRenew: summarize(idleRenew),
    floodPing: summarize(floodPing),
    floodRenew: summarize(floodRenew),
  };
}

serve({
  throughput,
  dispatch,
  submitOne,
  cancel,
  cancelPending,
  submitBulk,
  hol,
  exit: async () => {
    await client.close();
  },
});
emit('ready', { pid: process.pid });
