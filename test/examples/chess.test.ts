/**
 * The chess example: the move generator against published perft counts, the split search against
 * plain alpha-beta, the handlers' cancellation, and perft and search over real worker processes
 * (one of them SIGKILLed mid-run).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { HandlerContext, LeasedArtifact } from '../../src/worker/worker.js';
import { handlers } from '../../examples/chess/handlers.js';
import type { PerftAnswer, SearchAnswer } from '../../examples/chess/handlers.js';
import { Position, START_FEN, moveToUci } from '../../examples/chess/movegen.js';
import { PERFT_TABLE, perftDistributed } from '../../examples/chess/perft-distributed.js';
import { DEFAULT_SEARCH_FEN } from '../../examples/chess/run-search.js';
import { MATE } from '../../examples/chess/alpha-beta.js';
import { SQUARE_VALUE, evaluate, evaluateByScan } from '../../examples/chess/evaluate.js';
import { searchDistributed } from '../../examples/chess/search-distributed.js';
import { searchLocal, searchPlain } from '../../examples/chess/search.js';
import type { SubtreeTask } from '../../examples/chess/subtree.js';
import { WorkerPool } from '../../examples/chess/worker-pool.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Deepest depth tested per position: a few seconds in all. */
const PERFT_DEPTHS: Record<string, number> = { start: 4, kiwipete: 3, position3: 5, position4: 4, position5: 3 };
const BACK_RANK_MATE = '6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1';

function fakeContext(signal: AbortSignal, partials: string[]): HandlerContext {
  return {
    signal,
    leaseId: '00',
    epoch: 1,
    checkpointData: undefined,
    lastPartialSeq: 0,
    partial: (data) => void partials.push(typeof data === 'string' ? data : dec.decode(data)),
    checkpoint: () => Promise.resolve(),
  };
}

function artifactOf(kind: string, payload: unknown): LeasedArtifact {
  return { id: '00', kind, payload: enc.encode(JSON.stringify(payload)), parentId: null, digest: '', attempt: 1 };
}

void describe('chess move generator', () => {
  for (const p of PERFT_TABLE) {
    const depth = PERFT_DEPTHS[p.name]!;
    void it(`counts the published perft of ${p.name} at depths 1 to ${depth}`, () => {
      const pos = new Position(p.fen);
      for (let d = 1; d <= depth; d++) assert.equal(pos.perft(d), p.nodes[d - 1], `${p.name} depth ${d}`);
      // make/unmake restored everything perft touched.
      assert.equal(pos.toFen(), new Position(p.fen).toFen());
    });
  }

  void it('writes back the FEN it read, en passant square and counters included', () => {
    for (const fen of [START_FEN, 'rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3', ...PERFT_TABLE.map((p) => p.fen)])
      assert.equal(new Position(fen).toFen(), fen);
  });

  void it('plays en passant, castling and promotion and takes them back', () => {
    const pos = new Position('r3k2r/1P6/8/3pP3/8/8/8/R3K2R w KQkq d6 0 1');
    const names = pos.legalMoves().map(moveToUci);
    for (const m of ['e5d6', 'e1g1', 'e1c1', 'b7b8q', 'b7a8n']) assert.ok(names.includes(m), `${m} is legal`);
    const before = pos.toFen();
    for (const m of ['e5d6', 'e1g1', 'b7a8q']) {
      pos.make(pos.parseUci(m)!);
      pos.unmake();
      assert.equal(pos.toFen(), before, `after ${m} and back`);
    }
    pos.make(pos.parseUci('e1c1')!);
    assert.equal(pos.toFen(), 'r3k2r/1P6/8/3pP3/8/8/8/2KR3R b kq - 1 1');
  });

  void it('keeps the incremental evaluation equal to a scan of the board through make and unmake', () => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const { fen } of PERFT_TABLE) {
      const pos = new Position(fen);
      pos.trackSquareValues(SQUARE_VALUE);
      for (let game = 0; game < 30; game++) {
        let plies = 0;
        for (; plies < 40; plies++) {
          const moves = pos.legalMoves();
          if (moves.length === 0) break;
          pos.make(moves[Math.floor(random() * moves.length)]!);
          assert.equal(evaluate(pos), evaluateByScan(pos), pos.toFen());
        }
        while (plies-- > 0) pos.unmake();
        assert.equal(evaluate(pos), evaluateByScan(pos));
        assert.equal(pos.toFen(), new Position(fen).toFen());
      }
    }
  });

  void it('refuses a malformed FEN with a RangeError', () => {
    for (const fen of ['', '8/8/8 w - -', 'rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq -', '8/8/8/8/8/8/8/8 w - - 0 1'])
      assert.throws(() => new Position(fen), RangeError);
  });
});

