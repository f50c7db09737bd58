/** `atp coordinator`: run a coordinator with its store, listeners, logs, status and metrics. */
import { subscribe } from 'node:diagnostics_channel';
import type { Command } from 'commander';
import { pino } from 'pino';
import { COORDINATOR_DIAGNOSTICS, Coordinator } from '../coordinator/coordinator.js';
import type { TokenGrant } from '../coordinator/options.js';
import { openStore } from '../store/index.js';
import { startStatusServer } from './status-server.js';
import { collect, durationFlag, fatal, hostPortFlag, intFlag, urlFlag } from './options.js';

interface CoordinatorFlags {
  listen: string[];
  store: string;
  leaseTtl?: number;
  heartbeat?: number;
  resumeWindow?: number;
  cancelDeadline?: number;
  maxAttempts?: number;
  retain?: number;
  maxFrameBytes?: number;
  maxMessageBytes?: number;
  messageBudgetBytes?: number;
  minMessageRate?: number;
  idleTimeout?: number;
  token: string[];
  http?: { host: string; port: number };
  logLevel: string;
}

/** Parse `TOKEN[:ROLES[:TENANT]]`, roles as letters w (worker), p (producer), o (observer). */
function parseToken(spec: string): [string, TokenGrant] {
  const [token, roles = 'wpo', tenant = ''] = spec.split(':');
  if (token === undefined || token.length < 8)
    throw new Error(`--token ${JSON.stringify(spec)}: the token must be at least 8 characters (TOKEN[:ROLES[:TENANT]])`);
  let bits = 0;
  for (const c of roles) {
    if (c === 'w') bits |= 1;
    else if (c === 'p') bits |= 2;
    else if (c === 'o') bits |= 4;
    else
      throw new Error(
        `--token ${JSON.stringify(spec)}: roles are letters w (worker), p (producer), o (observer), got ${JSON.stringify(c)}`,
      );
  }
  return [token, { roles: bits, tenant }];
}

/** Register the command. */
export function registerCoordinator(program: Command): void {
  program
    .command('coordinator')
    .description('run a coordinator: the control plane that leases artifacts to workers')
    .option(
      '-l, --listen <url>',
      'address to listen on (repeatable): tcp://, tls://, ws://',
      (v, p: string[]) => collect(urlFlag(v), p),
      [],
    )
    .option('-s, --store <spec>', 'state store: sqlite:PATH (default sqlite:./atp.db), memory, or postgres://...', 'sqlite:./atp.db')
    .option('--lease-ttl <ms>', 'default lease ttl', intFlag('--lease-ttl', 50, 0xffffffff))
    .option('--heartbeat <ms>', 'how often clients renew or ping', intFlag('--heartbeat', 10, 0xffffffff))
    .option('--resume-window <ms>', 'how long a dropped worker may resume its leases', intFlag('--resume-window', 1, 0xffffffff))
    .option('--cancel-deadline <ms>', 'how long a worker has to acknowledge a revoke', intFlag('--cancel-deadline', 1, 0xffffffff))
    .option('--idle-timeout <ms>', 'close connections silent for this long', intFlag('--idle-timeout', 0, 0xffffffff))
    .option('--max-attempts <n>', 'default attempts before an artifact fails', intFlag('--max-attempts', 1, 65535))
    .option(
      '--retain <duration>',
      'how long a finished artifact is remembered (its result, for resubmits and queries): 90s, 30m, 24h, 7d, or forever (default 24h)',
      durationFlag('--retain'),
    )
    .option('--max-frame-bytes <n>', 'largest frame payload accepted', intFlag('--max-frame-bytes', 65536, 16777216))
    .option(
      '--max-message-bytes <n>',
      'largest message accepted, whole or in fragments (default 268435456)',
      intFlag('--max-message-bytes', 65536, 4294967295),
    )
    .option(
      '--message-budget-bytes <n>',
      'memory for large messages being received, all connections together; one that does not fit waits (default 1073741824, at least --max-message-bytes)',
      intFlag('--message-budget-bytes', 65536, Number.MAX_SAFE_INTEGER),
    )
    .option(
      '--min-message-rate <bytes/s>',
      'while large messages wait for that memory, one holding it must arrive at least this fast on average, after 10 s; 0 for no minimum (default 65536)',
      intFlag('--min-message-rate', 0, Number.MAX_SAFE_INTEGER),
    )
    .option('--token <token[:roles[:tenant]]>', 'require bearer tokens (repeatable); roles: w, p, o', collect, [])
    .option('--http <host:port>', 'serve /status (JSON) and /metrics (Prometheus) on this address', hostPortFlag)
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .action(async (flags: CoordinatorFlags) => {
      const log = pino({ level: flags.logLevel, base: null }, pino.destination(2));
      try {
        const tokens = flags.token.length > 0 ? new Map(flags.token.map(parseToken)) : undefined;
        const store = openStore(flags.store);
        const coordinator = new Coordinator({
          store,
          ...(flags.leaseTtl !== undefined ? { leaseTtlMs: flags.leaseTtl } : {}),
          ...(flags.heartbeat !== undefined ? { heartbeatMs: flags.heartbeat } : {}),
          ...(flags.resumeWindow !== undefined ? { resumeWindowMs: flags.resumeWindow } : {}),
          ...(flags.cancelDeadline !== undefined ? { cancelDeadlineMs: flags.cancelDeadline } : {}),
          ...(flags.idleTimeout !== undefined ? { idleTimeoutMs: flags.idleTimeout } : {}),
          ...(flags.maxAttempts !== undefined ? { maxAttempts: flags.maxAttempts } : {}),
          ...(flags.retain !== undefined ? { retainMs: flags.retain } : {}),
          ...(flags.maxFrameBytes !== undefined ? { maxFrameBytes: flags.maxFrameBytes } : {}),
          ...(flags.maxMessageBytes !== undefined ? { maxMessageBytes: flags.maxMessageBytes } : {}),
          ...(flags.messageBudgetBytes !== undefined ? { messageBudgetBytes: flags.messageBudgetBytes } : {}),
          ...(flags.minMessageRate !== undefined ? { minMessageBytesPerSecond: flags.minMessageRate } : {}),
          ...(tokens !== undefined ? { tokens } : {}),
        });
        subscribe(COORDINATOR_DIAGNOSTICS, (m) => {
          const { event, ...rest } = m as { event: string };
          const level =
            event === 'fault'
              ? 'error'
              : event === 'revoke-timeout'
                ? 'warn'
                : ['stale', 'lease-lost', 'revoke-ack'].includes(event)
                  ? 'debug'
                  : 'info';
          log[level](rest, event);
        });
        const urls = flags.listen.length > 0 ? flags.listen : ['tcp://127.0.0.1:7400'];
        for (const u of urls) {
          const l = await coordinator.listen(u);
          process.stdout.write(`atp coordinator listening on ${l.url} (store ${store.name})\n`);
        }
        if (flags.http !== undefined) {
          const s = await startStatusServer(coordinator, flags.http.host, flags.http.port);
          process.stdout.write(`status on http://${s.host}:${s.port}/status, metrics on /metrics\n`);
        }
        const stop = () => {
          log.info('shutting down');
          void coordinator.close().then(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (err) {
        fatal(err);
      }
    });
}
