/** The coordinator: `new Coordinator({ store }).listen(url)`. */
export { COORDINATOR_DIAGNOSTICS, Coordinator } from './coordinator.js';
export type { CoordinatorOptions, TokenGrant } from './options.js';
export { DEFAULT_MESSAGE_BUDGET_BYTES } from './options.js';
export { MessageBudget } from '../protocol/message-budget.js';
