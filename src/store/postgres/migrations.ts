/**
 * PostgreSQL schema migrations: numbered, append-only, applied in order on open inside one
 * transaction under an advisory lock, so that several coordinators starting together migrate once.
 */

/** Migration `n` is at index n-1. Never edit a migration that has shipped: append a new one. */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: artifacts, leases, ended leases, quorum votes, sessions, coordinators.
  `
  CREATE TABLE atp_artifacts (
    tenant            text     NOT NULL,
    id                text     NOT NULL,
    seq               bigserial,
    digest            text     NOT NULL,
    kind              text     NOT NULL,
    payload           bytea    NOT NULL,
    priority          smallint NOT NULL,
    late_policy       smallint NOT NULL,
    quorum_k          smallint NOT NULL,
    quorum_n          smallint NOT NULL,
    lease_ttl_ms      bigint   NOT NULL,
    max_duration_ms   bigint   NOT NULL,
    deadline_at       bigint   NOT NULL,
    max_attempts      integer  NOT NULL,
    parent_id         text,
    tags              text[]   NOT NULL,
    state             smallint NOT NULL,
    epoch             integer  NOT NULL DEFAULT 0,
    failed_attempts   integer  NOT NULL DEFAULT 0,
    code              text,
    message           text     NOT NULL DEFAULT '',
    last_partial_seq  integer  NOT NULL DEFAULT 0,
    last_partial      bytea,
    checkpoint        bytea,
    result            bytea,
    result_digest     text,
    subtree_cancelled boolean  NOT NULL DEFAULT false,
    leases_out        integer  NOT NULL DEFAULT 0,
    votes_count       integer  NOT NULL DEFAULT 0,
    quorum_nodes      text[]   NOT NULL DEFAULT '{}',
    created_at        bigint   NOT NULL,
    PRIMARY KEY (tenant, id)
  );
  CREATE INDEX atp_artifacts_leasable ON atp_artifacts (tenant, kind, priority DESC, seq) WHERE state IN (1, 2);
  CREATE INDEX atp_artifacts_parent ON atp_artifacts (tenant, parent_id) WHERE parent_id IS NOT NULL;
  CREATE INDEX atp_artifacts_tags ON atp_artifacts USING gin (tags);
  CREATE INDEX atp_artifacts_deadline ON atp_artifacts (deadline_at) WHERE deadline_at > 0 AND state IN (1, 2);
  CREATE TABLE atp_leases (
    lease_id        text    PRIMARY KEY,
    tenant          text    NOT NULL,
    artifact_id     text    NOT NULL,
    epoch           integer NOT NULL,
    session_id      text    NOT NULL,
    node_id         text    NOT NULL,
    granted_at      bigint  NOT NULL,
    ttl_ms          bigint  NOT NULL,
    max_duration_ms bigint  NOT NULL
  );
  CREATE INDEX atp_leases_artifact ON atp_leases (tenant, artifact_id);
  CREATE INDEX atp_leases_session ON atp_leases (session_id);
  CREATE TABLE atp_ended_leases (
    lease_id    text    PRIMARY KEY,
    tenant      text    NOT NULL,
    artifact_id text    NOT NULL,
    epoch       integer NOT NULL,
    code        text    NOT NULL,
    session_id  text    NOT NULL,
    ended_at    bigint  NOT NULL
  );
  CREATE TABLE atp_votes (
    tenant      text    NOT NULL,
    artifact_id text    NOT NULL,
    digest      text    NOT NULL,
    count       integer NOT NULL,
    result      bytea   NOT NULL,
    PRIMARY KEY (tenant, artifact_id, digest)
  );
  CREATE TABLE atp_sessions (
    session_id     text     PRIMARY KEY,
    token_hash     text     NOT NULL,
    node_id        text     NOT NULL,
    tenant         text     NOT NULL,
    roles          smallint NOT NULL,
    coordinator_id text     NOT NULL
  );
  CREATE TABLE atp_coordinators (
    id           text   PRIMARY KEY,
    heartbeat_at bigint NOT NULL
  );
  `,
  // 2: ended leases are pruned by age of ending (ATP_SPEC ATP-5.6-4), newest kept.
  `
  CREATE INDEX atp_ended_leases_ended_at ON atp_ended_leases (ended_at, lease_id);
  `,
  // 3: a terminal artifact's payload is emptied when it ends (never read again); empty those that
  // earlier versions kept.
  `
  UPDATE atp_artifacts SET payload = '' WHERE state NOT IN (1, 2) AND octet_length(payload) > 0;
  `,
  // 4: when an artifact ended, where its retention starts (ATP_SPEC §3.11). Earlier versions did not
  // record it (0 here): their terminal artifacts count from their acceptance, no later than their
  // end. The index orders by GREATEST(ended_at, created_at), which is ended_at for every artifact that
  // ends from now on, so that no old row has to be rewritten (an UPDATE of every terminal row of a
  // large table would hold the migration, and every coordinator waiting for it, for minutes).
  `
  ALTER TABLE atp_artifacts ADD COLUMN ended_at bigint NOT NULL DEFAULT 0;
  CREATE INDEX atp_artifacts_ended ON atp_artifacts ((GREATEST(ended_at, created_at))) WHERE state NOT IN (1, 2);
  `,
];
