/**
 * DPLL: a complete SAT solver, chronological backtracking with unit propagation on two watched
 * literals (no clause learning). Two branching heuristics:
 *
 * - `first`: the lowest-numbered unassigned variable, true first (the textbook baseline);
 * - `moms`: Maximum Occurrences in clauses of Minimum Size — the variable that appears most in the
 *   shortest not-yet-satisfied clauses, with the more frequent sign first.
 *
 * Work is counted in assignments (decisions plus implied ones). `poll(steps)` is called about
 * every POLL_TICKS units of effort (clauses visited by propagation, literals scanned by the
 * heuristic: a MOMS decision costs far more than a first-variable one) and stops the search when it
 * returns true.
 */
import { clauseCount } from './cnf.js';
import type { Cnf } from './cnf.js';

/** How often (in units of effort, about 0.1 ms) a solver calls its poll function. */
export const POLL_TICKS = 1 << 15;

/** What a solver ends with. */
export type SolveOutcome =
  { status: 'sat'; assignment: Uint8Array; steps: number } | { status: 'unsat'; steps: number } | { status: 'stopped'; steps: number };

/** A DPLL branching heuristic. */
export type Branching = 'first' | 'moms';

/** Solve `cnf` completely (SAT with a model, or UNSAT), unless `poll` stops it. */
export function dpll(cnf: Cnf, branching: Branching, poll: (steps: number) => boolean = () => false): SolveOutcome {
  const n = cnf.vars;
  const m = clauseCount(cnf);
  const lits = Int32Array.from(cnf.lits); // watched literals are swapped to the front of each clause
  const start = cnf.start;
  // value[v]: 0 unassigned, 1 true, -1 false.
  const value = new Int8Array(n);
  const litValue = (l: number): number => {
    const v = value[l >> 1]!;
    return (l & 1) === 0 ? v : -v;
  };
  const watches: number[][] = Array.from({ length: 2 * n }, () => []);
  const trail = new Int32Array(n);
  let trailLen = 0;
  let qhead = 0;
  let steps = 0;
  let ticks = 0;
  let nextPoll = POLL_TICKS;
  const units: number[] = [];
  for (let c = 0; c < m; c++) {
    const len = start[c + 1]! - start[c]!;
    if (len === 0) return { status: 'unsat', steps };
    if (len === 1) units.push(lits[start[c]!]!);
    else {
      watches[lits[start[c]!]!]!.push(c);
      watches[lits[start[c]! + 1]!]!.push(c);
    }
  }
  const assign = (l: number): void => {
    value[l >> 1] = (l & 1) === 0 ? 1 : -1;
    trail[trailLen++] = l;
    steps++;
  };
  /** Unit propagation over the trail; false on a conflict. */
  const propagate = (): boolean => {
    while (qhead < trailLen) {
      const falseLit = trail[qhead++]! ^ 1;
      const ws = watches[falseLit]!;
      let j = 0;
      let i = 0;
      let ok = true;
      ticks += ws.length;
      for (; i < ws.length; i++) {
        const c = ws[i]!;
        const s = start[c]!;
        if (lits[s] === falseLit) {
          lits[s] = lits[s + 1]!;
          lits[s + 1] = falseLit;
        }
        const other = lits[s]!;
        if (litValue(other) === 1) {
          ws[j++] = c;
          continue;
        }
        let moved = false;
        for (let k = s + 2; k < start[c + 1]!; k++) {
          if (litValue(lits[k]!) !== -1) {
            lits[s + 1] = lits[k]!;
            lits[k] = falseLit;
            watches[lits[s + 1]!]!.push(c);
            moved = true;
            break;
          }
        }
        if (moved) continue;
        ws[j++] = c;
        if (litValue(other) === -1) {
          ok = false;
          i++;
          break;
        }
        assign(other);
      }
      for (; i < ws.length; i++) ws[j++] = ws[i]!;
      ws.length = j;
      if (!ok) return false;
    }
    return true;
  };
  const undoTo = (len: number): void => {
    while (trailLen > len) value[trail[--trailLen]! >> 1] = 0;
    qhead = trailLen;
  };

  const counts = new Int32Array(2 * n);
  const pick = (): number => {
    if (branching === 'first') {
      for (let v = 0; v < n; v++) if (value[v] === 0) return 2 * v;
      return -1;
    }
    // MOMS: literal counts in the unsatisfied clauses of minimum unassigned size.
    ticks += cnf.lits.length;
    counts.fill(0);
    let minSize = Infinity;
    for (let c = 0; c < m; c++) {
      let size = 0;
      let satisfied = false;
      for (let k = start[c]!; k < start[c + 1]!; k++) {
        const lv = litValue(lits[k]!);
        if (lv === 1) {
          satisfied = true;
          break;
        }
        if (lv === 0) size++;
      }
      if (satisfied || size === 0) continue;
      if (size < minSize) {
        minSize = size;
        counts.fill(0);
      }
      if (size === minSize) for (let k = start[c]!; k < start[c + 1]!; k++) if (litValue(lits[k]!) === 0) counts[lits[k]!]!++;
    }
    let best = -1;
    let bestScore = -1;
    for (let v = 0; v < n; v++) {
      if (value[v] !== 0) continue;
      const p = counts[2 * v]!;
      const q = counts[2 * v + 1]!;
      const score = (p + q) * 1024 + p * q;
      if (score > bestScore) {
        bestScore = score;
        best = p >= q ? 2 * v : 2 * v + 1;
      }
    }
    return best;
  };

  // Decision stack: the trail length before each decision, its literal, and whether it is the second branch.
  const stackTrail: number[] = [];
  const stackLit: number[] = [];
  const stackFlipped: boolean[] = [];
  for (const u of units) {
    const lv = litValue(u);
    if (lv === -1) return { status: 'unsat', steps };
    if (lv === 0) assign(u);
  }
  let ok = propagate();
  for (;;) {
    if (++ticks >= nextPoll) {
      nextPoll = ticks + POLL_TICKS;
      if (poll(steps)) return { status: 'stopped', steps };
    }
    if (!ok) {
      // Chronological backtracking: flip the most recent decision whose other branch is untried.
      for (;;) {
        const lit = stackLit.pop();
        if (lit === undefined) return { status: 'unsat', steps };
        const len = stackTrail.pop()!;
        const flipped = stackFlipped.pop()!;
        undoTo(len);
        if (!flipped) {
          stackTrail.push(len);
          stackLit.push(lit ^ 1);
          stackFlipped.push(true);
          assign(lit ^ 1);
          break;
        }
      }
      ok = propagate();
      continue;
    }
    const lit = pick();
    if (lit < 0) {
      const assignment = new Uint8Array(n);
      for (let v = 0; v < n; v++) assignment[v] = value[v] === 1 ? 1 : 0;
      return { status: 'sat', assignment, steps };
    }
    stackTrail.push(trailLen);
    stackLit.push(lit);
    stackFlipped.push(false);
    assign(lit);
    ok = propagate();
  }
}
