/**
 * IPC between the harness and its child processes: requests answered by id, and events pushed by
 * the child. Every child exits when the harness goes away, so a crashed harness leaves nothing behind.
 */

/** A request from the harness. */
export interface Request {
  rid: number;
  op: string;
  args: unknown;
}

/** The answer to a request. */
export interface Reply {
  rid: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** An event pushed by a child. */
export interface ChildEvent {
  ev: string;
  [key: string]: unknown;
}

/** Handlers of a child's operations. */
export type Ops = Record<string, (args: never) => unknown>;

/** Longest any child process lives (a bound on every benchmark process). */
const MAX_LIFETIME_MS = 20 * 60_000;

/** The configuration the harness passed as the first argument (JSON). */
export function childConfig<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('a benchmark child needs its JSON configuration as the first argument');
  return JSON.parse(raw) as T;
}

/** Push an event to the harness. */
export function emit(ev: string, data: Record<string, unknown> = {}): void {
  process.send?.({ ev, ...data });
}

/** Operations every child answers: its clock (for the shared-clock check) and its CPU time. */
const builtin: Ops = {
  clock: () => ({ t: nowNs() }),
  cpu: () => ({ cpu: process.cpuUsage(), t: nowNs() }),
};

/** Answer the harness's requests with `ops`; `stop` (if absent) exits the process. */
export function serve(ops: Ops): void {
  const hard = setTimeout(() => process.exit(3), MAX_LIFETIME_MS);
  hard.unref();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw: unknown) => {
    const req = raw as Request;
    if (typeof req !== 'object' || req === null || typeof req.rid !== 'number') return;
    const op = (ops[req.op] ?? builtin[req.op]) as ((args: unknown) => unknown) | undefined;
    const answer = (r: Reply, then?: () => void) => process.send?.(r, undefined, undefined, () => then?.());
    if (op === undefined) {
      if (req.op === 'exit') return answer({ rid: req.rid, ok: true }, () => process.exit(0));
      return answer({ rid: req.rid, ok: false, error: `unknown op ${req.op}` });
    }
    Promise.resolve()
      .then(() => op(req.args))
      .then(
        (value) => answer({ rid: req.rid, ok: true, value }, req.op === 'exit' ? () => process.exit(0) : undefined),
        (err: unknown) => answer({ rid: req.rid, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
}

/** Monotonic nanoseconds (CLOCK_MONOTONIC: one clock for every process on the machine). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** Busy the CPU for `ms` milliseconds, measured by process.hrtime. Returns a value so the work is not optimized away. */
export function spin(ms: number): number {
  const end = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  let x = 1;
  // Integer work between clock reads: reading process.hrtime.bigint() in a tight loop allocates a
  // BigInt per read, and the garbage collection that follows would be most of the "work".
  do {
    for (let i = 0; i < 500; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  } while (process.hrtime.bigint() < end);
  return x;
}
