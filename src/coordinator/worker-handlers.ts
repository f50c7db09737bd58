/**
 * Handlers for worker frames (ATP_SPEC §5, §6, §9): CREDIT, RENEW, PARTIAL, CHECKPOINT, COMPLETE,
 * FAIL, RELEASE, REVOKE_ACK. Every frame that names a lease is fenced: if the lease is not current
 * and held by this session, the answer is an immediate LEASE_LOST on the frame's stream.
 */
import { AtpError, codeOfWire, wireCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { fromHex, toHex } from '../internal/ids.js';
import type { Changed, LeaseRef, Stale } from '../store/store.js';
import type { MessageOf } from '../wire/index.js';
import { REVOKE_ACK_ENTRY_BYTES } from '../wire/constants.js';
import type { Core } from './core.js';
import type { ServerSession } from './session.js';

const MAX_CREDITS = 1 << 20;

function refOf(s: ServerSession, leaseId: Uint8Array, epoch: number): LeaseRef {
  return { leaseId: toHex(leaseId), epoch, sessionId: s.id };
}

/** ATP_SPEC §5.7: the stale reply. */
export function sendLeaseLost(
  s: ServerSession,
  stream: number,
  leaseId: Uint8Array,
  epoch: number,
  artifactId: string | null,
  code: ErrorCode,
  message: string,
): void {
  s.channel?.send({
    type: 'LEASE_LOST',
    stream,
    leaseId,
    epoch,
    artifactId: artifactId === null ? new Uint8Array(16) : fromHex(artifactId),
    code: wireCodeOf(code),
    message,
  });
}

function stale(core: Core, s: ServerSession, stream: number, leaseId: Uint8Array, epoch: number, st: Stale): void {
  const hex = toHex(leaseId);
  const code = core.revokedCode(s, hex) ?? st.code;
  // A stale frame changes nothing (ATP_SPEC §5.7): a wrong epoch must not make the session forget a
  // lease it still holds (it would never expire). Only a lease the store has ended is dropped.
  const held = s.leases.get(hex);
  if (held !== undefined && held.lease.epoch === epoch) {
    held.maxDurationTimer?.cancel();
    s.leases.delete(hex);
  }
  sendLeaseLost(s, stream, leaseId, epoch, st.artifactId, code, `lease ${hex} epoch ${epoch} is not current`);
  core.emit('stale', { sessionId: s.id, leaseId: hex, epoch, code });
}

/** The worker named a lease it holds after a resume: session-wide renewals cover it again (ATP_SPEC §11.6). */
function confirm(s: ServerSession, leaseId: Uint8Array): void {
  const h = s.leases.get(toHex(leaseId));
  if (h !== undefined) h.confirmed = true;
}

/** After a transition that ended this session's lease: forget it, publish, revoke others, re-dispatch. */
function ended(core: Core, s: ServerSession, leaseHex: string, ch: Changed): void {
  const held = s.leases.get(leaseHex);
  held?.maxDurationTimer?.cancel();
  s.leases.delete(leaseHex);
  core.publish(ch.view, ch.result);
  core.revoke(ch.revoke);
  if (ch.view.state === 'PENDING') core.wake(ch.view.tenant, ch.view.kind);
}

/** CREDIT (ATP_SPEC §5.2). */
export function handleCredit(core: Core, s: ServerSession, msg: MessageOf<'CREDIT'>): void {
  s.credits += msg.credits;
  if (s.credits > MAX_CREDITS) {
    s.channel?.fail(new AtpError('ATP_ERR_FLOW_CONTROL', `credits above ${MAX_CREDITS} outstanding`));
    return;
  }
  core.dispatch(s);
}

/** RENEW (ATP_SPEC §5.4): session-level renewal, O(1) for the empty list. */
export function handleRenew(core: Core, s: ServerSession, msg: MessageOf<'RENEW'>): void {
  const now = core.now();
  let ttl = Infinity;
  let renewed = 0;
  const stale: Uint8Array[] = [];
  if (msg.leaseIds.length === 0) {
    s.lastRenewAt = now;
    // Leases kept over a resume are not covered until the worker names them (ATP_SPEC §11.6).
    for (const h of s.leases.values()) {
      if (!h.confirmed) continue;
      renewed++;
      ttl = Math.min(ttl, h.lease.ttlMs);
    }
  } else {
    const seen = new Set<string>();
    for (const id of msg.leaseIds) {
      const hex = toHex(id);
      const h = s.leases.get(hex);
      if (h === undefined) {
        // Never extends another holder's lease: a stale id only earns a stale reply.
        stale.push(id);
        continue;
      }
      h.renewedAt = now;
      h.confirmed = true;
      if (seen.has(hex)) continue;
      seen.add(hex);
      renewed++;
      ttl = Math.min(ttl, h.lease.ttlMs);
    }
  }
  const answer = () => s.channel?.send({ type: 'RENEWED', stream: msg.stream, ttlMs: ttl === Infinity ? 0 : ttl, renewed });
  if (stale.length === 0) return answer();
  // The stale replies carry the most specific reason the store remembers (ATP_SPEC §5.7), before RENEWED.
  Promise.all(stale.map((id) => core.store.leaseStatus({ leaseId: toHex(id), epoch: -1, sessionId: s.id }))).then(
    (outs) => {
      outs.forEach((out, i) => {
        const id = stale[i]!;
        const hex = toHex(id);
        const st = out.kind === 'stale' ? out : { code: 'ATP_ERR_STALE_LEASE' as const, artifactId: out.lease.artifactId };
        sendLeaseLost(s, msg.stream, id, 0, st.artifactId, core.revokedCode(s, hex) ?? st.code, `lease ${hex} is not held by this session`);
      });
      answer();
    },
    (err: unknown) => core.fault('renew', err, s),
  );
}

/** PARTIAL (ATP_SPEC §9.1). */
export function handlePartial(core: Core, s: ServerSession, msg: MessageOf<'PARTIAL'>): void {
  const ref = refOf(s, msg.leaseId, msg.epoch);
  core.store.partial(ref, msg.seq, msg.data, core.now()).then(
    (out) => {
      switch (out.kind) {
        case 'stale':
          return stale(core, s, msg.stream, msg.leaseId, msg.epoch, out);
        case 'duplicate':
          return;
        case 'gap':
          s.channel?.sendError(
            msg.stream,
            'ATP_ERR_INVALID_ARGUMENT',
            `partial seq ${msg.seq} leaves a gap: expected ${out.expected}`,
            0x0025,
            msg.leaseId,
          );
          return;
        case 'ok': {
          confirm(s, msg.leaseId);
          core.publishPartial(out.view, out.seq, msg.epoch, msg.data);
          return;
        }
      }
    },
    (err: unknown) => core.fault('partial', err, s),
  );
}

/** CHECKPOINT (ATP_SPEC §9.3). */
export function handleCheckpoint(core: Core, s: ServerSession, msg: MessageOf<'CHECKPOINT'>): void {
  core.store.checkpoint(refOf(s, msg.leaseId, msg.epoch), msg.data, core.now()).then(
    (out) => {
      if (out.kind === 'stale') return stale(core, s, msg.stream, msg.leaseId, msg.epoch, out);
      confirm(s, msg.leaseId);
      s.channel?.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0026, subject: msg.leaseId });
    },
    (err: unknown) => core.fault('checkpoint', err, s),
  );
}

