import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreConformance } from './conformance.js';

runStoreConformance('memory', () => new MemoryStore());
