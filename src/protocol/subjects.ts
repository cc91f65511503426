/** Subject names of docs/PROTOCOL.md section 1: `<prefix>.beat.<worker>`, `<prefix>.leave.<worker>`. */
export type SubjectKind = 'beat' | 'leave';

export function beatSubject(prefix: string, worker: string): string {
  return `${prefix}.beat.${worker}`;
}

export function leaveSubject(prefix: string, worker: string): string {
  return `${prefix}.leave.${worker}`;
}

/** The wildcard the daemon subscribes to for one kind. */
export function wildcard(prefix: string, kind: SubjectKind): string {
  return `${prefix}.${kind}.*`;
}

/** The worker token of a subject under `<prefix>.<kind>.`, or undefined if it is not one. */
export function workerFromSubject(subject: string, prefix: string, kind: SubjectKind): string | undefined {
  const head = `${prefix}.${kind}.`;
  if (!subject.startsWith(head)) return undefined;
  const token = subject.slice(head.length);
  return token.length > 0 && !token.includes('.') ? token : undefined;
}
