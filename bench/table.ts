// The bench's printed table: one section per measurement, a name, a value and the budget it meets
// or misses.
export interface Row {
  name: string;
  value: string;
  /** e.g. "≤ 100 µs: met"; empty for figures without a budget. */
  budget?: string;
}

export function printTable(sections: { title: string; rows: Row[] }[]): string {
  const width = Math.max(...sections.flatMap((s) => s.rows.map((r) => r.name.length)), 10);
  const valueWidth = Math.max(...sections.flatMap((s) => s.rows.map((r) => r.value.length)), 8);
  const lines: string[] = [];
  for (const s of sections) {
    lines.push('', s.title);
    for (const r of s.rows) {
      lines.push(`  ${r.name.padEnd(width)}  ${r.value.padStart(valueWidth)}  ${r.budget ?? ''}`.trimEnd());
    }
  }
  return lines.join('\n');
}

/** "≤ limit unit: met" or "…: MISSED by x" for a measured value; empty when nothing was measured. */
export function budget(value: number | undefined, limit: number, unit: string): string {
  if (value === undefined) return '';
  return value <= limit
    ? `≤ ${limit} ${unit}: met`
    : `≤ ${limit} ${unit}: MISSED (${(value / limit).toFixed(1)}×)`;
}

export const fmt = (n: number | undefined, digits = 1) => (n === undefined ? '—' : n.toFixed(digits));
