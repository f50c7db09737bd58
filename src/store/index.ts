/** The stores and `openStore(spec)`, which picks one from a command-line style spec. */
import { MemoryStore } from './memory-store.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export { MemoryStore } from './memory-store.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export { PostgresStore } from './postgres/postgres-store.js';
export type { PostgresStoreOptions } from './postgres/postgres-store.js';
export type { SqliteStoreOptions, SqliteStoreStats } from './sqlite/sqlite-store.js';
export type * from './store.js';

/**
 * A store from a spec: `memory`; `sqlite:PATH` or a path ending in `.db` (SQLite, created if
 * missing); `postgres://…` or `postgresql://…` (PostgreSQL, shared by several coordinators).
 * The store is not opened: the coordinator opens it at start. Throws TypeError on an unknown spec.
 */
export function openStore(spec: string): Store {
  const s = spec.trim();
  if (s === 'memory' || s === 'memory:') return new MemoryStore();
  if (s.startsWith('sqlite:')) {
    // sqlite:PATH, also sqlite://PATH as URLs are often written.
    const path = s.slice('sqlite:'.length).replace(/^\/\/(?=[./~]|[A-Za-z]:)/, '');
    if (path === '') throw new TypeError(`store spec ${JSON.stringify(spec)} names no file: use sqlite:PATH`);
    return new SqliteStore({ path });
  }
  if (/^postgres(ql)?:\/\//.test(s)) return new PostgresStore({ url: s });
  if (s.endsWith('.db')) return new SqliteStore({ path: s });
  throw new TypeError(`unknown store spec ${JSON.stringify(redact(s))}: expected memory, sqlite:PATH, PATH.db or postgres://…`);
}

/** A spec without a password, for messages. */
function redact(spec: string): string {
  return spec.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}
