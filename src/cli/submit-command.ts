/** `atp submit`, `atp cancel`, `atp status`: the producer's side of the CLI. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { SubmitSpec } from '../client/client.js';
import { Client } from '../client/client.js';
import type { ArtifactOutcome } from '../client/handle.js';
import { collect, fatal, intFlag, urlFlag } from './options.js';

interface SubmitFlags {
  connect: string;
  kind?: string;
  payload?: string;
  payloadFile?: string;
  batch?: string;
  priority?: number;
  parent?: string;
  tag: string[];
  deadline?: number;
  leaseTtl?: number;
  maxAttempts?: number;
  follow?: boolean;
  wait: boolean;
  json?: boolean;
  token?: string;
}

const dec = new TextDecoder();

function show(bytes: Uint8Array): string {
  const text = dec.decode(bytes);
  // eslint-disable-next-line no-control-regex
  return /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(text)
    ? text
    : `<${bytes.length} bytes: ${Buffer.from(bytes.subarray(0, 16)).toString('hex')}…>`;
}

function outcomeLine(id: string, o: ArtifactOutcome): string {
  return o.state === 'COMPLETED' ? `${id} COMPLETED ${show(o.result)}` : `${id} ${o.state} ${o.code ?? ''} ${o.message}`.trimEnd();
}

/** Read a batch file: one JSON object per line ({"kind", "payload", ...SubmitSpec}). */
function readBatch(path: string): SubmitSpec[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: SubmitSpec[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${i + 1}: not JSON; each line must be an object like {"kind":"render.tile","payload":"..."}`);
    }
    if (typeof v !== 'object' || v === null || typeof (v as { kind?: unknown }).kind !== 'string')
      throw new Error(`${path}:${i + 1}: each line needs a string "kind"`);
    out.push(v as SubmitSpec);
  });
  return out;
}

/** Register submit, cancel and status. */
export function registerProducerCommands(program: Command): void {
  program
    .command('submit')
    .description('submit one artifact (or a batch) and print the results')
    .requiredOption('-c, --connect <url>', 'coordinator address', urlFlag)
    .option('-k, --kind <kind>', 'artifact kind')
    .option('-p, --payload <text>', 'payload as text')
    .option('--payload-file <path>', 'payload from a file')
    .option('-b, --batch <file.jsonl>', 'submit every line of a JSON-lines file')
    .option('--priority <n>', 'priority 0-255 (higher first)', intFlag('--priority', 0, 255))
    .option('--parent <id>', 'parent artifact id (hex)')
    .option('--tag <tag>', 'tag (repeatable)', collect, [])
    .option('--deadline <ms>', 'expire if not completed within this time', intFlag('--deadline', 1, 0xffffffff))
    .option('--lease-ttl <ms>', 'lease ttl', intFlag('--lease-ttl', 50, 0xffffffff))
    .option('--max-attempts <n>', 'attempts before failing', intFlag('--max-attempts', 1, 65535))
    .option('-f, --follow', 'print state changes and partial results as they arrive')
    .option('--no-wait', 'print the ids once accepted and do not wait for results')
    .option('--json', 'print JSON lines')
    .option('--token <token>', 'bearer token')
    .action(async (flags: SubmitFlags) => {
      try {
        let specs: SubmitSpec[];
        if (flags.batch !== undefined) specs = readBatch(flags.batch);
        else {
          if (flags.kind === undefined) throw new Error('give --kind KIND (and --payload or --payload-file), or --batch FILE.jsonl');
          const payload = flags.payloadFile !== undefined ? readFileSync(flags.payloadFile) : (flags.payload ?? '');
          specs = [
            {
              kind: flags.kind,
              payload,
              tags: flags.tag,
              ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
              ...(flags.parent !== undefined ? { parentId: flags.parent } : {}),
              ...(flags.deadline !== undefined ? { deadlineMs: flags.deadline } : {}),
              ...(flags.leaseTtl !== undefined ? { leaseTtlMs: flags.leaseTtl } : {}),
              ...(flags.maxAttempts !== undefined ? { maxAttempts: flags.maxAttempts } : {}),
            },
          ];
        }
        const follow = flags.follow === true;
        for (const s of specs) s.follow = !flags.wait ? 'none' : follow ? 'all' : 'result';
        const client = await Client.connect(flags.connect, flags.token !== undefined ? { authToken: flags.token } : {});
        const handles = await client.submitMany(specs);
        let failed = 0;
        if (!flags.wait) {
          for (const h of handles)
            process.stdout.write(
              flags.json
                ? `${JSON.stringify({ id: h.id, state: h.acceptedState, duplicate: h.duplicate })}\n`
                : `${h.id} ${h.acceptedState}${h.duplicate ? ' (duplicate)' : ''}\n`,
            );
        } else {
          await Promise.all(
            handles.map(async (h) => {
              for await (const ev of h.events()) {
                if (ev.type === 'result') {
                  if (ev.outcome.state !== 'COMPLETED') failed++;
                  process.stdout.write(
                    flags.json
                      ? `${JSON.stringify({ id: h.id, ...ev.outcome, result: show(ev.outcome.result), checkpoint: undefined })}\n`
                      : `${outcomeLine(h.id, ev.outcome)}\n`,
                  );
                } else if (follow) {
                  const line =
                    ev.type === 'state'
                      ? `${h.id} state ${ev.state}${ev.message ? ` (${ev.message})` : ''}`
                      : `${h.id} partial #${ev.seq} ${show(ev.data)}`;
                  process.stdout.write(
                    flags.json
                      ? `${JSON.stringify({ id: h.id, ...ev, data: ev.type === 'partial' ? show(ev.data) : undefined })}\n`
                      : `${line}\n`,
                  );
                }
              }
            }),
          );
        }
        await client.close();
        process.exit(failed > 0 ? 2 : 0);
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('cancel')
    .description('cancel an artifact, or its whole subtree')
    .requiredOption('-c, --connect <url>', 'coordinator address', urlFlag)
    .argument('<id>', 'artifact id (hex)')
    .option('--subtree', 'also cancel every descendant, present and future')
    .option('--reason <text>', 'reason given to the handlers', 'cancelled from the command line')
    .option('--token <token>', 'bearer token')
    .action(async (id: string, flags: { connect: string; subtree?: boolean; reason: string; token?: string }) => {
      try {
        const client = await Client.connect(flags.connect, flags.token !== undefined ? { authToken: flags.token } : {});
        const r = await client.cancel(id, { subtree: flags.subtree === true, reason: flags.reason });
        process.stdout.write(`cancelled ${r.cancelled}, already finished ${r.alreadyFinished}, stopping ${r.stopping}\n`);
        await client.close();
        process.exit(0);
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('status')
    .description('show the state of artifacts (by id), or of the whole coordinator (--http)')
    .option('-c, --connect <url>', 'coordinator address', urlFlag)
    .option('--http <url>', 'coordinator status endpoint, e.g. http://127.0.0.1:7402')
    .argument('[ids...]', 'artifact ids (hex)')
    .option('--token <token>', 'bearer token')
    .action(async (ids: string[], flags: { connect?: string; http?: string; token?: string }) => {
      try {
        if (flags.http !== undefined) {
          const res = await fetch(new URL('/status', flags.http));
          process.stdout.write(`${await res.text()}\n`);
        }
        if (ids.length > 0) {
          if (flags.connect === undefined) throw new Error('give --connect URL to query artifacts');
          const client = await Client.connect(flags.connect, flags.token !== undefined ? { authToken: flags.token } : {});
          for (const id of ids) {
            const s = await client.query(id);
            process.stdout.write(
              `${id} ${s.state} attempts=${s.attempts} epoch=${s.epoch} partials=${s.lastPartialSeq}${s.code ? ` ${s.code}` : ''}${s.message ? ` ${s.message}` : ''}\n`,
            );
          }
          await client.close();
        } else if (flags.http === undefined)
          throw new Error('give artifact ids with --connect URL, or --http URL for the coordinator status');
        process.exit(0);
      } catch (err) {
        fatal(err);
      }
    });
}
