/** What the numbers were measured on: CPU, memory, Node and package versions. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisVersion } from './redis.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function pkgVersion(name: string): string {
  try {
    const file = name === '.' ? path.join(root, 'package.json') : path.join(root, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** Machine facts printed above the table. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** 1-minute load average when the run started (other work on the machine skews every number). */
  loadStart: number;
  packages: Record<string, string>;
}

/** Collect the machine facts. */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadStart: Math.round(os.loadavg()[0]! * 100) / 100,
    packages: {
      atp: pkgVersion('.'),
      bullmq: pkgVersion('bullmq'),
      ioredis: pkgVersion('ioredis'),
      'better-sqlite3': pkgVersion('better-sqlite3'),
      'redis-server': redisVersion() ?? 'not installed',
    },
  };
}
