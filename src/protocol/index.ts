export * from './schemas.js';
export * from './decode.js';
export * from './subjects.js';
export * from './json-schema.js';
