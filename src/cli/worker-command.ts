/** `atp worker`: connect to a coordinator and run the handlers of a module. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import type { Handler } from '../worker/worker.js';
import { Worker } from '../worker/worker.js';
import { fatal, intFlag, urlFlag } from './options.js';

interface WorkerFlags {
  connect: string;
  module: string;
  concurrency: number;
  token?: string;
  tenant?: string;
}

/** Load a handler module: `export const handlers = { kind: fn }`, or a default export of that shape. */
export async function loadHandlers(path: string): Promise<Map<string, Handler>> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot load handler module ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const table = (mod.handlers ?? mod.default) as Record<string, unknown> | undefined;
  if (table === undefined || typeof table !== 'object') {
    throw new Error(
      `${path} must export "handlers" (or a default export): an object mapping each artifact kind to an async (artifact, ctx) => result function`,
    );
  }
  const out = new Map<string, Handler>();
  for (const [kind, fn] of Object.entries(table)) {
    if (typeof fn !== 'function') throw new Error(`${path}: handlers.${kind} is not a function`);
    out.set(kind, fn as Handler);
  }
  if (out.size === 0) throw new Error(`${path}: no handlers exported`);
  return out;
}

/** Register the command. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker: take leases and run handlers from a module')
    .requiredOption('-c, --connect <url>', 'coordinator address', urlFlag)
    .requiredOption('-m, --module <path>', 'module exporting handlers: { kind: async (artifact, ctx) => result }')
    .option('-n, --concurrency <n>', 'handlers that may run at once', intFlag('--concurrency', 1, 65536), 1)
    .option('--token <token>', 'bearer token')
    .option('--tenant <tenant>', 'tenant')
    .action(async (flags: WorkerFlags) => {
      try {
        const handlers = await loadHandlers(flags.module);
        const worker = new Worker({
          url: flags.connect,
          concurrency: flags.concurrency,
          ...(flags.token !== undefined ? { authToken: flags.token } : {}),
          ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
        });
        for (const [kind, fn] of handlers) worker.handle(kind, fn);
        await worker.start();
        process.stdout.write(
          `atp worker pid ${process.pid} connected to ${flags.connect}, kinds ${[...handlers.keys()].join(', ')}, concurrency ${flags.concurrency}\n`,
        );
        const drain = (mode: 'finish' | 'handback') => () => {
          process.stdout.write(`atp worker pid ${process.pid} draining (${mode})\n`);
          void worker
            .drain(mode)
            .then(() => worker.close())
            .then(() => process.exit(0));
        };
        process.once('SIGTERM', drain('finish'));
        process.once('SIGINT', drain('handback'));
      } catch (err) {
        fatal(err);
      }
    });
}