/** COMPLETE (ATP_SPEC §6.1): a result is accepted exactly once. */
export function handleComplete(core: Core, s: ServerSession, msg: MessageOf<'COMPLETE'>): void {
  const hex = toHex(msg.leaseId);
  core.store.complete(refOf(s, msg.leaseId, msg.epoch), msg.result, core.now()).then(
    (out) => {
      if (out.kind === 'stale') return stale(core, s, msg.stream, msg.leaseId, msg.epoch, out);
      // The worker's ACK is queued before the RESULT to the producer: its write goes first, so a
      // producer answering the RESULT at once does not find the coordinator still writing the ACK.
      s.channel?.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0027, subject: msg.leaseId });
      if (out.kind === 'recorded') {
        s.leases.get(hex)?.maxDurationTimer?.cancel();
        s.leases.delete(hex);
        core.publish(out.view);
        if (out.view.state === 'PENDING') core.wake(out.view.tenant, out.view.kind);
      } else ended(core, s, hex, out);
    },
    (err: unknown) => core.fault('complete', err, s),
  );
}

/** FAIL (ATP_SPEC §6.2). */
export function handleFail(core: Core, s: ServerSession, msg: MessageOf<'FAIL'>): void {
  const hex = toHex(msg.leaseId);
  const code: ErrorCode = msg.code === 0 ? (msg.retryable ? 'ATP_ERR_HANDLER' : 'ATP_ERR_HANDLER_FATAL') : codeOfWire(msg.code);
  core.store.fail(refOf(s, msg.leaseId, msg.epoch), code, msg.retryable === 1, msg.message, core.now()).then(
    (out) => {
      if (out.kind === 'stale') return stale(core, s, msg.stream, msg.leaseId, msg.epoch, out);
      s.channel?.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0028, subject: msg.leaseId });
      ended(core, s, hex, out);
    },
    (err: unknown) => core.fault('fail', err, s),
  );
}

