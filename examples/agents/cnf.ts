/**
 * CNF formulas: random 3-SAT with a planted solution, generated from a seed, and the check that an
 * assignment satisfies every clause.
 *
 * A literal is an integer: variable v (0-based) true is 2v, false is 2v + 1 (so `lit ^ 1` negates).
 */
import { mulberry32, randomInt } from '../shared/random.js';

/** A formula in conjunctive normal form. */
export interface Cnf {
  vars: number;
  /** Clause c has literals lits[start[c]] .. lits[start[c + 1] - 1]. */
  lits: Int32Array;
  start: Int32Array;
}

/** What a problem is made from: every process regenerates the same formula from it. */
export interface ProblemSpec {
  vars: number;
  /** Clauses per variable; 4.26 is the satisfiability threshold of random 3-SAT. */
  ratio: number;
  seed: number;
  /**
   * Also reject clauses the planted assignment satisfies with all three literals ("2-hidden"
   * planting): the complement of the planted assignment is then a model too, and literal counts no
   * longer point at either, so the instance stays hard for solvers that follow them.
   */
  balanced?: boolean;
}

/** Number of clauses of a formula. */
export function clauseCount(cnf: Cnf): number {
  return cnf.start.length - 1;
}

/** Build a formula from clauses written as literal lists. */
export function cnfOf(vars: number, clauses: readonly (readonly number[])[]): Cnf {
  const start = new Int32Array(clauses.length + 1);
  const lits: number[] = [];
  clauses.forEach((c, i) => {
    for (const l of c) {
      if (!Number.isInteger(l) || l < 0 || l >> 1 >= vars) throw new RangeError(`literal ${l} is not one of ${vars} variables`);
      lits.push(l);
    }
    start[i + 1] = lits.length;
  });
  return { vars, lits: Int32Array.from(lits), start };
}

/**
 * Random 3-SAT with a planted solution: a random assignment is drawn first, and each clause is
 * three distinct variables with random signs, redrawn while the planted assignment falsifies it.
 * The formula is therefore satisfiable; near ratio 4.26 it is still hard for complete solvers.
 */
export function plantedThreeSat(spec: ProblemSpec): { cnf: Cnf; planted: Uint8Array } {
  if (!Number.isInteger(spec.vars) || spec.vars < 3) throw new RangeError(`vars must be an integer >= 3, got ${spec.vars}`);
  if (!(spec.ratio > 0)) throw new RangeError(`ratio must be positive, got ${spec.ratio}`);
  const random = mulberry32(spec.seed);
  const n = spec.vars;
  const planted = new Uint8Array(n);
  for (let v = 0; v < n; v++) planted[v] = random() < 0.5 ? 1 : 0;
  const m = Math.round(spec.ratio * n);
  const lits = new Int32Array(3 * m);
  const start = new Int32Array(m + 1);
  for (let c = 0; c < m; c++) {
    const a = randomInt(random, n);
    let b = randomInt(random, n);
    while (b === a) b = randomInt(random, n);
    let d = randomInt(random, n);
    while (d === a || d === b) d = randomInt(random, n);
    for (;;) {
      const la = 2 * a + (random() < 0.5 ? 1 : 0);
      const lb = 2 * b + (random() < 0.5 ? 1 : 0);
      const ld = 2 * d + (random() < 0.5 ? 1 : 0);
      const trueLits = (isTrue(la, planted) ? 1 : 0) + (isTrue(lb, planted) ? 1 : 0) + (isTrue(ld, planted) ? 1 : 0);
      if (trueLits > 0 && (trueLits < 3 || !spec.balanced)) {
        lits.set([la, lb, ld], 3 * c);
        break;
      }
    }
    start[c + 1] = 3 * (c + 1);
  }
  return { cnf: { vars: n, lits, start }, planted };
}

/** Whether literal `lit` is true under a complete 0/1 assignment. */
export function isTrue(lit: number, assignment: Uint8Array): boolean {
  return assignment[lit >> 1] === ((lit & 1) ^ 1);
}

/** The index of the first clause the assignment falsifies, or -1 when it satisfies every clause. */
export function firstFalsified(cnf: Cnf, assignment: Uint8Array): number {
  if (assignment.length !== cnf.vars) return 0;
  const m = clauseCount(cnf);
  outer: for (let c = 0; c < m; c++) {
    for (let i = cnf.start[c]!; i < cnf.start[c + 1]!; i++) if (isTrue(cnf.lits[i]!, assignment)) continue outer;
    return c;
  }
  return -1;
}

/** An assignment as a string of 0 and 1, variable 0 first (how results travel). */
export function encodeAssignment(assignment: Uint8Array): string {
  let s = '';
  for (const b of assignment) s += b === 1 ? '1' : '0';
  return s;
}

/** The inverse of encodeAssignment; throws a RangeError on anything but 0 and 1. */
export function decodeAssignment(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '0' && ch !== '1') throw new RangeError(`assignment has ${JSON.stringify(ch)} at ${i}`);
    out[i] = ch === '1' ? 1 : 0;
  }
  return out;
}
