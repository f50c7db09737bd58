/**
 * WalkSAT (the SKC variant): randomized local search. From a random assignment, repeatedly pick a
 * falsified clause and flip one of its variables: one whose flip breaks no satisfied clause if
 * there is one, else a random one with probability `noise`, else the one that breaks fewest.
 * Incomplete: it finds a model fast on satisfiable random formulas but never proves UNSAT, so it
 * runs until it finds one or `poll` stops it. Work is counted in flips; `poll(steps)` is called
 * about every POLL_TICKS units of effort.
 */
import { clauseCount } from './cnf.js';
import type { Cnf } from './cnf.js';
import { POLL_TICKS } from './dpll.js';
import type { SolveOutcome } from './dpll.js';
import { mulberry32, randomInt } from '../shared/random.js';

/** Options of a WalkSAT run. */
export interface WalkSatOptions {
  seed: number;
  /** Probability of a random walk step when every flip breaks something. Default 0.5. */
  noise?: number;
}

/** Search for a model of `cnf` until one is found or `poll` returns true. */
export function walkSat(cnf: Cnf, options: WalkSatOptions, poll: (steps: number) => boolean = () => false): SolveOutcome {
  const n = cnf.vars;
  const m = clauseCount(cnf);
  const { lits, start } = cnf;
  const noise = options.noise ?? 0.5;
  // Scrambled so that a seed shared with the generator does not start from the planted assignment.
  const random = mulberry32(Math.imul(options.seed ^ 0x85ebca6b, 0x9e3779b1));
  // occ[occStart[l] .. occStart[l + 1]) = clauses containing literal l.
  const occStart = new Int32Array(2 * n + 1);
  for (let i = 0; i < lits.length; i++) occStart[lits[i]! + 1]!++;
  for (let l = 0; l < 2 * n; l++) occStart[l + 1]! += occStart[l]!;
  const occ = new Int32Array(lits.length);
  const fill = occStart.slice(0, 2 * n);
  for (let c = 0; c < m; c++) for (let i = start[c]!; i < start[c + 1]!; i++) occ[fill[lits[i]!]!++] = c;

  const value = new Uint8Array(n);
  for (let v = 0; v < n; v++) value[v] = random() < 0.5 ? 1 : 0;
  const isTrue = (l: number) => value[l >> 1] === ((l & 1) ^ 1);
  const numTrue = new Int32Array(m);
  // The falsified clauses, with each one's position in the list for O(1) removal.
  const unsat = new Int32Array(m);
  const where = new Int32Array(m).fill(-1);
  let unsatLen = 0;
  for (let c = 0; c < m; c++) {
    for (let i = start[c]!; i < start[c + 1]!; i++) if (isTrue(lits[i]!)) numTrue[c]!++;
    if (numTrue[c] === 0) {
      if (start[c + 1] === start[c]) return { status: 'unsat', steps: 0 };
      where[c] = unsatLen;
      unsat[unsatLen++] = c;
    }
  }
  let steps = 0;
  let ticks = 0;
  /** Clauses that `lit` (now false) would leave with no true literal if it became true instead. */
  const breakCount = (lit: number): number => {
    const t = lit ^ 1; // the literal of this variable that is true now
    let b = 0;
    ticks += occStart[t + 1]! - occStart[t]! + 1;
    for (let i = occStart[t]!; i < occStart[t + 1]!; i++) if (numTrue[occ[i]!] === 1) b++;
    return b;
  };
  const flip = (v: number): void => {
    const nowTrue = value[v] === 1 ? 2 * v + 1 : 2 * v;
    value[v] = value[v]! ^ 1;
    for (let i = occStart[nowTrue]!; i < occStart[nowTrue + 1]!; i++) {
      const c = occ[i]!;
      if (numTrue[c]!++ === 0) {
        const p = where[c]!;
        const last = unsat[--unsatLen]!;
        unsat[p] = last;
        where[last] = p;
        where[c] = -1;
      }
    }
    const nowFalse = nowTrue ^ 1;
    for (let i = occStart[nowFalse]!; i < occStart[nowFalse + 1]!; i++) {
      const c = occ[i]!;
      if (--numTrue[c]! === 0) {
        where[c] = unsatLen;
        unsat[unsatLen++] = c;
      }
    }
  };

  let nextPoll = POLL_TICKS;
  while (unsatLen > 0) {
    if (ticks >= nextPoll) {
      nextPoll = ticks + POLL_TICKS;
      if (poll(steps)) return { status: 'stopped', steps };
    }
    const c = unsat[randomInt(random, unsatLen)]!;
    const s = start[c]!;
    const len = start[c + 1]! - s;
    let chosen = -1;
    let best = Infinity;
    let ties = 0;
    for (let i = s; i < s + len; i++) {
      const b = breakCount(lits[i]!);
      if (b < best) {
        best = b;
        chosen = lits[i]!;
        ties = 1;
      } else if (b === best && random() * ++ties < 1) chosen = lits[i]!;
    }
    if (best > 0 && random() < noise) chosen = lits[s + randomInt(random, len)]!;
    flip(chosen >> 1);
    steps++;
  }
  return { status: 'sat', assignment: value, steps };
}
