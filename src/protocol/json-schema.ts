/**
 * JSON Schema (draft 2020-12) of the wire messages, for workers and platforms
 * written in other languages. `npm run schemas` writes them to `schemas/`;
 * a test fails when the committed files drift from the zod schemas.
 */
import { z } from 'zod';
import { Beat, Leave, LeaveReply, Ping, PlatformAnswer } from './schemas.js';

export const WIRE_SCHEMAS = { beat: Beat, leave: Leave, 'leave-reply': LeaveReply, ping: Ping, 'platform-answer': PlatformAnswer } as const;

export function jsonSchemas(): Record<keyof typeof WIRE_SCHEMAS, object> {
  const out = {} as Record<keyof typeof WIRE_SCHEMAS, object>;
  for (const [name, schema] of Object.entries(WIRE_SCHEMAS) as [keyof typeof WIRE_SCHEMAS, z.ZodType][]) {
    out[name] = {
      $id: `https://hbagg.dev/schemas/v1/${name}.json`,
      title: `hbagg v1 ${name}`,
      ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }),
    };
  }
  return out;
}
