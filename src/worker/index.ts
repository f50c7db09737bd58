/** The worker SDK: `new Worker({ url }).handle(kind, async (artifact, ctx) => result)`. */
export { NonRetryableError, Worker } from './worker.js';
export type { Handler, HandlerContext, LeasedArtifact, WorkerOptions } from './worker.js';
export { WORKER_THREADS_DIAGNOSTICS } from './thread-pool.js';
export type { ThreadArtifact, ThreadHandler, ThreadHandlerContext, ThreadPoolOptions } from './thread-pool.js';
