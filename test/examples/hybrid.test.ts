/**
 * The hybrid example: the board, the exact solver and the search on positions whose answer is
 * known; the network's JSON form and score encoding keep every bit; and a small run end to end —
 * training lowers the loss, the eval workers (model read from model.json in another process) score
 * exactly as the in-memory model does, the searches' batches were served by the eval kind, and
 * the searches choose the exact solver's moves on easy positions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canonicalKey, keyOf, parseBoard, relative, SYMMETRIES, transform, winner } from '../../examples/hybrid/board.js';
import { ExactSolver } from '../../examples/hybrid/exact-solver.js';
import { localEvaluator, scoreBoards } from '../../examples/hybrid/handlers.js';
import { Mlp } from '../../examples/hybrid/mlp.js';
import type { MlpJson } from '../../examples/hybrid/mlp.js';
import { EVAL_KIND, SEARCH_KIND, decodePositions, decodeScores, encodePositions, encodeScores } from '../../examples/hybrid/protocol.js';
import { mulberry32 } from '../../examples/shared/random.js';
import { runHybrid } from '../../examples/hybrid/run.js';
import { hybridSearch } from '../../examples/hybrid/search.js';

/** Positions with a one- or two-ply answer, and the squares that answer them. */
const EASY: Array<{ board: string; why: string; moves: number[] }> = [
  { board: 'XXX./OO../O.../....', why: 'X completes the top row', moves: [3] },
  { board: 'XXX./OO../..../....', why: 'O must block the top row', moves: [3] },
  { board: 'XOO./X..O/X.../....', why: 'X completes the first column', moves: [12] },
  { board: 'XOO./.X../..X./....', why: 'O must block the diagonal', moves: [15] },
];

const solver = new ExactSolver();

void describe('hybrid: board, exact solver, search', () => {
  void it('reads boards, finds lines, and maps the 8 symmetries to one canonical key', () => {
    const b = parseBoard('XXXX/OOO./..../....');
    assert.equal(winner(b), 1);
    assert.throws(() => parseBoard('XXXX/..../..../....'), RangeError);
    const keys = new Set(SYMMETRIES.map((m) => keyOf(transform(b, m))));
    assert.equal(keys.size, 8);
    for (const m of SYMMETRIES) assert.equal(canonicalKey(transform(b, m)), canonicalKey(b));
  });

  void it('the exact solver answers the easy positions with their known moves', () => {
    for (const e of EASY) assert.deepEqual(solver.bestMoves(parseBoard(e.board)), e.moves, e.why);
    assert.equal(solver.value(parseBoard('XXX./OO../O.../....')), 1);
    assert.equal(solver.value(parseBoard('XXXX/OOO./..../....')), -1, 'O to move has lost');
  });

  void it('the search finds the known moves with any evaluation (the tactics are inside its horizon)', async () => {
    const untrained = Mlp.create([32, 8, 1], mulberry32(9));
    for (const e of EASY) {
      const r = await hybridSearch(parseBoard(e.board), localEvaluator(untrained), { depth: 2, batchSize: 16 });
      assert.ok(e.moves.includes(r.move), `${e.why}: got square ${r.move}`);
      assert.ok(r.batches >= 1 && r.leaves >= 1);
    }
  });

  void it('the network keeps every bit through its JSON form, and scores through their encoding', () => {
    const model = Mlp.create([32, 16, 1], mulberry32(4));
    const again = Mlp.fromJson(JSON.parse(JSON.stringify(model.toJson())) as MlpJson);
    const rels = EASY.map((e) => relative(parseBoard(e.board)));
    const a = scoreBoards(model, rels);
    const b = scoreBoards(again, rels);
    assert.deepEqual(new Uint8Array(a.buffer), new Uint8Array(b.buffer));
    assert.deepEqual(decodeScores(encodeScores(a)), a);
    assert.deepEqual(decodePositions(encodePositions(rels)), rels);
    assert.throws(() => decodePositions(new Uint8Array(15)), RangeError);
  });
});

void describe('hybrid: a small run end to end', () => {
  void it(
    'trains, serves the saved model bit for bit, and searches with batches served by the eval kind',
    { timeout: 120_000 },
    async () => {
      const outDir = mkdtempSync(join(tmpdir(), 'atp-hybrid-'));
      try {
        const r = await runHybrid({
          seed: 7,
          positions: 600,
          minPieces: 7,
          heldOutFraction: 0.2,
          hidden: [32],
          epochs: 4,
          learningRate: 0.003,
          trainBatch: 64,
          outDir,
          searches: 3,
          extraBoards: EASY.map((e) => e.board),
          depth: 2,
          evalBatch: 32,
          evalWorkers: 1,
          searchWorkers: 1,
          log: () => undefined,
        });
        // Training reduces the loss.
        const first = r.curve[0]!;
        const last = r.curve[r.curve.length - 1]!;
        assert.equal(r.curve.length, 5);
        assert.ok(last.trainLoss < first.trainLoss, `train MSE ${first.trainLoss} -> ${last.trainLoss}`);
        assert.ok(last.heldOutLoss < first.heldOutLoss, `held-out MSE ${first.heldOutLoss} -> ${last.heldOutLoss}`);

        // The eval worker (model read from model.json in its own process) scores bit for bit as the in-memory model.
        assert.ok(r.bitCheck.positions > 0);
        assert.equal(r.bitCheck.served.length, 4 * r.bitCheck.positions);
        assert.deepEqual(r.bitCheck.served, r.bitCheck.local);
        assert.equal(r.bitCheck.equal, true);

        // Both kinds ran in the one job; every batch the searches asked for is a hybrid.eval artifact an eval worker served.
        assert.deepEqual(new Set(r.processes.map((p) => p.kind)), new Set([SEARCH_KIND, EVAL_KIND]));
        assert.ok(r.evals.ids > 0);
        assert.deepEqual(r.evals.kinds, { [EVAL_KIND]: r.evals.ids });
        assert.deepEqual(r.evals.states, { COMPLETED: r.evals.ids });
        assert.equal(r.evals.servedByEvalWorkers, r.evals.ids);

        // Legal moves; the exact solver's on the easy positions; the same as the search in this process.
        assert.equal(r.searches.length, 3 + EASY.length);
        for (const s of r.searches) {
          assert.equal(s.legal, true);
          assert.equal(s.answer.move, s.localMove);
          assert.ok(s.answer.evalIds.length >= 1);
        }
        const given = r.searches.filter((s) => s.source === 'given');
        given.forEach((s, i) => {
          assert.ok(s.optimal, `${EASY[i]!.why}: search chose square ${s.answer.move}`);
          assert.ok(EASY[i]!.moves.includes(s.answer.move));
        });
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }
    },
  );
});
