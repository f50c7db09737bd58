/**
 * Fan-out of state changes, partial results and results to watchers (ATP_SPEC §7): by artifact,
 * by subtree root, and by tag. Events travel on the stream of the WATCH (or SUBMIT) that asked.
 */
import { ZERO_ID, fromHex, hexInto } from '../internal/ids.js';
import type { ArtifactResult, ArtifactView, StateName } from '../store/store.js';
import { ArtifactState } from '../wire/index.js';
import { AtpError, wireCodeOf } from '../errors.js';
import type { Channel } from '../protocol/channel.js';
import type { Watch } from './session.js';

const EMPTY = new Uint8Array(0);
const NO_DIGEST = { alg: 0, value: EMPTY };

function keyOf(tenant: string, id: string): string {
  return tenant === '' ? id : `${tenant}/${id}`;
}

/**
 * The watches under one key: the watch itself while there is one (the SUBMIT that follows its own
 * artifact, by far the most common case, then costs no Set), a Set from the second on.
 */
type Watches = Watch | Set<Watch>;

function addWatch(m: Map<string, Watches>, key: string, w: Watch): void {
  const cur = m.get(key);
  if (cur === undefined) m.set(key, w);
  else if (cur instanceof Set) cur.add(w);
  else if (cur !== w) m.set(key, new Set([cur, w]));
}

function removeWatch(m: Map<string, Watches>, key: string, w: Watch): void {
  const cur = m.get(key);
  if (cur === w) m.delete(key);
  else if (cur instanceof Set) {
    cur.delete(w);
    if (cur.size === 0) m.delete(key);
  }
}

function pushWatches(out: Watch[], v: Watches | undefined): void {
  if (v === undefined) return;
  if (v instanceof Set) for (const w of v) out.push(w);
  else out.push(v);
}

/** The watch registry. */
export class WatchHub {
  readonly #byArtifact = new Map<string, Watches>();
  readonly #bySubtree = new Map<string, Watches>();
  readonly #byTag = new Map<string, Watches>();

  /** True when some subtree watch exists (then ancestors must be looked up on each change). */
  get hasSubtreeWatches(): boolean {
    return this.#bySubtree.size > 0;
  }

  /** True when some tag watch exists. */
  get hasTagWatches(): boolean {
    return this.#byTag.size > 0;
  }

