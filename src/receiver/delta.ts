/**
 * The receiving side of delta pings (PROTOCOL.md 3.1), pure: one node's
 * view of its entries, updated by full and delta pings (or their parts),
 * with `base` and the roster checked.
 *
 * - A full ping (or a v1 ping, which has no `mode`) rebuilds the view: its
 *   parts are applied as they come, and when the last one arrives every entry
 *   no part listed is dropped.
 * - A delta is applied on top of the view only when the view holds a full
 *   ping of the same daemon instance and `base` is at most the last ping the
 *   view applied completely; otherwise it is refused unapplied (`conflict`: a
 *   409, the daemon sends a full ping at once).
 * - Parts of one ping must arrive in order (the daemon sends them one after
 *   another); a part out of order is a conflict too.
 * - After the last part, the view's roster must equal the ping's; if not,
 *   the ping stays applied but the answer asks for a resync (`resync: true`
 *   in the 2xx) and deltas are refused until a full ping completes.
 */
import { Roster, rosterKey, type RosterValue } from '../core/roster.js';
import type { Ping, PingWorker } from '../protocol/schemas.js';

export type DeltaVerdict =
  /** Applied; `complete` after the last part; `resync` asks the daemon for a full ping. */
  | { kind: 'applied'; complete: boolean; resync: boolean; reason?: string }
  /** Not applied: answer 409 with `{"resync": true}`. */
  | { kind: 'conflict'; reason: string };

interface InProgress {
  seq: number;
  full: boolean;
  next: number;
  listed: Set<string> | undefined;
}

export class NodeView {
  /** The last listing of each instance, by `worker\ninstance`. */
  readonly entries = new Map<string, PingWorker>();
  private readonly roster = new Roster();
  /** The seq of the last ping applied completely; undefined until a full ping completes (or after a mismatch). */
  private complete: number | undefined;
  private partial: InProgress | undefined;

  constructor(readonly daemon: string) {}

  rosterValue(): RosterValue {
    return this.roster.value();
  }

  /** The seq a delta may name as `base` at most (undefined: deltas are refused). */
  get lastComplete(): number | undefined {
    return this.complete;
  }

  apply(ping: Ping): DeltaVerdict {
    const b = ping.batch;
    const full = b.mode !== 'delta';
    if (b.part === 1) {
      if (!full) {
        if (this.complete === undefined) return conflict(`no complete full ping of daemon ${this.daemon} to apply a delta to`);
        if (b.base === undefined || b.base > this.complete) {
          return conflict(`delta base ${b.base ?? '(none)'} is not a ping applied here (last complete: ${this.complete})`);
        }
      }
      this.partial = { seq: b.seq, full, next: 1, listed: full ? new Set() : undefined };
    }
    const p = this.partial;
    if (p === undefined || p.seq !== b.seq || p.next !== b.part || p.full !== full) {
      this.partial = undefined;
      return conflict(`part ${b.part}/${b.parts} of ping ${b.seq} arrived out of order`);
    }
    p.next++;
    for (const w of ping.workers) {
      const key = rosterKey(w.worker, w.instance);
      this.entries.set(key, w);
      this.roster.set(w.worker, w.instance, w.state);
      p.listed?.add(key);
    }
    if (b.part < b.parts) return { kind: 'applied', complete: false, resync: false };
    this.partial = undefined;
    if (p.listed !== undefined) {
      for (const [key, w] of this.entries) {
        if (p.listed.has(key)) continue;
        this.entries.delete(key);
        this.roster.set(w.worker, w.instance, undefined);
      }
    }
    this.complete = b.seq;
    if (ping.roster === undefined) return { kind: 'applied', complete: true, resync: false };
    const mine = this.roster.value();
    if (mine.count === ping.roster.count && mine.xor === ping.roster.xor) return { kind: 'applied', complete: true, resync: false };
    this.complete = undefined;
    const reason = `roster mismatch: ping says ${ping.roster.count}/${ping.roster.xor}, view has ${mine.count}/${mine.xor}`;
    return { kind: 'applied', complete: true, resync: true, reason };
  }

  /** Live entries (`active`, `draining`), as last listed. */
  live(): PingWorker[] {
    return [...this.entries.values()].filter((w) => w.state === 'active' || w.state === 'draining');
  }
}

/** One view per node; a new daemon instance starts a new view. */
export class DeltaViews {
  private readonly views = new Map<string, NodeView>();

  apply(ping: Ping): DeltaVerdict {
    let view = this.views.get(ping.node);
    if (view === undefined || view.daemon !== ping.daemon.instance) {
      view = new NodeView(ping.daemon.instance);
      this.views.set(ping.node, view);
    }
    return view.apply(ping);
  }

  get(node: string): NodeView | undefined {
    return this.views.get(node);
  }
}

function conflict(reason: string): DeltaVerdict {
  return { kind: 'conflict', reason };
}
