// Writes schemas/<name>.json from the zod wire schemas (`npm run schemas`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { jsonSchemas } from '../src/protocol/json-schema.js';

mkdirSync('schemas', { recursive: true });
for (const [name, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(`schemas/${name}.json`, JSON.stringify(schema, null, 2) + '\n');
  console.log(`wrote schemas/${name}.json`);
}
