/** The coordinator's HTTP side door: /status as JSON, /metrics for Prometheus (prom-client). */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Coordinator } from '../coordinator/coordinator.js';

/** A coordinator's status snapshot. */
export async function statusOf(c: Coordinator) {
  const counts = await c.store.counts();
  let workers = 0;
  let producers = 0;
  let leases = 0;
  let detached = 0;
  for (const s of c.sessions.values()) {
    if ((s.roles & 1) !== 0) workers++;
    else producers++;
    if (!s.connected) detached++;
    leases += s.leases.size;
  }
  const b = c.messageBudget;
  return {
    store: c.store.name,
    artifacts: counts,
    /** Terminal artifacts forgotten after their retention since the coordinator started (ATP_SPEC §3.11). */
    forgotten: c.forgotten,
    sessions: { workers, producers, detached },
    leases,
    messageBudget: { limitBytes: b.limitBytes, usedBytes: b.usedBytes, peakBytes: b.peakBytes, waiting: b.waiting, waited: b.waited },
  };
}

/** Serve /status and /metrics. */
export async function startStatusServer(
  c: Coordinator,
  host: string,
  port: number,
): Promise<{ host: string; port: number; close: () => void }> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const artifacts = new Gauge({ name: 'atp_artifacts', help: 'Artifacts by state', labelNames: ['state'], registers: [registry] });
  const sessions = new Gauge({ name: 'atp_sessions', help: 'Sessions by kind', labelNames: ['kind'], registers: [registry] });
  const leases = new Gauge({ name: 'atp_leases', help: 'Leases held now', registers: [registry] });
  const forgotten = new Counter({
    name: 'atp_artifacts_forgotten_total',
    help: 'Terminal artifacts forgotten after their retention',
    registers: [registry],
  });
  let forgottenSeen = 0;
  const budgetUsed = new Gauge({
    name: 'atp_message_budget_used_bytes',
    help: 'Bytes reserved for large messages being received',
    registers: [registry],
  });
  const budgetWaiting = new Gauge({
    name: 'atp_message_budget_waiting',
    help: 'Large messages waiting for memory to be received',
    registers: [registry],
  });
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const st = await statusOf(c);
        if (req.url === '/status') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(st, null, 2));
        } else if (req.url === '/metrics') {
          for (const [state, n] of Object.entries(st.artifacts)) artifacts.set({ state }, n);
          sessions.set({ kind: 'worker' }, st.sessions.workers);
          sessions.set({ kind: 'producer' }, st.sessions.producers);
          sessions.set({ kind: 'detached' }, st.sessions.detached);
          leases.set(st.leases);
          forgotten.inc(st.forgotten - forgottenSeen);
          forgottenSeen = st.forgotten;
          budgetUsed.set(st.messageBudget.usedBytes);
          budgetWaiting.set(st.messageBudget.waiting);
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(await registry.metrics());
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('try /status or /metrics\n');
        }
      } catch (err) {
        res.writeHead(500);
        res.end(String(err));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port, close: () => server.close() };
}
