/**
 * One moment seen by two clocks: `wall` (ms since the epoch) is what pings
 * report; `mono` (a monotonic ms counter) is what every duration is measured
 * with, so a wall-clock jump never makes a worker look silent.
 */
export interface Instant {
  wall: number;
  mono: number;
}

export type Clock = () => Instant;
