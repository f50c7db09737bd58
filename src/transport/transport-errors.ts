/**
 * Operational errors of connecting and listening, worded for the person at the terminal: they name
 * the address and say what probably went wrong. The system error stays available as `cause`.
 */
import diagnostics from 'node:diagnostics_channel';

/** Diagnostics channel `atp:transport:accept-error`: `{ url, error }` for each connection a listener failed to accept. */
export const acceptErrorChannel = diagnostics.channel('atp:transport:accept-error');

/** Called with each connection a listener failed to accept (TLS handshake failure, refused WebSocket upgrade). */
export type AcceptErrorHandler = (error: Error) => void;

/** Reports a failed accept on the diagnostics channel and to the listener's handler, if any. */
export function reportAcceptError(url: string, error: Error, onAcceptError: AcceptErrorHandler | undefined): void {
  if (acceptErrorChannel.hasSubscribers) acceptErrorChannel.publish({ url, error });
  onAcceptError?.(error);
}

/** `host:port`, with brackets around an IPv6 host. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function systemCode(cause: unknown): string | undefined {
  if (typeof cause !== 'object' || cause === null || !('code' in cause)) return undefined;
  const code = cause.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** Why a connection could not be made, in words. */
function connectProblem(cause: unknown): string {
  switch (systemCode(cause)) {
    case 'ECONNREFUSED':
      return 'connection refused (is the coordinator running?)';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset during the handshake';
    case 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL':
      return 'the server does not offer ALPN protocol atp/1 (is it an ATP endpoint?)';
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return 'the server did not answer with TLS (is it a plain tcp:// endpoint?)';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `server certificate rejected: ${messageOf(cause)} (pass the issuing CA)`;
    default:
      return messageOf(cause);
  }
}

/** The error a failed connect rejects with, e.g. `cannot connect to tcp://127.0.0.1:7400: connection refused (…)`. */
export function connectError(url: string, cause: unknown): Error {
  return new Error(`cannot connect to ${url}: ${connectProblem(cause)}`, { cause });
}

/** The error a connect that took too long rejects with. */
export function connectTimeoutError(url: string, timeoutMs: number): Error {
  const cause = Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
  return new Error(`cannot connect to ${url}: timed out after ${timeoutMs} ms`, { cause });
}

/** The error a failed listen rejects with, e.g. `cannot listen on tcp://0.0.0.0:7400: address in use`. */
export function listenError(url: string, cause: unknown): Error {
  let problem: string;
  switch (systemCode(cause)) {
    case 'EADDRINUSE':
      problem = 'address in use (is another coordinator running?)';
      break;
    case 'EACCES':
      problem = 'permission denied (ports below 1024 need privileges)';
      break;
    case 'EADDRNOTAVAIL':
      problem = 'no local interface has that address';
      break;
    default:
      problem = messageOf(cause);
  }
  return new Error(`cannot listen on ${url}: ${problem}`, { cause });
}

/** Validates a timeout option: a positive safe integer of milliseconds. */
export function timeoutOf(value: number | undefined, fallbackMs: number, name = 'timeoutMs'): number {
  if (value === undefined) return fallbackMs;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

/** Validates a port option: an integer 0..65535 (0 picks a free port when listening). */
export function portOf(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 65535)
    throw new RangeError(`port must be an integer 0..65535, got ${String(value)}`);
  return value;
}
