export * from './time.js';
export * from './registry.js';
export * from './pacer.js';
export * from './batch.js';
export * from './tombstones.js';
export * from './delta.js';
export * from './roster.js';
