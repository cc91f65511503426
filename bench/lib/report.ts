/** Figures as the bench reports them: every number says how it was measured. */

export interface Figure {
  section: string;
  name: string;
  value: number | string;
  unit: string;
  target?: string;
  /** Whether the target is met (undefined when there is none). */
  ok?: boolean;
  how: string;
}

export interface SectionResult {
  figures: Figure[];
  /** Raw samples and parameters, kept in results.json. */
  details: Record<string, unknown>;
}

function show(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(Math.round(v * 1000) / 1000);
}

/** A plain text table: section, figure, value, unit, target. */
export function table(figures: readonly Figure[]): string {
  const rows = figures.map((f) => [
    f.section,
    f.name,
    show(f.value),
    f.unit,
    f.target === undefined ? '' : `${f.target} ${f.ok === undefined ? '' : f.ok ? 'ok' : 'MISSED'}`.trim(),
  ]);
  const head = ['section', 'figure', 'value', 'unit', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) => r.map((c, i) => (i === 2 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
