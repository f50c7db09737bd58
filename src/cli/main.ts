#!/usr/bin/env node
/** The `atp` command: each subcommand lives in its own file and registers itself here. */
import { Command } from 'commander';
import { registerBench } from './bench-command.js';
import { registerCoordinator } from './coordinator-command.js';
import { registerDemo } from './demo-command.js';
import { registerDump } from './dump-command.js';
import { registerProducerCommands } from './submit-command.js';
import { registerWorker } from './worker-command.js';

const program = new Command('atp')
  .description('ATP, the Artifact Transfer Protocol: coordinator, worker, producer and debugging tools')
  .version('0.1.0')
  .showHelpAfterError('(run "atp <command> --help" for the flags of a command)');

registerCoordinator(program);
registerWorker(program);
registerProducerCommands(program);
registerDemo(program);
registerDump(program);
registerBench(program);

await program.parseAsync(process.argv);
