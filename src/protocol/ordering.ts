/**
 * Which messages may overtake the remaining fragments of a fragmented message (ATP_WIRE §3.9,
 * ATP-4.7-8): a message is related to another when they share a non-zero stream id, or when both
 * name the same artifact or lease id. A related message keeps its order; an unrelated one may be
 * written between the fragments.
 */
import { MESSAGES } from '../wire/index.js';
import type { Message, MessageSpec } from '../wire/index.js';

/** A message that waits behind every message queued before it, related or not. */
export function isBarrier(msg: Message): boolean {
  // A drain changes what the peer may do with messages sent before it (no lease after a drain).
  return msg.type === 'GOAWAY';
}

function idKey(id: Uint8Array): string | undefined {
  for (let i = 0; i < id.length; i++) if (id[i] !== 0) return 'i' + Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
  return undefined;
}

/**
 * The ordering keys of a message: `s<stream>` for its non-zero stream (and the watch stream an
 * UNWATCH names), `i<hex>` for every non-zero artifact, lease or subject id it carries. RENEW is
 * keyed by its stream only: a renewal may overtake a large COMPLETE of a lease it renews, which
 * keeps the lease alive while the result arrives (ATP-4.7-8).
 */
export function orderingKeys(msg: Message): string[] {
  const keys: string[] = [];
  if (msg.stream !== 0) keys.push('s' + String(msg.stream));
  if (msg.type === 'RENEW') return keys;
  if (msg.type === 'UNWATCH' && msg.watchStream !== 0) keys.push('s' + String(msg.watchStream));
  const spec: MessageSpec = MESSAGES[msg.type];
  const rec = msg as unknown as Record<string, unknown>;
  for (const fs of spec.fields) {
    if (fs.kind === 'id') {
      const k = idKey(rec[fs.name] as Uint8Array);
      if (k !== undefined) keys.push(k);
    } else if (fs.kind === 'ids') {
      for (const id of rec[fs.name] as Uint8Array[]) {
        const k = idKey(id);
        if (k !== undefined) keys.push(k);
      }
    }
  }
  return keys;
}
