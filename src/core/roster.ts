/**
 * The roster (PROTOCOL.md 3.1): a digest of a node's live entries (`active`
 * and `draining`) that both the daemon and the platform can keep
 * incrementally. `count` is their number; `xor` the XOR over them of the
 * first 8 bytes of SHA-256 of `worker + "\n" + instance + "\n" + state`, as
 * 16 lowercase hex digits. An entry entering, leaving or changing state is
 * one XOR out and one XOR in: no pass over every worker.
 *
 * Pure apart from hashing (node:crypto computes, it touches no socket or file).
 */
import { createHash } from 'node:crypto';
import type { WorkerState } from '../protocol/schemas.js';

export interface RosterValue {
  count: number;
  /** 16 lowercase hex digits. */
  xor: string;
}

/** The 64-bit hash of one live entry, as two unsigned 32-bit halves. */
export interface RosterHash {
  hi: number;
  lo: number;
}

export const EMPTY_ROSTER: RosterValue = Object.freeze({ count: 0, xor: '0000000000000000' });

export function isLive(state: WorkerState): boolean {
  return state === 'active' || state === 'draining';
}

export function rosterHash(worker: string, instance: string, state: WorkerState): RosterHash {
  const d = createHash('sha256').update(`${worker}\n${instance}\n${state}`, 'utf8').digest();
  return { hi: d.readUInt32BE(0), lo: d.readUInt32BE(4) };
}

export function rosterKey(worker: string, instance: string): string {
  return `${worker}\n${instance}`;
}

interface Member extends RosterHash {
  state: WorkerState;
}

/** A roster kept by entry key (`worker\ninstance`), one XOR per change. */
export class Roster {
  private readonly members = new Map<string, Member>();
  private hi = 0;
  private lo = 0;

  get count(): number {
    return this.members.size;
  }

  /** Sets an entry's state; a non-live state (or undefined: gone) takes it out. */
  set(worker: string, instance: string, state: WorkerState | undefined): void {
    const key = rosterKey(worker, instance);
    const old = this.members.get(key);
    if (old !== undefined && old.state === state) return;
    if (old !== undefined) {
      this.flip(old);
      this.members.delete(key);
    }
    if (state === undefined || !isLive(state)) return;
    const m: Member = { ...rosterHash(worker, instance, state), state };
    this.flip(m);
    this.members.set(key, m);
  }

  /**
   * Replaces the whole roster with `entries` (the live ones among them),
   * reusing the hashes of members whose state did not change.
   */
  rebuild(entries: Iterable<{ worker: string; instance: string; state: WorkerState }>): void {
    const old = new Map(this.members);
    this.members.clear();
    this.hi = this.lo = 0;
    for (const e of entries) {
      if (!isLive(e.state)) continue;
      const key = rosterKey(e.worker, e.instance);
      const prev = old.get(key);
      const m = prev !== undefined && prev.state === e.state ? prev : { ...rosterHash(e.worker, e.instance, e.state), state: e.state };
      if (this.members.has(key)) continue;
      this.flip(m);
      this.members.set(key, m);
    }
  }

  value(): RosterValue {
    return { count: this.members.size, xor: hex(this.hi) + hex(this.lo) };
  }

  private flip(h: RosterHash): void {
    this.hi = (this.hi ^ h.hi) >>> 0;
    this.lo = (this.lo ^ h.lo) >>> 0;
  }
}

/** The roster of a list of entries, computed in one pass (tests, and a receiver rebuilding a view). */
export function rosterOf(entries: Iterable<{ worker: string; instance: string; state: WorkerState }>): RosterValue {
  const r = new Roster();
  r.rebuild(entries);
  return r.value();
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
