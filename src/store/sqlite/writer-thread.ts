/**
 * The SQLite store's writer: a worker thread that owns the database connection while the
 * coordinator runs and writes each group-commit batch in one transaction. The thread that speaks
 * the protocol never waits for SQL or for the fsync of a commit; it builds the rows of a batch,
 * posts them here, and confirms the batch's transitions when this thread reports the commit.
 * Batches are written in the order posted.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { INSERT_SQL, UPDATE_SQL } from './rows.js';
import type { WriterConfig, WriterReply, WriterRequest } from './writer-protocol.js';

const port = parentPort;
if (port === null) throw new Error('writer-thread.js runs as a worker thread of the SQLite store');
const config = workerData as WriterConfig;

function reply(r: WriterReply): void {
  port!.postMessage(r);
}

let db: Database.Database;
try {
  db = new Database(config.path);
  db.pragma('busy_timeout = 2000');
  if (config.exclusive) db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  if (config.exclusive) db.exec('BEGIN EXCLUSIVE; COMMIT');
  db.pragma(`synchronous = ${config.synchronous}`);
} catch (err) {
  const busy = (err as { code?: string }).code === 'SQLITE_BUSY';
  reply({
    type: 'failed',
    id: 0,
    message: busy ? `the SQLite store ${config.path} is in use by another process (another coordinator?)` : String(err),
  });
  throw err;
}

const st = {
  insert: db.prepare(INSERT_SQL),
  insertPayload: db.prepare('INSERT INTO payloads (artifact_seq, payload) VALUES (?, ?)'),
  dropPayload: db.prepare('DELETE FROM payloads WHERE artifact_seq = ?'),
  update: db.prepare(UPDATE_SQL),
  deleteVotes: db.prepare('DELETE FROM quorum_votes WHERE artifact_seq = ?'),
  forget: db.prepare('DELETE FROM artifacts WHERE seq = ?'),
  insertVote: db.prepare('INSERT INTO quorum_votes (artifact_seq, digest, count, result) VALUES (?, ?, ?, ?)'),
  saveSession: db.prepare('INSERT OR REPLACE INTO sessions (session_id, token_hash, node_id, tenant, roles) VALUES (?, ?, ?, ?, ?)'),
  dropSession: db.prepare('DELETE FROM sessions WHERE session_id = ?'),
};

const write = db.transaction((req: Extract<WriterRequest, { type: 'write' }>) => {
  for (const row of req.inserts) st.insert.run(row);
  for (const [seq, payload] of req.payloads) st.insertPayload.run(seq, payload);
  for (const row of req.updates) st.update.run(row);
  for (const seq of req.dropPayloads) st.dropPayload.run(seq);
  for (const v of req.votes) {
    st.deleteVotes.run(v.seq);
    for (const [digest, count, result] of v.rows) st.insertVote.run(v.seq, digest, count, result);
  }
  for (const seq of req.forgets) {
    st.forget.run(seq);
    st.dropPayload.run(seq);
    st.deleteVotes.run(seq);
  }
  for (const [id, s] of req.sessions) {
    if (s === null) st.dropSession.run(id);
    else st.saveSession.run(s.sessionId, s.tokenHash, s.nodeId, s.tenant, s.roles);
  }
});

port.on('message', (req: WriterRequest) => {
  if (req.type === 'close') {
    db.close();
    reply({ type: 'closed', id: 0 });
    port.close();
    return;
  }
  try {
    write.immediate(req);
    reply({ type: 'done', id: req.id });
  } catch (err) {
    reply({ type: 'failed', id: req.id, message: err instanceof Error ? err.message : String(err) });
  }
});

reply({ type: 'ready', id: 0 });
