/**
 * Benchmark child: the producer side of every ATP scenario but head-of-line (hol-driver.ts), through
 * the client SDK.
 * Times are monotonic nanoseconds (process.hrtime), comparable with the other children's.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '../../src/client/client.js';
import type { ArtifactOutcome } from '../../src/client/handle.js';
import type { SubmitSpec } from '../../src/client/client.js';
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

serve({
  throughput,
  dispatch,
  submitOne,
  cancel,
  cancelPending,
  submitBulk,
  exit: async () => {
    await client.close();
  },
});
emit('ready', { pid: process.pid });
