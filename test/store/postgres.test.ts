import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { runStoreConformance } from './conformance.js';

// A real PostgreSQL server (.ci/run starts one and sets ATP_PG_URL); every store gets its own schema.
const url = process.env.ATP_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/postgres';
let n = 0;
const run = `${process.pid}_${Date.now() % 1e6}`;

runStoreConformance('postgres', () => new PostgresStore({ url, schema: `atp_test_${run}_${n++}`, poolSize: 2 }));
