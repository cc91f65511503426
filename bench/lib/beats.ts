/**
 * The beats the bench sends: one realistic Beat (docs/PROTOCOL.md section 1) with
 * every optional field and a small meta, about 200 bytes, like a busy worker's.
 */
import { randomBytes } from 'node:crypto';

export const encoder = new TextEncoder();

export function workerId(i: number): string {
  return `w-${i.toString().padStart(6, '0')}`;
}

export function newInstance(): string {
  return randomBytes(8).toString('hex');
}

export function beatJson(worker: string, instance: string, seq: number, intervalMs: number): string {
  return (
    `{"v":1,"worker":"${worker}","instance":"${instance}","seq":${seq},"interval_ms":${intervalMs},` +
    `"ts":${Date.now()},"status":"busy","inflight":${seq % 4},"load":0.42,` +
    `"meta":{"zone":"eu-west-1a","gpu":true,"slots":8}}`
  );
}

export function leaveJson(worker: string, instance: string, seq: number, phase: 'draining' | 'stopped'): string {
  return `{"v":1,"worker":"${worker}","instance":"${instance}","seq":${seq},"phase":"${phase}","reason":"bench","drain_timeout_ms":60000}`;
}
