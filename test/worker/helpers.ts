/**
 * Harness for the worker-thread tests: a real coordinator on loopback TCP, a producer Client, and
 * recorders for the coordinator's and the thread pools' diagnostics and for the fixture handlers'
 * reports. Every wait is on an event, never on wall-clock time (the test runner's timeout is the
 * only clock).
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { BroadcastChannel } from 'node:worker_threads';
import { Client } from '../../src/client/client.js';
import { COORDINATOR_DIAGNOSTICS, Coordinator } from '../../src/coordinator/coordinator.js';
import type { CoordinatorOptions } from '../../src/coordinator/options.js';
import { WORKER_THREADS_DIAGNOSTICS } from '../../src/worker/thread-pool.js';
import { Worker } from '../../src/worker/worker.js';
import type { WorkerOptions } from '../../src/worker/worker.js';
import { FIXTURE_CHANNEL } from '../fixtures/thread-handlers.js';
import type { FixtureEvent } from '../fixtures/thread-handlers.js';

/** The compiled fixture module the threads load. */
export const FIXTURES = new URL('../fixtures/thread-handlers.js', import.meta.url);

/** A list of events with promises that resolve when a matching one arrives. */
export class Events<T> {
  readonly all: T[] = [];
  readonly #waiters: Array<{ pred: (e: T) => boolean; resolve: (e: T) => void }> = [];

  push(e: T): void {
    this.all.push(e);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i]!;
      if (w.pred(e)) {
        this.#waiters.splice(i, 1);
        w.resolve(e);
      }
    }
  }

  /** The first event (already recorded or still to come) that matches. */
  until(pred: (e: T) => boolean): Promise<T> {
    const found = this.all.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }

  filter(pred: (e: T) => boolean): T[] {
    return this.all.filter(pred);
  }
}

/** A diagnostics record. */
export type Diag = { event: string } & Record<string, unknown>;

/** One test's world. */
export interface Harness {
  coord: Coordinator;
  url: string;
  client: Client;
  coordEvents: Events<Diag>;
  poolEvents: Events<Diag>;
  fixtures: Events<FixtureEvent>;
  /** Post on the fixtures' channel (to release a rendezvous). */
  tell(e: FixtureEvent): void;
  /** A worker on this coordinator, closed with the harness. */
  worker(options?: Omit<WorkerOptions, 'url'>): Worker;
  close(): Promise<void>;
}

/** Start a coordinator on tcp://127.0.0.1:0 and a client. */
export async function harness(options: CoordinatorOptions = {}): Promise<Harness> {
  const coord = new Coordinator(options);
  const listener = await coord.listen('tcp://127.0.0.1:0');
  const coordEvents = new Events<Diag>();
  const poolEvents = new Events<Diag>();
  const fixtures = new Events<FixtureEvent>();
  const onCoord = (m: unknown) => coordEvents.push(m as Diag);
  const onPool = (m: unknown) => poolEvents.push(m as Diag);
  diagnosticsChannel(COORDINATOR_DIAGNOSTICS).subscribe(onCoord);
  diagnosticsChannel(WORKER_THREADS_DIAGNOSTICS).subscribe(onPool);
  const bc = new BroadcastChannel(FIXTURE_CHANNEL);
  bc.onmessage = (e) => fixtures.push((e as { data: FixtureEvent }).data);
  const client = await Client.connect(listener.url);
  const workers: Worker[] = [];
  return {
    coord,
    url: listener.url,
    client,
    coordEvents,
    poolEvents,
    fixtures,
    tell: (e) => bc.postMessage(e),
    worker: (o = {}) => {
      const w = new Worker({ ...o, url: listener.url });
      workers.push(w);
      return w;
    },
    close: async () => {
      for (const w of workers) await w.close();
      await client.close();
      await coord.close();
      diagnosticsChannel(COORDINATOR_DIAGNOSTICS).unsubscribe(onCoord);
      diagnosticsChannel(WORKER_THREADS_DIAGNOSTICS).unsubscribe(onPool);
      bc.close();
    },
  };
}

/** Run `fn` with a fresh harness, closing it afterwards. */
export async function withHarness(options: CoordinatorOptions, fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await harness(options);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
