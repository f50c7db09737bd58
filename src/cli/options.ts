/** Shared flag parsers for the CLI: each bad value says what was wrong and how to fix it. */
import { InvalidArgumentError } from 'commander';

/** Parse a non-negative integer flag. */
export function intFlag(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)} (for example ${name} ${Math.max(min, 1)})`,
      );
    }
    return n;
  };
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration flag: milliseconds, or a number with a unit (ms, s, m, h, d), or `forever` (Infinity). */
export function durationFlag(name: string) {
  return (value: string): number => {
    const v = value.trim();
    if (v === 'forever') return Infinity;
    const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v);
    const n = m === null ? NaN : Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(
        `${name} must be a positive duration: milliseconds, or a number with a unit ms, s, m, h or d, or forever; got ${JSON.stringify(value)} (for example ${name} 24h)`,
      );
    }
    return n;
  };
}

/** Parse an ATP address flag. */
export function urlFlag(value: string): string {
  if (!/^(tcp|tls|ws|wss|memory):\/\//.test(value)) {
    throw new InvalidArgumentError(
      `${JSON.stringify(value)} is not an ATP address; use tcp://HOST:PORT, tls://HOST:PORT, ws://HOST:PORT/PATH or wss://...`,
    );
  }
  return value;
}

/** Collect a repeatable flag. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parse an HTTP listen address `HOST:PORT`. */
export function hostPortFlag(value: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(value);
  if (m === null || Number(m[2]) > 65535)
    throw new InvalidArgumentError(`${JSON.stringify(value)} must be HOST:PORT, for example 127.0.0.1:7402`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

/** Print an error for a command that failed at run time and exit 1. */
export function fatal(err: unknown): never {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`atp: ${e.code !== undefined ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(1);
}
