/**
 * The agents example: the solvers are right (models verify, UNSAT is proven, a poll stops them),
 * and a race over real worker processes takes a verified answer and cancels every loser, whose
 * handler observes the abort while it runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cnfOf, decodeAssignment, encodeAssignment, firstFalsified, plantedThreeSat } from '../../examples/agents/cnf.js';
import { dpll } from '../../examples/agents/dpll.js';
import { stepsAt } from '../../examples/agents/protocol.js';
import type { AgentAnswer } from '../../examples/agents/protocol.js';
import { formatTable, runAgents } from '../../examples/agents/run.js';
import { STRATEGIES, runStrategy } from '../../examples/agents/strategies.js';
import { walkSat } from '../../examples/agents/walksat.js';

const dec = new TextDecoder();

void describe('agents: SAT solvers', () => {
  void it('generates the same formula from the same seed, satisfied by its planted assignment and, balanced, by its complement', () => {
    const spec = { vars: 60, ratio: 4.26, seed: 11, balanced: true };
    const a = plantedThreeSat(spec);
    const b = plantedThreeSat(spec);
    assert.deepEqual(a.cnf.lits, b.cnf.lits);
    assert.equal(a.cnf.start.length - 1, Math.round(4.26 * 60));
    assert.equal(firstFalsified(a.cnf, a.planted), -1);
    assert.equal(
      firstFalsified(
        a.cnf,
        a.planted.map((x) => x ^ 1),
      ),
      -1,
    );
    assert.notDeepEqual(plantedThreeSat({ ...spec, seed: 12 }).cnf.lits, a.cnf.lits);
  });

  void it('every strategy finds a model that satisfies every clause', () => {
    for (const seed of [1, 2, 3]) {
      const { cnf } = plantedThreeSat({ vars: 80, ratio: 4.26, seed, balanced: true });
      for (const s of STRATEGIES) {
        const o = runStrategy(s, cnf, seed, () => false);
        assert.equal(o.status, 'sat', `${s} on seed ${seed}`);
        if (o.status === 'sat') assert.equal(firstFalsified(cnf, o.assignment), -1, `${s} on seed ${seed}`);
      }
    }
  });

  void it('DPLL proves an unsatisfiable formula UNSAT with either heuristic', () => {
    // Every sign combination over three variables: no assignment satisfies all eight clauses.
    const clauses = Array.from({ length: 8 }, (_, k) => [0, 1, 2].map((v) => 2 * v + ((k >> v) & 1)));
    const cnf = cnfOf(3, clauses);
    assert.equal(dpll(cnf, 'first').status, 'unsat');
    assert.equal(dpll(cnf, 'moms').status, 'unsat');
    // Unit clauses x0 and ¬x1, then two clauses they satisfy.
    assert.equal(dpll(cnfOf(2, [[0], [3], [1, 3], [0, 2]]), 'moms').status, 'sat');
  });

  void it('a solver stops at the poll that returns true, and a verifier rejects a wrong model', () => {
    const { cnf, planted } = plantedThreeSat({ vars: 250, ratio: 4.26, seed: 1, balanced: true });
    let polls = 0;
    const o = dpll(cnf, 'first', () => ++polls === 3);
    assert.equal(o.status, 'stopped');
    assert.equal(polls, 3);
    assert.ok(o.steps > 0);
    assert.equal(walkSat(cnf, { seed: 5 }, () => true).status, 'stopped');
    const wrong = planted.slice();
    // Falsify the first clause: set each of its variables against its literal.
    for (let i = 0; i < 3; i++) wrong[cnf.lits[i]! >> 1] = cnf.lits[i]! & 1;
    assert.equal(firstFalsified(cnf, wrong), 0);
    assert.deepEqual(decodeAssignment(encodeAssignment(planted)), planted);
  });

  void it('reads the steps done at a time off a work curve', () => {
    const curve: Array<[number, number]> = [
      [10, 0],
      [20, 100],
      [30, 300],
    ];
    assert.equal(stepsAt(curve, 5), 0);
    assert.equal(stepsAt(curve, 15), 50);
    assert.equal(stepsAt(curve, 25), 200);
    assert.equal(stepsAt(curve, 99), 300);
  });
});

void describe('agents: a race over worker processes', () => {
  void it(
    'takes a verified answer, cancels every loser while it runs, and each loser observes the abort',
    { timeout: 120_000 },
    async () => {
      // Problems on which WalkSAT answers in well under a second and both DPLL variants take seconds,
      // so that the losers are still running when the cancel reaches them.
      const problems = [1, 3].map((seed) => ({ vars: 250, ratio: 4.26, seed, balanced: true }));
      const results = await runAgents({ problems, log: () => undefined });
      assert.equal(results.length, 2);
      for (const r of results) {
        const { cnf } = plantedThreeSat(r.problem);
        assert.equal(r.winner.outcome.state, 'COMPLETED');
        const answer = JSON.parse(dec.decode(r.winner.outcome.result)) as AgentAnswer;
        assert.equal(answer.status, 'sat');
        assert.equal(firstFalsified(cnf, decodeAssignment(answer.assignment ?? '')), -1, 'the winning model satisfies every clause');
        assert.equal(r.verified, true);
        assert.equal(r.rootState, 'CANCELLED');
        assert.equal(r.losers.length, STRATEGIES.length - 1);
        assert.equal(r.cancel.alreadyFinished, 1, 'only the winner had finished when the cancel arrived');
        for (const l of r.losers) {
          assert.equal(l.outcome.state, 'CANCELLED', `${l.strategy} ended CANCELLED`);
          assert.ok(l.report !== undefined, `${l.strategy} reported from its handler`);
          assert.equal(l.report.code, 'ATP_ERR_CANCELLED');
          assert.equal(l.report.finishedAnyway, false, `${l.strategy} was stopped by the signal, not by finishing`);
          assert.ok(l.report.signalSeenAt >= l.report.startedAt);
          assert.ok(l.report.steps > 0);
          assert.ok(l.cancelToAckMs !== undefined, 'the coordinator received its REVOKE_ACK');
        }
      }
      assert.ok(formatTable(results).length >= 2 + 2 * (STRATEGIES.length - 1));
    },
  );
});
