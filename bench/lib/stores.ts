/**
 * The stores the benchmark runs ATP on. The SQLite store is loaded only if it has been built
 * (dist/src/store/sqlite/sqlite-store.js), so the harness runs on trees that do not have it yet.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';

/** Store names the harness knows. */
export type StoreName = 'memory' | 'sqlite';

const sqliteModule = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'store', 'sqlite', 'sqlite-store.js');

/** True when the SQLite store has been built. */
export function sqliteAvailable(): boolean {
  return existsSync(sqliteModule);
}

type StoreClass = new (options: unknown) => Store;

/** Make a store; `file` is the database file for SQLite. */
export async function makeStore(name: StoreName, file: string): Promise<Store> {
  if (name === 'memory') return new MemoryStore();
  const mod = (await import(pathToFileURL(sqliteModule).href)) as Record<string, unknown>;
  const Ctor = (mod['SqliteStore'] ?? mod['default']) as StoreClass | undefined;
  if (typeof Ctor !== 'function') throw new Error(`${sqliteModule} exports no SqliteStore class`);
  return new Ctor({ path: file, file, filename: file });
}
