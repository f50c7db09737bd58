/**
 * The processes of a floor row (bench/procs/relay-floor.ts): a relay in the coordinator's place, its
 * workers and one producer, started for one measurement and stopped after it, whatever happens.
 */
import { stopProcs } from './context.js';
import { Proc } from './proc.js';

/** The started processes of one floor measurement. */
export interface RelayFloor {
  relay: Proc;
  workers: Proc[];
  producer: Proc;
}

/** How the floor's processes run: one artifact per frame unless `batch`; the workers' handler `mode`. */
export interface RelayFloorOptions {
  workers: number;
  credits: number;
  mode?: 'noop' | 'stamp' | 'hold';
  batch?: boolean;
}

/** Start a relay, its workers and a producer, run `measure` with them, then stop them all. */
export async function withRelayFloor<T>(o: RelayFloorOptions, measure: (f: RelayFloor) => Promise<T>): Promise<T> {
  const batch = o.batch === true;
  const relay = await Proc.start('relay-floor', 'relay-floor', { role: 'relay', batch });
  let workers: Proc[] = [];
  let producer: Proc | undefined;
  try {
    const port = relay.ready['port'] as number;
    workers = await Promise.all(
      Array.from({ length: o.workers }, (_, i) =>
        Proc.start('relay-floor', `relay-floor-worker-${i}`, { role: 'worker', port, credits: o.credits, mode: o.mode ?? 'noop', batch }),
      ),
    );
    producer = await Proc.start('relay-floor', 'relay-floor-producer', { role: 'producer', port, batch });
    return await measure({ relay, workers, producer });
  } finally {
    await stopProcs(producer, workers);
    await stopProcs(relay);
  }
}
