/**
 * The stores the benchmark runs ATP on. The SQLite store is loaded only if it has been built
 * (dist/src/store/sqlite/sqlite-store.js), so the harness runs on trees that do not have it yet.
 * PostgreSQL runs on the server named by ATP_PG_URL (the harness starts a throwaway one with
 * .ci/services.sh when it can), each run in a schema of its own, dropped when the run ends.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';

/** Store names the harness knows. */
export type StoreName = 'memory' | 'sqlite' | 'postgres';
/** The embedded stores, which every scenario runs on. */
export type EmbeddedStoreName = 'memory' | 'sqlite';

const sqliteModule = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'store', 'sqlite', 'sqlite-store.js');

/** True when the SQLite store has been built. */
export function sqliteAvailable(): boolean {
  return existsSync(sqliteModule);
}

type StoreClass = new (options: unknown) => Store;

/**
 * The PostgreSQL server for the benchmark: ATP_PG_URL, or a throwaway cluster on loopback started
 * the way .ci/run starts it; undefined (with the reason) when neither is possible.
 */
export function postgresUrl(repo: string): { url?: string; why?: string } {
  if (process.env['ATP_PG_URL'] !== undefined) return { url: process.env['ATP_PG_URL'] };
  const r = spawnSync('bash', ['-c', 'source .ci/services.sh && start_postgres >&2 && echo "$ATP_PG_URL"'], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const url = r.status === 0 ? r.stdout.trim() : '';
  if (url === '')
    return {
      why: `no ATP_PG_URL and no local PostgreSQL could be started (${(r.stderr || String(r.error ?? '')).trim().split('\n').at(-1) ?? ''})`,
    };
  process.env['ATP_PG_URL'] = url;
  return { url };
}

/** Make a store; `file` is the database file for SQLite, and names the PostgreSQL schema. */
export async function makeStore(name: StoreName, file: string): Promise<Store> {
  if (name === 'memory') return new MemoryStore();
  if (name === 'postgres') {
    const url = process.env['ATP_PG_URL'];
    if (url === undefined) throw new Error('the PostgreSQL store needs ATP_PG_URL');
    const { PostgresStore } = await import('../../src/store/postgres/postgres-store.js');
    return new PostgresStore({ url, schema: benchSchema(file) });
  }
  const mod = (await import(pathToFileURL(sqliteModule).href)) as Record<string, unknown>;
  const Ctor = (mod['SqliteStore'] ?? mod['default']) as StoreClass | undefined;
  if (typeof Ctor !== 'function') throw new Error(`${sqliteModule} exports no SqliteStore class`);
  return new Ctor({ path: file, file, filename: file });
}

function benchSchema(file: string): string {
  return `bench_${process.pid}_${path.basename(file).replace(/[^a-z0-9]/g, '_')}`.slice(0, 40);
}

/** Drop what makeStore created on a server (the PostgreSQL schema), once the store is closed. */
export async function discardStore(name: StoreName, file: string): Promise<void> {
  if (name !== 'postgres') return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env['ATP_PG_URL'] });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${benchSchema(file)} CASCADE`);
  } finally {
    await client.end();
  }
}
