/** The coordinator: `new Coordinator({ store }).listen(url)`. */
export { COORDINATOR_DIAGNOSTICS, Coordinator } from './coordinator.js';
export type { CoordinatorOptions, TokenGrant } from './options.js';
