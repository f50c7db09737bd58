/** Applies numbered, append-only migrations to a SQLite database, in order, each in one transaction. */
import type Database from 'better-sqlite3';
import type { Migration } from '../migrations/sqlite-migrations.js';

/** Bring the schema to the newest version; returns the versions applied now. */
export function migrate(db: Database.Database, migrations: readonly Migration[]): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list is not numbered 1..n: entry ${i} has version ${m.version}`);
  });
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>).map(
    (r) => r.version,
  );
  applied.forEach((v, i) => {
    if (v !== i + 1) throw new Error(`schema_migrations is not a prefix 1..n: found version ${v} at position ${i + 1}`);
  });
  if (applied.length > migrations.length) {
    throw new Error(
      `the database has schema version ${applied.length}, newer than this build knows (${migrations.length}); refusing to open it`,
    );
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const done: number[] = [];
  for (const m of migrations.slice(applied.length)) {
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }).immediate();
    done.push(m.version);
  }
  return done;
}
