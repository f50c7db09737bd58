/** Handlers for producer and observer frames: SUBMIT, CANCEL, WATCH, UNWATCH, QUERY (ATP_SPEC §3, §7, §8). */
import { ownedBytes } from '../internal/bytes.js';
import { OrderedDigests } from '../internal/digest.js';
import { KIND_PATTERN, isZeroId, toHex } from '../internal/ids.js';
import type { NewArtifact, SubmitOutcome } from '../store/store.js';
import { ArtifactState, LatePolicy, WatchFlags, WatchScope } from '../wire/index.js';
import type { MessageOf } from '../wire/index.js';
import type { Core } from './core.js';
import type { ServerSession, Watch } from './session.js';
import { WatchHub, isFinal, sendResult, stateMessage } from './watch-hub.js';

const EMPTY_PAYLOAD = new Uint8Array(0);
const KINDS = new Map<string, string>();

/** One string per artifact kind, shared by every record of that kind (memory per pending artifact). */
function internKind(kind: string): string {
  const known = KINDS.get(kind);
  if (known !== undefined) return known;
  if (KINDS.size < 10_000) KINDS.set(kind, kind);
  return kind;
}

/** Why a SUBMIT is refused with ATP_ERR_INVALID_ARGUMENT (ATP_SPEC §3.2), or undefined. */
function invalidSubmit(msg: MessageOf<'SUBMIT'>): string | undefined {
  if (!KIND_PATTERN.test(msg.kind)) return `kind ${JSON.stringify(msg.kind)} must be 1-128 characters of A-Z a-z 0-9 . _ : / -`;
  if (isZeroId(msg.artifactId)) return 'artifactId must not be all zeros';
  if (msg.latePolicy > LatePolicy.QUORUM) return `latePolicy ${msg.latePolicy} is not 0, 1 or 2`;
  if (msg.latePolicy === LatePolicy.QUORUM && !(msg.quorumK >= 1 && msg.quorumK <= msg.quorumN && msg.quorumN <= 16)) {
    return `quorum needs 1 <= k <= n <= 16, got k=${msg.quorumK} n=${msg.quorumN}`;
  }
  if (msg.leaseTtlMs !== 0 && msg.leaseTtlMs < 50) return `leaseTtlMs ${msg.leaseTtlMs} is below the minimum of 50`;
  return undefined;
}

interface PendingSubmit {
  s: ServerSession;
  msg: MessageOf<'SUBMIT'>;
  artifact: NewArtifact;
  /** The content digest, as bytes (ACCEPTED carries it). */
  digest: Uint8Array;
}

/** Collects the SUBMITs that arrive in one turn into one store batch (group commit). */
export class SubmitBatcher {
  #queue: PendingSubmit[] = [];
  #scheduled = false;
  readonly #core: Core;
  readonly #digests = new OrderedDigests<ServerSession>();

  constructor(core: Core) {
    this.#core = core;
  }

  /** ATP_SPEC §3.2: validate one SUBMIT and queue it. */
  submit(s: ServerSession, msg: MessageOf<'SUBMIT'>): void {
    const why = invalidSubmit(msg);
    if (why !== undefined) {
      s.channel?.sendError(msg.stream, 'ATP_ERR_INVALID_ARGUMENT', why, 0x0010, msg.artifactId);
      return;
    }
    const digest = this.#digests.now(s, msg.kind, msg.payload);
    if (digest !== undefined) return this.#enqueue(s, msg, digest);
    // A large payload is hashed across event-loop turns; the session's SUBMITs keep their order.
    this.#digests.run(s, msg.kind, msg.payload, (d) => this.#enqueue(s, msg, d!));
  }

