/**
 * Schema of the SQLite store as numbered, append-only migrations. A released migration is never
 * edited: a change of schema is a new entry at the end. Applied versions are recorded in
 * `schema_migrations`; a database that has a version this build does not know is refused.
 */

/** One schema step. */
export interface Migration {
  /** 1, 2, 3, … in order, without gaps. */
  readonly version: number;
  readonly name: string;
  /** Statements run in one transaction with the row that records the version. */
  readonly sql: string;
}

/** The SQLite migrations, oldest first. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'artifacts, payloads, quorum votes, sessions',
    // `seq` (the rowid) is the order of acceptance: rows are clustered by it, so that a flush of
    // recently leased artifacts updates neighbouring pages (node-baselines §3c: scattered updates
    // cost about 7x sequential ones). The current leases of an artifact live in its own row (JSON),
    // so one transition writes one row. The payload is in its own table, written once at
    // acceptance, so that state changes do not rewrite it.
    sql: `
      CREATE TABLE artifacts (
        seq               INTEGER PRIMARY KEY,
        tenant            TEXT    NOT NULL,
        id                TEXT    NOT NULL,
        digest            TEXT    NOT NULL,
        kind              TEXT    NOT NULL,
        priority          INTEGER NOT NULL,
        late_policy       INTEGER NOT NULL,
        quorum_k          INTEGER NOT NULL,
        quorum_n          INTEGER NOT NULL,
        lease_ttl_ms      INTEGER NOT NULL,
        max_duration_ms   INTEGER NOT NULL,
        deadline_at       REAL    NOT NULL,
        max_attempts      INTEGER NOT NULL,
        parent_id         TEXT,
        tags              TEXT    NOT NULL,
        created_at        REAL    NOT NULL,
        state             INTEGER NOT NULL,
        epoch             INTEGER NOT NULL,
        failed_attempts   INTEGER NOT NULL,
        code              TEXT,
        message           TEXT    NOT NULL,
        last_partial_seq  INTEGER NOT NULL,
        last_partial      BLOB,
        checkpoint        BLOB,
        result            BLOB,
        result_digest     TEXT,
        subtree_cancelled INTEGER NOT NULL,
        leases            TEXT,
        quorum_nodes      TEXT
      );
      CREATE UNIQUE INDEX artifacts_tenant_id ON artifacts (tenant, id);
      CREATE TABLE payloads (
        artifact_seq INTEGER PRIMARY KEY,
        payload      BLOB NOT NULL
      );
      CREATE TABLE quorum_votes (
        artifact_seq INTEGER NOT NULL,
        digest       TEXT    NOT NULL,
        count        INTEGER NOT NULL,
        result       BLOB    NOT NULL,
        PRIMARY KEY (artifact_seq, digest)
      ) WITHOUT ROWID;
      CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        token_hash TEXT    NOT NULL,
        node_id    TEXT    NOT NULL,
        tenant     TEXT    NOT NULL,
        roles      INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'no index on (tenant, id)',
    // The coordinator holds the file exclusively and checks an id's uniqueness in memory before it
    // accepts the artifact; the load at open checks it again (sqlite-store.ts). Nothing reads by
    // this index. Its keys are random, so each group commit dirtied one index page per new
    // artifact: with it, a commit of 330 new artifacts wrote about 1.3 MB of WAL, and writing an
    // artifact's rows cost 2x the time it costs without it (bench/results, BENCHMARKS.md).
    sql: `DROP INDEX artifacts_tenant_id;`,
  },
  {
    version: 3,
    name: 'no payloads of terminal artifacts',
    // A terminal artifact is never leased again and nothing reads its payload; the store now
    // deletes the payload when the artifact ends. This removes those that earlier versions kept.
    sql: `DELETE FROM payloads WHERE artifact_seq IN (SELECT seq FROM artifacts WHERE state NOT IN (1, 2));`,
  },
  {
    version: 4,
    name: 'when an artifact ended',
    // ATP_SPEC §3.11: a terminal artifact is forgotten once its retention has passed, counted from
    // when it ended. Earlier versions did not record that time; their terminal artifacts count from
    // their acceptance, the latest time known to be no later than their end.
    sql: `ALTER TABLE artifacts ADD COLUMN ended_at REAL NOT NULL DEFAULT 0;
          UPDATE artifacts SET ended_at = created_at WHERE state NOT IN (1, 2);`,
  },
];