  /** Register a watch. */
  add(w: Watch): void {
    addWatch(w.scope === 1 ? this.#byArtifact : w.scope === 2 ? this.#bySubtree : this.#byTag, w.key, w);
    w.session.watches.set(w.stream, w);
  }

  /** Remove a watch. */
  remove(w: Watch): void {
    removeWatch(w.scope === 1 ? this.#byArtifact : w.scope === 2 ? this.#bySubtree : this.#byTag, w.key, w);
    if (w.session.watches.get(w.stream) === w) w.session.watches.delete(w.stream);
  }

  /** The artifacts watched one by one, as [tenant, id]. */
  *watchedArtifacts(): Generator<[string, string]> {
    // keyOf: `tenant/id`, or the id alone in the tenant "" (an id has no '/').
    for (const key of this.#byArtifact.keys()) {
      const cut = key.lastIndexOf('/');
      yield cut < 0 ? ['', key] : [key.slice(0, cut), key.slice(cut + 1)];
    }
  }

  /** Key for an artifact-scope or subtree-scope watch. */
  static artifactKey(tenant: string, id: string): string {
    return keyOf(tenant, id);
  }

  /** Key for a tag watch. */
  static tagKey(tenant: string, tag: string): string {
    return `${tenant}\0${tag}`;
  }

  /**
   * False when no watch could want a STATE of this artifact: no subtree or tag watch exists and
   * none of its own watches asked for states (a SUBMIT that follows only its result, say).
   */
  wantsStates(tenant: string, id: string): boolean {
    if (this.#bySubtree.size > 0 || this.#byTag.size > 0) return true;
    const direct = this.#byArtifact.get(keyOf(tenant, id));
    if (direct === undefined) return false;
    if (!(direct instanceof Set)) return direct.states;
    for (const w of direct) if (w.states) return true;
    return false;
  }

  /** Watches that match a change of this artifact. */
  matching(view: ArtifactView, ancestors: readonly string[]): Watch[] {
    const out: Watch[] = [];
    pushWatches(out, this.#byArtifact.get(keyOf(view.tenant, view.id)));
    if (this.#bySubtree.size > 0) {
      pushWatches(out, this.#bySubtree.get(keyOf(view.tenant, view.id)));
      for (const a of ancestors) pushWatches(out, this.#bySubtree.get(keyOf(view.tenant, a)));
    }
    if (this.#byTag.size > 0) {
      for (const t of view.tags) pushWatches(out, this.#byTag.get(`${view.tenant}\0${t}`));
    }
    return out;
  }

  /** Send the STATE (and RESULT when terminal) of a change to the matching watches. */
  deliver(watches: readonly Watch[], view: ArtifactView, result: ArtifactResult | undefined): void {
    for (const w of watches) {
      const ch = w.session.channel;
      if (ch === undefined || ch.closed) continue;
      if (w.finished !== undefined) {
        if (w.finished.has(view.id)) continue;
        if (isFinal(view.state)) w.finished.add(view.id);
      }
      if (w.states) ch.send(stateMessage(w.stream, view));
      if (result !== undefined && w.results) sendResult(ch, w.stream, view.id, result);
      if (result !== undefined && w.oneShot) this.remove(w);
    }
  }

  /** Send a partial result to the matching watches that asked for partials. */
  deliverPartial(watches: readonly Watch[], id: string, seq: number, epoch: number, data: Uint8Array): void {
    for (const w of watches) {
      if (!w.partials || w.finished?.has(id) === true) continue;
      const ch = w.session.channel;
      if (ch === undefined || ch.closed) continue;
      ch.send({ type: 'PARTIAL_RESULT', stream: w.stream, artifactId: hexInto(id, SCRATCH_ID), seq, epoch, data });
    }
  }
}

/** True for the terminal states. */
export function isFinal(state: StateName): boolean {
  return state !== 'PENDING' && state !== 'LEASED';
}

/**
 * Scratch bytes for the ids and digests of the messages built below, which their callers send at
 * once: Channel.send encodes a message before it returns.
 */
const SCRATCH_ID = new Uint8Array(16);
const SCRATCH_PARENT_ID = new Uint8Array(16);
const SCRATCH_DIGEST = new Uint8Array(32);

/** The STATE message of a view, to be sent at once (its ids are scratch bytes). */
export function stateMessage(stream: number, view: ArtifactView) {
  return {
    type: 'STATE' as const,
    stream,
    artifactId: hexInto(view.id, SCRATCH_ID),
    state: ArtifactState[view.state],
    attempts: Math.min(view.epoch, 0xffff),
    epoch: view.epoch,
    code: view.code === null ? 0 : wireCodeOf(view.code),
    lastPartialSeq: view.lastPartialSeq,
    parentId: view.parentId === null ? ZERO_ID : hexInto(view.parentId, SCRATCH_PARENT_ID),
    kind: view.kind,
    message: view.message.slice(0, 1000),
  };
}

/**
 * Send a RESULT; one larger than the watcher accepts (ATP_WIRE §3.7) is answered with an ERROR
 * on the watch's stream instead, which says so: the result stays in the store.
 */
export function sendResult(ch: Channel, stream: number, id: string, r: ArtifactResult): void {
  try {
    ch.send(resultMessage(stream, id, r));
  } catch (err) {
    if (!(err instanceof AtpError) || err.code !== 'ATP_ERR_PAYLOAD_TOO_LARGE') throw err;
    ch.sendError(
      stream,
      'ATP_ERR_PAYLOAD_TOO_LARGE',
      `the result of ${id} is larger than this client accepts: ${err.message}`,
      0x0018,
      fromHex(id),
    );
  }
}

/** The RESULT message of a terminal artifact, to be sent at once (its ids are scratch bytes). */
function resultMessage(stream: number, id: string, r: ArtifactResult) {
  return {
    type: 'RESULT' as const,
    stream,
    artifactId: hexInto(id, SCRATCH_ID),
    state: ArtifactState[r.state],
    code: r.code === null ? 0 : wireCodeOf(r.code),
    digest: r.resultDigest === null ? NO_DIGEST : { alg: 1, value: hexInto(r.resultDigest, SCRATCH_DIGEST) },
    message: r.message.slice(0, 1000),
    result: r.result,
    checkpoint: r.checkpoint,
  };
}
