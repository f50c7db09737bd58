/**
 * The connection preface (ATP_WIRE §2): `ATP1\r\n\r\n`, sent first by both sides on TCP and TLS.
 * Anything else is diagnosed from its first bytes so that an operator sees the real cause.
 */
import { AtpError } from '../errors.js';
import { PREFACE } from './constants.js';

/** Result of checking the first bytes of a connection. */
export type PrefaceCheck = { ok: true } | { ok: false; needMore: true } | { ok: false; needMore: false; error: AtpError };

/** Hex of at most 32 bytes, for diagnostics. */
export function hexSnippet(bytes: Uint8Array, max = 32): string {
  let s = '';
  for (let i = 0; i < Math.min(bytes.length, max); i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

function diagnose(bytes: Uint8Array): string {
  const text = String.fromCharCode(...bytes.subarray(0, 8));
  if (/^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT) /.test(text))
    return 'an HTTP request on the ATP port (use the WebSocket endpoint for browsers)';
  if (text.startsWith('PRI * HT')) return 'an HTTP/2 connection preface on the ATP port';
  if (bytes[0] === 0x16 && bytes[1] === 0x03)
    return 'a TLS ClientHello on a plain ATP port (connect without TLS, or enable TLS on the coordinator)';
  return 'bytes that are not an ATP preface';
}

/** Check the first bytes received. `bytes` may be shorter than the preface. */
export function checkPreface(bytes: Uint8Array): PrefaceCheck {
  const n = Math.min(bytes.length, PREFACE.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] === PREFACE[i]) continue;
    if (i === 3 && bytes[0] === 0x41 && bytes[1] === 0x54 && bytes[2] === 0x50) {
      const major = String.fromCharCode(bytes[3]!);
      return {
        ok: false,
        needMore: false,
        error: new AtpError('ATP_ERR_UNSUPPORTED_VERSION', `peer speaks ATP major version ${JSON.stringify(major)}; this side speaks 1`),
      };
    }
    return {
      ok: false,
      needMore: false,
      error: new AtpError('ATP_ERR_WRONG_PROTOCOL', `not ATP: received ${diagnose(bytes)} (first bytes ${hexSnippet(bytes)})`),
    };
  }
  return n < PREFACE.length ? { ok: false, needMore: true } : { ok: true };
}
