/** ATP: the coordinator, the worker and client SDKs, the stores, the codec and the error catalog. */
export * from './coordinator/index.js';
export * from './worker/index.js';
export * from './client/index.js';
export { MemoryStore, PostgresStore, SqliteStore, openStore } from './store/index.js';
export type { PostgresStoreOptions, SqliteStoreOptions, Store } from './store/index.js';
export { AtpError, ERROR_CATALOG, ErrorClass, codeOfWire, isAtpError, wireCodeOf } from './errors.js';
export type { ErrorCode } from './errors.js';
export * as wire from './wire/index.js';
export { FakeClock, SystemClock, systemClock } from './internal/clock.js';
export type { Clock } from './internal/clock.js';
