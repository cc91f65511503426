/** `npx tsx bench/to-markdown.ts [bench/results.json]`: the figures of a run as a Markdown table, for BENCHMARKS.md. */
import { readFileSync } from 'node:fs';
import type { Figure } from './lib/report.js';

const file = process.argv[2] ?? new URL('./results.json', import.meta.url).pathname;
const r = JSON.parse(readFileSync(file, 'utf8')) as { figures: Figure[]; date: string; mode: string; machine: Record<string, unknown> };
const cell = (v: unknown) => String(v).replaceAll('|', '\\|');
const num = (v: number | string) => (typeof v === 'number' && Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : String(v));
console.log(`Run: ${r.date} (${r.mode}); machine: ${cell(JSON.stringify(r.machine))}\n`);
console.log('| section | figure | value | unit | target | how it was measured |');
console.log('|---|---|---:|---|---|---|');
for (const f of r.figures) {
  const target = f.target === undefined ? '' : `${f.target}${f.ok === undefined ? '' : f.ok ? ' ✅' : ' ❌'}`;
  console.log(`| ${f.section} | ${cell(f.name)} | ${cell(num(f.value))} | ${f.unit} | ${cell(target)} | ${cell(f.how)} |`);
}
