/**
 * The `platform.opencti` section: how hbagg pings an OpenCTI platform on its
 * connectors' behalf (platform.kind "opencti"). Kept apart from schema.ts so
 * the OpenCTI rules live in one place.
 */
import { z } from 'zod';

/** OpenCTI calls a connector active while its last ping is under 5 minutes old. */
export const OPENCTI_INACTIVE_AFTER_MS = 300_000;
/** OpenCTI connector ids are UUIDs (pycti's CONNECTOR_ID). */
export const CONNECTOR_ID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const WORKER_ID = /^[A-Za-z0-9_-]{1,128}$/;

const int = (min: number, max: number) => {
  const error = (iss: { input?: unknown }) =>
    `expected an integer from ${min} to ${max}${iss.input === undefined ? '' : `, got ${JSON.stringify(iss.input)}`}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

export const openctiSchema = z.strictObject({
  /** Each live connector is pinged once per this. Default 120000 (2 min); see `longestSafePingEveryMs`. */
  ping_every_ms: int(100, 3_600_000).default(120_000),
  /** pingConnector calls per GraphQL document. Default 1 (OpenCTI's default alias protection). */
  aliases_per_request: int(1, 1000).default(1),
  /** Call deleteConnector when a listed connector's workers all stop cleanly. Default false. */
  delete_on_stop: z.boolean({ error: 'expected true or false' }).default(false),
  /** Worker id -> connector id, for workers that do not name theirs in meta. Default {}. */
  connectors: z
    .record(
      z.string().regex(WORKER_ID, { error: 'worker ids must match ^[A-Za-z0-9_-]{1,128}$' }),
      z.string({ error: 'expected a connector id (a UUID)' }).regex(CONNECTOR_ID_PATTERN, {
        error: (iss) => `expected a connector id (a UUID), got ${JSON.stringify(iss.input)}`,
      }),
      { error: 'expected an object of worker id -> connector id' },
    )
    .default({}),
  /**
   * How old a ping may be before the platform shows the connector inactive.
   * Default 300000, OpenCTI's rule; change it only for a platform with another
   * rule (tests use a short one).
   */
  inactive_after_ms: int(1000, 86_400_000).default(OPENCTI_INACTIVE_AFTER_MS),
});

/**
 * The longest period that keeps a healthy connector active: a ping may take
 * its full timeout, and one failed ping must leave time for a retry (also
 * bounded by the timeout) before the platform's rule runs out.
 */
export function longestSafePingEveryMs(inactiveAfterMs: number, timeoutMs: number): number {
  return Math.floor((inactiveAfterMs - 2 * timeoutMs) / 2);
}