  #enqueue(s: ServerSession, msg: MessageOf<'SUBMIT'>, digest: Uint8Array): void {
    const core = this.#core;
    const o = core.options;
    const now = core.now();
    const artifact: NewArtifact = {
      tenant: s.tenant,
      id: toHex(msg.artifactId),
      digest: toHex(digest),
      kind: internKind(msg.kind),
      // A view into a shared read chunk is copied (ATP_WIRE §4), a reassembled payload kept as is; every empty payload shares one array.
      payload: msg.payload.length === 0 ? EMPTY_PAYLOAD : ownedBytes(msg.payload),
      priority: msg.priority,
      latePolicy: msg.latePolicy,
      quorumK: msg.latePolicy === LatePolicy.QUORUM ? msg.quorumK : 0,
      quorumN: msg.latePolicy === LatePolicy.QUORUM ? msg.quorumN : 0,
      leaseTtlMs: msg.leaseTtlMs || o.leaseTtlMs,
      maxDurationMs: msg.maxDurationMs,
      deadlineAt: msg.deadlineMs > 0 ? now + msg.deadlineMs : 0,
      maxAttempts: msg.maxAttempts || o.maxAttempts,
      parentId: isZeroId(msg.parentId) ? null : toHex(msg.parentId),
      tags: msg.tags,
    };
    this.#queue.push({ s, msg, artifact, digest });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    const core = this.#core;
    const submitted = core.store.submit(
      batch.map((b) => b.artifact),
      core.now(),
    );
    // The store has decided already: hungry workers are served now, in the same group commit.
    if (core.store.decidesInProcess === true) {
      const seen = new Set<string>();
      for (const b of batch) {
        const key = `${b.s.tenant}\0${b.artifact.kind}`;
        if (seen.has(key)) continue;
        seen.add(key);
        core.wake(b.s.tenant, b.artifact.kind);
      }
      // Granted before the answers below are made: the LEASEs leave ahead of the ACCEPTEDs.
      core.dispatchNow();
    }
    submitted.then(
      (outcomes) => {
        for (let i = 0; i < batch.length; i++) this.#answer(batch[i]!, outcomes[i]!);
      },
      (err: unknown) => {
        core.fault('submit', err);
        for (const b of batch)
          b.s.channel?.sendError(b.msg.stream, 'ATP_ERR_UNAVAILABLE', `the store failed: ${String(err)}`, 0x0010, b.msg.artifactId);
      },
    );
  }

  #answer(p: PendingSubmit, out: SubmitOutcome): void {
    const { s, msg, artifact } = p;
    const core = this.#core;
    const ch = s.channel;
    if (out.kind === 'conflict') {
      ch?.sendError(
        msg.stream,
        'ATP_ERR_CONFLICT',
        `artifact ${artifact.id} is bound to digest ${out.existingDigest}, not ${artifact.digest}`,
        0x0010,
        msg.artifactId,
      );
      return;
    }
    if (out.kind === 'parent-not-found') {
      ch?.sendError(msg.stream, 'ATP_ERR_NOT_FOUND', `parent ${artifact.parentId ?? ''} does not exist`, 0x0010, msg.artifactId);
      return;
    }
    const view = out.view;
    const terminal = view.state !== 'PENDING' && view.state !== 'LEASED';
    ch?.send({
      type: 'ACCEPTED',
      stream: msg.stream,
      artifactId: msg.artifactId,
      // An accepted duplicate has the same digest (a different one is a conflict).
      digest: { alg: 1, value: p.digest },
      state: ArtifactState[view.state],
      duplicate: out.duplicate ? 1 : 0,
    });
    if (msg.watch !== 0 && ch !== undefined) {
      const w: Watch = {
        session: s,
        stream: msg.stream,
        scope: WatchScope.ARTIFACT,
        key: WatchHub.artifactKey(s.tenant, view.id),
        results: (msg.watch & 1) !== 0,
        states: (msg.watch & 2) !== 0,
        partials: (msg.watch & 4) !== 0,
        oneShot: true,
      };
      if (terminal) {
        // ATP_SPEC §3.3: memoization — a resubmitted finished artifact answers at once.
        if (w.results) {
          core.store.result(s.tenant, view.id).then(
            (r) => {
              if (r !== undefined) sendResult(ch, msg.stream, view.id, r);
            },
            (err: unknown) => core.fault('result', err, s),
          );
        }
      } else core.watches.add(w);
    }
    if (!out.duplicate) {
      if (view.state === 'PENDING') core.wake(s.tenant, view.kind);
      if (artifact.deadlineAt > 0 && !terminal) core.armDeadline(s.tenant, view.id, artifact.deadlineAt);
      core.publish(view);
    }
  }
}

/** CANCEL (ATP_SPEC §8). */
export function handleCancel(core: Core, s: ServerSession, msg: MessageOf<'CANCEL'>): void {
  const id = toHex(msg.artifactId);
  core.store.cancel(s.tenant, id, msg.subtree === 1, msg.reason || 'cancelled by the producer', core.now()).then(
    (out) => {
      if (!out.found) {
        s.channel?.sendError(msg.stream, 'ATP_ERR_NOT_FOUND', `artifact ${id} does not exist`, 0x0012, msg.artifactId);
        return;
      }
      // The cancellation is decided (and durable): the producer hears it first, then the workers
      // are told to stop. A subtree's REVOKEs would otherwise hold the answer back for their whole pass.
      s.channel?.send({
        type: 'CANCEL_RESULT',
        stream: msg.stream,
        artifactId: msg.artifactId,
        cancelled: out.cancelled.length,
        alreadyFinished: out.alreadyFinished,
        stopping: out.revoke.length,
      });
      if (out.revoke.length > 256) s.channel?.flush();
      core.revoke(out.revoke);
      for (const v of out.cancelled) core.publish(v, out.results.get(v.id));
      core.emit('cancel', { artifactId: id, subtree: msg.subtree === 1, cancelled: out.cancelled.length, stopping: out.revoke.length });
    },
    (err: unknown) => {
      core.fault('cancel', err, s);
      s.channel?.sendError(msg.stream, 'ATP_ERR_UNAVAILABLE', `the store failed: ${String(err)}`, 0x0012, msg.artifactId);
    },
  );
}

