import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOG, ErrorClass, classOfWire } from '../../src/errors.js';
import { MESSAGES } from '../../src/wire/schema.js';
import type { MessageSpec } from '../../src/wire/schema.js';

const path = fileURLToPath(new URL('../../../docs/ATP_REGISTRY.md', import.meta.url));

interface Table {
  /** The `## ` heading the table is under, e.g. "2. Message types". */
  section: string;
  header: string[];
  rows: string[][];
}

/** Strip markdown emphasis and code marks from a cell. */
const clean = (cell: string): string => cell.replace(/[`*]/g, '').trim();
const cells = (line: string): string[] =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => clean(c.replace(/\\\|/g, '|')));

/** Every pipe table of a markdown document, with the level-2 section it is in. */
function tables(md: string): Table[] {
  const out: Table[] = [];
  let section = '';
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const h2 = /^## (.*)$/.exec(line);
    if (h2) section = h2[1]!.trim();
    if (!line.trim().startsWith('|') || !/^\s*\|?\s*:?-{3,}/.test(lines[i + 1] ?? '')) continue;
    const t: Table = { section, header: cells(line), rows: [] };
    for (i += 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) t.rows.push(cells(lines[i]!));
    out.push(t);
  }
  return out;
}

/** The one table with this header, in a section whose title contains `sectionTitle`. */
function tableOf(md: string, header: string[], sectionTitle: string): Table {
  const found = tables(md).filter((t) => t.header.join('|') === header.join('|'));
  assert.equal(found.length, 1, `docs/ATP_REGISTRY.md needs exactly one table | ${header.join(' | ')} |`);
  const t = found[0]!;
  assert.ok(t.section.includes(sectionTitle), `the table | ${header.join(' | ')} | is under "## ${t.section}", not "${sectionTitle}"`);
  return t;
}

const code = (cell: string): number => {
  assert.match(cell, /^0x[0-9a-fA-F]{4}$/, `"${cell}" is not a code like 0x0010`);
  return parseInt(cell.slice(2), 16);
};
const norm = (s: string): string => s.replace(/\s+/g, ' ').trim();
const CLASS_NAMES: Record<number, string> = {
  [ErrorClass.CONNECTION]: 'connection',
  [ErrorClass.RETRYABLE]: 'retryable',
  [ErrorClass.PERMANENT]: 'permanent',
  [ErrorClass.AUTH]: 'auth',
};

const md = readFileSync(path, 'utf8');

void test('docs/ATP_REGISTRY.md §2 lists exactly the message types of MESSAGES, with the same code, sender, role and summary', () => {
  const t = tableOf(md, ['Code', 'Name', 'Sender', 'Role', 'Summary'], 'Message types');
  const documented = new Map<string, string[]>();
  for (const row of t.rows) {
    const [c = '', name = '', sender = '', role = '', summary = ''] = row;
    assert.ok(!documented.has(name), `${name} is listed twice`);
    documented.set(name, [c, sender, role, summary]);
  }
  for (const [name, s] of Object.entries(MESSAGES) as [string, MessageSpec][]) {
    const row = documented.get(name);
    assert.ok(row, `${name} (0x${s.code.toString(16).padStart(4, '0')}) is in MESSAGES but not in the registry`);
    const [c = '', sender = '', role = '', summary = ''] = row;
    assert.equal(code(c), s.code, `${name}: code`);
    assert.equal(sender.toLowerCase(), s.sender, `${name}: sender`);
    const docRole = ['-', '—', '–', ''].includes(role) ? null : role.toLowerCase();
    assert.equal(docRole, s.role, `${name}: role`);
    assert.equal(norm(summary), norm(s.doc), `${name}: summary`);
  }
  for (const name of documented.keys()) assert.ok(name in MESSAGES, `${name} is in the registry but not in MESSAGES`);
});

void test('docs/ATP_REGISTRY.md §4 lists exactly the codes of ERROR_CATALOG, with the same number, class and summary', () => {
  const t = tableOf(md, ['Code', 'Name', 'Class', 'Summary'], 'Error codes');
  const documented = new Map<string, string[]>();
  for (const row of t.rows) {
    const [c = '', name = '', cls = '', summary = ''] = row;
    assert.ok(!documented.has(name), `${name} is listed twice`);
    documented.set(name, [c, cls, summary]);
  }
  for (const [name, entry] of Object.entries(ERROR_CATALOG)) {
    const row = documented.get(name);
    assert.ok(row, `${name} is in ERROR_CATALOG but not in the registry`);
    const [c = '', cls = '', summary = ''] = row;
    assert.equal(code(c), entry.wire, `${name}: wire code`);
    assert.equal(cls.toLowerCase(), CLASS_NAMES[classOfWire(entry.wire)], `${name}: class`);
    assert.equal(norm(summary), norm(entry.summary), `${name}: summary`);
  }
  for (const name of documented.keys()) assert.ok(name in ERROR_CATALOG, `${name} is in the registry but not in ERROR_CATALOG`);
});

void test('docs/ATP_REGISTRY.md §3 lists exactly the extension fields of MESSAGES, with the same id, encoding and maximum', () => {
  const t = tableOf(md, ['Message', 'Id', 'Name', 'Encoding', 'Max', 'Meaning'], 'Extension field ids');
  const key = (type: string, name: string): string => `${type}.${name}`;
  const documented = new Map(t.rows.map((r) => [key(r[0] ?? '', r[2] ?? ''), r]));
  assert.equal(documented.size, t.rows.length, 'an extension field is listed twice');
  let n = 0;
  for (const [type, s] of Object.entries(MESSAGES) as [string, MessageSpec][]) {
    for (const x of s.ext) {
      n++;
      const row = documented.get(key(type, x.name));
      assert.ok(row, `${type}.${x.name} is in MESSAGES but not in the registry`);
      const [, id = '', , encoding = '', max = ''] = row;
      assert.equal(code(id), x.id, `${type}.${x.name}: id`);
      assert.equal(encoding, x.kind, `${type}.${x.name}: encoding`);
      const docMax = /^(\d+)/.exec(max.replace(/[ ,]/g, ''));
      assert.equal(docMax ? Number(docMax[1]) : undefined, x.max, `${type}.${x.name}: max`);
    }
  }
  assert.equal(documented.size, n, 'the registry lists extension fields that MESSAGES does not have');
});