void describe('chess search', () => {
  void it('the split search in one process finds the move and score of plain alpha-beta', () => {
    for (const [fen, depth] of [
      [DEFAULT_SEARCH_FEN, 4],
      [PERFT_TABLE[1]!.fen, 3],
      [BACK_RANK_MATE, 3],
    ] as const) {
      const plain = searchPlain(fen, depth);
      const split = searchLocal(fen, depth);
      assert.equal(split.best, plain.best, fen);
      assert.equal(split.score, plain.score, fen);
      assert.ok(split.subtrees > 0);
    }
  });

  void it('scores a mate in one as MATE - 1 and plays it', () => {
    const r = searchLocal(BACK_RANK_MATE, 3);
    assert.equal(r.best, 'a1a8');
    assert.equal(r.score, MATE - 1);
  });

  void it('the search handler streams a partial per completed depth and stops when its signal is aborted', async () => {
    const abort = new AbortController();
    const partials: string[] = [];
    const task: SubtreeTask = { fen: DEFAULT_SEARCH_FEN, depth: 12, alpha: -32000, beta: 32000, ply: 0, run: 'test' };
    const done = handlers['chess.search'](artifactOf('chess.search', task), fakeContext(abort.signal, partials));
    const reason = new Error('cancelled by the test');
    const poll = setInterval(() => {
      if (partials.length >= 3) abort.abort(reason);
    }, 1);
    await assert.rejects(done, (err) => err === reason);
    clearInterval(poll);
    const depths = partials.map((p) => (JSON.parse(p) as SearchAnswer).depth);
    assert.deepEqual(depths.slice(0, 3), [1, 2, 3]);
    assert.ok(depths.every((d, i) => i === 0 || d >= depths[i - 1]!));
  });

  void it('the perft handler counts a subtree', async () => {
    const abort = new AbortController();
    const result = await handlers['chess.perft'](artifactOf('chess.perft', { fen: START_FEN, depth: 3 }), fakeContext(abort.signal, []));
    assert.equal((JSON.parse(result) as PerftAnswer).nodes, 8_902);
  });
});

void describe('chess over ATP, with real worker processes', () => {
  let coordinator: Coordinator;
  let pool: WorkerPool;
  let client: Client;

  void before(async () => {
    coordinator = new Coordinator({ resumeWindowMs: 300 });
    const listener = await coordinator.listen('tcp://127.0.0.1:0');
    pool = new WorkerPool({ url: listener.url, log: (line) => process.stderr.write(`${line}\n`) });
    await pool.start(2);
    client = await Client.connect(listener.url);
  });

  void after(async () => {
    await client.close();
    await pool.stop();
    await coordinator.close();
  });

  void it('counts perft 4 of the start position split at depth 1, exactly, although a worker is SIGKILLed mid-run', async () => {
    let killed: number | undefined;
    const report = await perftDistributed(client, START_FEN, 4, {
      splitDepth: 1,
      // At the first count the other subtrees are pending or leased: each live worker holds a lease.
      onProgress: (done) => {
        if (done === 1) killed = pool.killOne();
      },
    });
    assert.notEqual(killed, undefined);
    assert.equal(report.subtrees, 20);
    assert.equal(report.total, 197_281);
    assert.equal(report.expected, 197_281);
    assert.equal(report.rows.find((r) => r.move === 'e2e4')?.nodes, 13_160);
    // The killed worker's lease was re-issued (a higher epoch) after the resume window.
    const epochs = await Promise.all(report.ids.map(async (id) => (await client.query(id)).epoch));
    assert.ok(
      epochs.some((e) => e > 1),
      `some subtree was leased again (epochs ${epochs.join(',')})`,
    );
    await pool.spawnOne();
  });

  void it('answers a rerun of the same perft from the store', async () => {
    const report = await perftDistributed(client, START_FEN, 4, { splitDepth: 1 });
    assert.equal(report.total, 197_281);
    assert.equal(report.fromStore, report.subtrees);
  });

  void it('counts perft 3 of position 4 split at depth 2', async () => {
    const report = await perftDistributed(client, PERFT_TABLE[3]!.fen, 3, { splitDepth: 2 });
    assert.equal(report.subtrees, 264);
    assert.equal(report.total, 9_467);
  });

  void it('the distributed search finds the move and score of the single-process search', async () => {
    for (const [fen, depth] of [
      [DEFAULT_SEARCH_FEN, 5],
      [PERFT_TABLE[1]!.fen, 4],
      [BACK_RANK_MATE, 3],
    ] as const) {
      const local = searchLocal(fen, depth);
      const distributed = await searchDistributed(client, fen, depth);
      assert.equal(distributed.best, local.best, fen);
      assert.equal(distributed.score, local.score, fen);
      assert.ok(distributed.subtrees > 0);
    }
  });

  void it('submitting every reply at once, it cancels the siblings of each refutation and still agrees', async () => {
    const local = searchLocal(DEFAULT_SEARCH_FEN, 5);
    const distributed = await searchDistributed(client, DEFAULT_SEARCH_FEN, 5, { eldest: 0 });
    assert.equal(distributed.best, local.best);
    assert.equal(distributed.score, local.score);
    assert.ok(distributed.refuted > 0, 'root moves were refuted');
    assert.ok(distributed.cancelled > 0, 'siblings of refutations were cancelled');
    assert.ok(distributed.subtrees > distributed.cancelled);
  });
});