/** RELEASE (ATP_SPEC §6.3): hand back, not a failed attempt. */
export function handleRelease(core: Core, s: ServerSession, msg: MessageOf<'RELEASE'>): void {
  const hex = toHex(msg.leaseId);
  core.store.release(refOf(s, msg.leaseId, msg.epoch), msg.hasCheckpoint === 1 ? msg.checkpoint : undefined, core.now()).then(
    (out) => {
      if (out.kind === 'stale') return stale(core, s, msg.stream, msg.leaseId, msg.epoch, out);
      ended(core, s, hex, out);
      s.channel?.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0029, subject: msg.leaseId });
    },
    (err: unknown) => core.fault('release', err, s),
  );
}

/** REVOKE_ACK (ATP_SPEC §8.3), with the leases of its `more` extension (revoke-batch, ATP_WIRE §6.32). */
export function handleRevokeAck(core: Core, s: ServerSession, msg: MessageOf<'REVOKE_ACK'>): void {
  const more = msg.more;
  if (more !== undefined && more.length % REVOKE_ACK_ENTRY_BYTES !== 0) {
    s.channel?.fail(
      new AtpError('ATP_ERR_PROTOCOL', `REVOKE_ACK.more is ${more.length} bytes, not a multiple of ${REVOKE_ACK_ENTRY_BYTES}`),
    );
    return;
  }
  revokeAcked(core, s, msg.stream, msg.leaseId, msg.epoch);
  if (more === undefined) return;
  const view = new DataView(more.buffer, more.byteOffset, more.byteLength);
  for (let off = 0; off < more.length; off += REVOKE_ACK_ENTRY_BYTES) {
    revokeAcked(core, s, msg.stream, more.subarray(off, off + 16), view.getUint32(off + 16));
  }
}

function revokeAcked(core: Core, s: ServerSession, stream: number, leaseId: Uint8Array, epoch: number): void {
  const hex = toHex(leaseId);
  const r = s.revoking.get(hex);
  if (r === undefined || r.lease.epoch !== epoch) {
    // ATP_SPEC §5.7, §8.3: only a lease of this session being revoked, before its deadline, can be
    // acknowledged. A late acknowledgement (the lease was fenced) or one naming any other lease gets
    // LEASE_LOST with the most specific reason known, and changes nothing.
    core.store.leaseStatus(refOf(s, leaseId, epoch)).then(
      (st) => {
        const code = st.kind === 'stale' ? st.code : 'ATP_ERR_STALE_LEASE';
        const artifactId = st.kind === 'stale' ? st.artifactId : st.lease.artifactId;
        sendLeaseLost(s, stream, leaseId, epoch, artifactId, code, `lease ${hex} epoch ${epoch} is not being revoked`);
        core.emit('stale', { sessionId: s.id, leaseId: hex, epoch, code, frame: 'REVOKE_ACK' });
      },
      (err: unknown) => core.fault('revoke ack', err, s),
    );
    return;
  }
  s.revoking.delete(hex);
  if (--r.batch.pending === 0) {
    r.batch.timer?.cancel();
    r.batch.timer = undefined;
  }
  core.emit('revoke-ack', { sessionId: s.id, leaseId: hex, epoch });
}
