/** The producer SDK: `Client.connect(url)`, `submit()`, handles with `result()` and `events()`. */
export { Client, TERMINAL_STATES } from './client.js';
export type { ArtifactStatus, CancelSummary, ClientOptions, SubmitSpec } from './client.js';
export { ArtifactHandle } from './handle.js';
export type { ArtifactEvent, ArtifactOutcome } from './handle.js';