/** WATCH (ATP_SPEC §7.1). */
export function handleWatch(core: Core, s: ServerSession, msg: MessageOf<'WATCH'>): void {
  const ch = s.channel;
  if (ch === undefined) return;
  if (msg.scope < WatchScope.ARTIFACT || msg.scope > WatchScope.TAG) {
    ch.sendError(msg.stream, 'ATP_ERR_INVALID_ARGUMENT', `watch scope ${msg.scope} is not 1, 2 or 3`, 0x0014);
    return;
  }
  if (s.watches.has(msg.stream)) {
    ch.sendError(msg.stream, 'ATP_ERR_INVALID_ARGUMENT', `stream ${msg.stream} already carries a watch`, 0x0014);
    return;
  }
  const id = toHex(msg.artifactId);
  const w: Watch = {
    session: s,
    stream: msg.stream,
    scope: msg.scope,
    key: msg.scope === WatchScope.TAG ? WatchHub.tagKey(s.tenant, msg.tag) : WatchHub.artifactKey(s.tenant, id),
    states: true,
    results: true,
    partials: (msg.flags & WatchFlags.PARTIALS) !== 0,
    oneShot: false,
  };
  const replay = (msg.flags & WatchFlags.REPLAY) !== 0;
  if (replay) w.finished = new Set();
  core.watches.add(w);
  ch.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0014, subject: msg.artifactId });
  if (!replay) return;
  const list =
    msg.scope === WatchScope.ARTIFACT
      ? core.store.get(s.tenant, id).then((v) => (v === undefined ? [] : [v]))
      : msg.scope === WatchScope.SUBTREE
        ? core.store.subtree(s.tenant, id)
        : core.store.byTag(s.tenant, msg.tag);
  list.then(
    async (views) => {
      for (const v of views) {
        if (s.watches.get(msg.stream) !== w) return;
        // A live event already told this watch how the artifact ended.
        if (w.finished!.has(v.id)) continue;
        ch.send(stateMessage(msg.stream, v));
        if (isFinal(v.state)) {
          w.finished!.add(v.id);
          const r = await core.store.result(s.tenant, v.id);
          if (r !== undefined) sendResult(ch, msg.stream, v.id, r);
        }
      }
    },
    (err: unknown) => core.fault('watch replay', err, s),
  );
}

/** UNWATCH (ATP_SPEC §7.5). */
export function handleUnwatch(core: Core, s: ServerSession, msg: MessageOf<'UNWATCH'>): void {
  const w = s.watches.get(msg.watchStream);
  if (w !== undefined) core.watches.remove(w);
  s.channel?.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0015, subject: new Uint8Array(16) });
}

/** QUERY (ATP_SPEC §7.6). */
export function handleQuery(core: Core, s: ServerSession, msg: MessageOf<'QUERY'>): void {
  const id = toHex(msg.artifactId);
  core.store.get(s.tenant, id).then(
    async (v) => {
      const ch = s.channel;
      if (ch === undefined) return;
      if (v === undefined) {
        ch.send({
          type: 'STATE',
          stream: msg.stream,
          artifactId: msg.artifactId,
          state: 0,
          attempts: 0,
          epoch: 0,
          code: 0x0202,
          lastPartialSeq: 0,
          parentId: new Uint8Array(16),
          kind: '',
          message: 'no such artifact',
        });
        return;
      }
      ch.send(stateMessage(msg.stream, v));
      if (msg.withResult === 1 && v.state !== 'PENDING' && v.state !== 'LEASED') {
        const r = await core.store.result(s.tenant, id);
        if (r !== undefined) sendResult(ch, msg.stream, id, r);
      }
    },
    (err: unknown) => {
      core.fault('query', err, s);
      s.channel?.sendError(msg.stream, 'ATP_ERR_UNAVAILABLE', `the store failed: ${String(err)}`, 0x0016, msg.artifactId);
    },
  );
}
