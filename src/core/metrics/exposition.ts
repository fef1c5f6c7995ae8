/**
 * Prometheus' text exposition format (version 0.0.4): for each metric family a `# HELP` and
 * a `# TYPE` line, then `name{label="value",…} number` samples. Label values escape `\`, `"`
 * and newlines; HELP text escapes `\` and newlines.
 */
export interface Sample {
  labels: Record<string, string>
  value: number
}

export interface MetricFamily {
  name: string
  help: string
  type: 'gauge' | 'counter'
  samples: Sample[]
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export function renderExposition(families: MetricFamily[]): string {
  const out: string[] = []
  for (const f of families) {
    if (!f.samples.length) continue
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
      out.push(`${f.name}${labels.length ? `{${labels.join(',')}}` : ''} ${formatValue(s.value)}`)
    }
  }
  return out.length ? `${out.join('\n')}\n` : ''
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

/** Families by name, filled as samples come: keeps each family's samples together, as the format requires. */
export class FamilySet {
  private readonly families = new Map<string, MetricFamily>()

  constructor(private readonly help: Record<string, {help: string; type?: 'gauge' | 'counter'}>) {}

  add(name: string, labels: Record<string, string>, value: number | null | undefined): void {
    if (value === null || value === undefined || !Number.isFinite(value)) return
    let f = this.families.get(name)
    if (!f) {
      const h = this.help[name]
      if (!h) throw new Error(`metric ${name} has no HELP text`)
      f = {name, help: h.help, type: h.type ?? 'gauge', samples: []}
      this.families.set(name, f)
    }
    f.samples.push({labels, value})
  }

  list(): MetricFamily[] {
    return [...this.families.values()]
  }
}
