/**
 * A worker process of the hybrid example, of one kind:
 *
 *   node dist/examples/hybrid/worker-main.js <url> --kind hybrid.eval --model examples/hybrid/out/model.json [--concurrency N]
 *   node dist/examples/hybrid/worker-main.js <url> --kind hybrid.search [--concurrency N]
 *
 * An eval worker loads the model once and prints `HYBRID-SERVED {json}` for each batch it serves.
 * A search worker also connects a Client, through which its handlers submit their batches.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from '../../src/client/client.js';
import { Worker } from '../../src/worker/worker.js';
import { evalHandler, searchHandler } from './handlers.js';
import { Mlp } from './mlp.js';
import type { MlpJson } from './mlp.js';
import { EVAL_KIND, SEARCH_KIND, SERVED_PREFIX } from './protocol.js';
import type { ServedRecord } from './protocol.js';

const [url, ...rest] = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = rest.indexOf(`--${name}`);
  return i < 0 ? undefined : rest[i + 1];
};
const kind = flag('kind');
if (
  url === undefined ||
  url.startsWith('--') ||
  (kind !== EVAL_KIND && kind !== SEARCH_KIND) ||
  (kind === EVAL_KIND && flag('model') === undefined)
) {
  console.error(
    `usage: node dist/examples/hybrid/worker-main.js <url> --kind ${EVAL_KIND} --model model.json | --kind ${SEARCH_KIND} [--concurrency N]`,
  );
  process.exit(2);
}
const concurrency = Number(flag('concurrency') ?? 2);
const worker = new Worker({ url, concurrency });
let client: Client | undefined;
let what: string;
if (kind === EVAL_KIND) {
  const text = readFileSync(flag('model')!, 'utf8');
  const model = Mlp.fromJson(JSON.parse(text) as MlpJson);
  worker.handle(
    EVAL_KIND,
    evalHandler(model, (artifact, positions) => {
      const record: ServedRecord = { pid: process.pid, artifactId: artifact.id, parentId: artifact.parentId, positions };
      process.stdout.write(`${SERVED_PREFIX}${JSON.stringify(record)}\n`);
    }),
  );
  what = `model ${flag('model')} (sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 16)}, ${model.parameterCount} parameters)`;
} else {
  client = await Client.connect(url);
  worker.handle(SEARCH_KIND, searchHandler(client));
  what = 'submitting its batches through its own client';
}
await worker.start();
console.log(`hybrid ${kind} worker pid ${process.pid} connected to ${url}, concurrency ${concurrency}, ${what}`);
process.once('SIGTERM', () => {
  void worker
    .close()
    .then(() => client?.close())
    .then(() => process.exit(0));
});
