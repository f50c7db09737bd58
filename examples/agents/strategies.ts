/** The agents that race: each is a real SAT solver run on the same formula. */
import type { Cnf } from './cnf.js';
import { dpll } from './dpll.js';
import type { SolveOutcome } from './dpll.js';
import { walkSat } from './walksat.js';

/** Names of the strategies, in the order the race submits them. */
export const STRATEGIES = ['dpll-first', 'dpll-moms', 'walksat'] as const;
/** A strategy name. */
export type Strategy = (typeof STRATEGIES)[number];

/** What each strategy counts as a step of work. */
export const STEP_UNIT: Record<Strategy, string> = {
  'dpll-first': 'assignments',
  'dpll-moms': 'assignments',
  walksat: 'flips',
};

/** Whether `s` names a strategy. */
export function isStrategy(s: unknown): s is Strategy {
  return typeof s === 'string' && (STRATEGIES as readonly string[]).includes(s);
}

/** Run one strategy on `cnf`; `poll(steps)` is called every POLL_STEPS steps and stops it when true. */
export function runStrategy(strategy: Strategy, cnf: Cnf, seed: number, poll: (steps: number) => boolean): SolveOutcome {
  switch (strategy) {
    case 'dpll-first':
      return dpll(cnf, 'first', poll);
    case 'dpll-moms':
      return dpll(cnf, 'moms', poll);
    case 'walksat':
      return walkSat(cnf, { seed, noise: 0.5 }, poll);
  }
}
