#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node:test.
// Usage: node scripts/run-tests.mjs [substring ...]   (only files whose path contains one of them)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
};
walk(root);
if (files.length === 0) {
  console.error(`no test files found under ${root}${filters.length ? ` matching ${filters.join(', ')}` : ''}; run "npm run build" first`);
  process.exit(1);
}
// The PostgreSQL tests need a real server. .ci/run starts one and sets ATP_PG_URL; otherwise start a
// throwaway cluster on loopback the same way (.ci/services.sh), if this machine has PostgreSQL.
const env = { ...process.env };
if (env.ATP_PG_URL === undefined) {
  const here = new URL('..', import.meta.url).pathname;
  const r = spawnSync('bash', ['-c', 'source .ci/services.sh && start_postgres >&2 && echo "$ATP_PG_URL"'], {
    cwd: here,
    encoding: 'utf8',
  });
  const url = r.status === 0 ? r.stdout.trim().split('\n').pop() : '';
  if (url) env.ATP_PG_URL = url;
  else if (env.ATP_CI) {
    console.error(`cannot start PostgreSQL for the tests:\n${r.stderr}`);
    process.exit(1);
  } else {
    env.ATP_SKIP_PG = '1';
    console.error('PostgreSQL is not available here: the PostgreSQL store tests are skipped (install postgresql, or set ATP_PG_URL)');
  }
}
const concurrency = process.env.ATP_TEST_CONCURRENCY ?? '2';
// A test that hangs fails after 5 minutes instead of holding the run (tests that need longer set their own timeout).
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...files], {
  stdio: 'inherit',
  env,
});
process.exit(r.status ?? 1);
