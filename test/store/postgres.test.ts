import { test } from 'node:test';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { runStoreConformance } from './conformance.js';

// A real PostgreSQL server (.ci/run starts one and sets ATP_PG_URL); every store gets its own schema.
const url = process.env.ATP_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/postgres';
let n = 0;
const run = `${process.pid}_${Date.now() % 1e6}`;

// scripts/run-tests.mjs starts a server when it can, and sets ATP_SKIP_PG only outside CI when it cannot.
if (process.env.ATP_SKIP_PG === '1')
  void test('postgres store conformance', { skip: 'no PostgreSQL server on this machine' }, () => undefined);
else runStoreConformance('postgres', () => new PostgresStore({ url, schema: `atp_test_${run}_${n++}`, poolSize: 2 }));
