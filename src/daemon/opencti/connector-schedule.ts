/**
 * When each connector is due. Pure: monotonic time and randomness come in as
 * arguments.
 *
 * - A connector that appears is due at once (its first ping).
 * - After its first accepted ping, its next one comes after an offset drawn
 *   from a low-discrepancy sequence (golden ratio) in (0, period], then every
 *   period: connectors that appear together (a node restart) spread out over
 *   the period instead of pinging in one burst for ever.
 * - With room for more aliases in a request, connectors due within half a
 *   period are pulled forward into it (never one pinged less than half a
 *   period ago): groups form and then stay together, so N aliases per
 *   request means about count/N requests per period.
 * - A connector the platform does not know (or refuses) backs off
 *   exponentially from one period to 32 periods; a restart of one of its
 *   replicas (a new `epoch`) tries again at once, since a restarted connector
 *   registers itself anew.
 * - A request that failed as a whole (timeout, 5xx, 429) leaves its
 *   connectors due; the request gate (request-gate.ts) decides when to retry.
 */

const GOLDEN = 0.6180339887498949;
const UNKNOWN_BACKOFF_MAX_PERIODS = 32;

export type ConnectorOutcome = 'ok' | 'unknown' | 'rejected';

export interface SlotView {
  id: string;
  nextDue: number;
  lastOk?: number;
  failures: number;
  outcome?: ConnectorOutcome;
  inFlight: boolean;
}

interface Slot extends SlotView {
  epoch: string;
  lastSent?: number;
  /** Offset of the second ping, fixed at appearance. */
  spread: number;
}

export class ConnectorSchedule {
  private readonly slots = new Map<string, Slot>();
  private appeared = 0;

  constructor(private readonly periodMs: number) {}

  get size(): number {
    return this.slots.size;
  }

  /**
   * The live connectors now (id -> epoch). New ones are due at once; gone
   * ones are forgotten (they are not pinged again). Returns both lists.
   */
  sync(live: ReadonlyMap<string, string>, now: number): { appeared: string[]; gone: string[] } {
    const appeared: string[] = [];
    const gone: string[] = [];
    for (const id of this.slots.keys()) {
      if (!live.has(id)) {
        this.slots.delete(id);
        gone.push(id);
      }
    }
    for (const [id, epoch] of live) {
      const s = this.slots.get(id);
      if (s === undefined) {
        this.appeared++;
        const frac = (this.appeared * GOLDEN) % 1;
        this.slots.set(id, { id, epoch, nextDue: now, failures: 0, inFlight: false, spread: Math.max(frac, 0.01) * this.periodMs });
        appeared.push(id);
        continue;
      }
      if (s.epoch !== epoch) {
        s.epoch = epoch;
        // A replica restarted: a connector the platform did not know may have registered by now.
        if (s.outcome === 'unknown' || s.outcome === 'rejected') {
          s.failures = 0;
          s.nextDue = Math.min(s.nextDue, now);
        }
      }
    }
    return { appeared, gone };
  }

  /**
   * Up to `maxRequests` groups of at most `aliases` connectors to ping now,
   * soonest due first; each is marked in flight until `done` or `release`.
   */
  take(now: number, aliases: number, maxRequests: number): string[][] {
    if (maxRequests <= 0) return [];
    const idle = [...this.slots.values()].filter((s) => !s.inFlight).sort((a, b) => a.nextDue - b.nextDue);
    const due = idle.filter((s) => s.nextDue <= now);
    if (due.length === 0) return [];
    const size = Math.max(1, aliases);
    const picked = due.slice(0, size * maxRequests);
    const room = Math.ceil(picked.length / size) * size - picked.length;
    if (room > 0) {
      const half = this.periodMs / 2;
      const early = idle.filter(
        (s) => s.nextDue > now && s.nextDue <= now + half && s.failures === 0 && s.lastSent !== undefined && now - s.lastSent >= half,
      );
      picked.push(...early.slice(0, room));
    }
    const groups: string[][] = [];
    for (let i = 0; i < picked.length; i += size) {
      const group = picked.slice(i, i + size);
      for (const s of group) s.inFlight = true;
      groups.push(group.map((s) => s.id));
    }
    return groups;
  }

  /** The platform answered for this connector. */
  done(id: string, now: number, outcome: ConnectorOutcome): void {
    const s = this.slots.get(id);
    if (s === undefined) return;
    s.inFlight = false;
    s.lastSent = now;
    s.outcome = outcome;
    if (outcome === 'ok') {
      s.nextDue = now + (s.lastOk === undefined ? s.spread : this.periodMs);
      s.lastOk = now;
      s.failures = 0;
      return;
    }
    s.failures++;
    s.nextDue = now + this.periodMs * 2 ** Math.min(s.failures - 1, Math.log2(UNKNOWN_BACKOFF_MAX_PERIODS));
  }

  /** No answer for this connector (the request failed or was cut short): still due. */
  release(id: string): void {
    const s = this.slots.get(id);
    if (s !== undefined) s.inFlight = false;
  }

  /** Earliest time a connector not in flight is due; Infinity when none. */
  nextDueAt(): number {
    let next = Infinity;
    for (const s of this.slots.values()) if (!s.inFlight && s.nextDue < next) next = s.nextDue;
    return next;
  }

  view(id: string): SlotView | undefined {
    const s = this.slots.get(id);
    return s === undefined ? undefined : { ...s };
  }

  views(): SlotView[] {
    return [...this.slots.values()].map((s) => ({ ...s }));
  }
}
