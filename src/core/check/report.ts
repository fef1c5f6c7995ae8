import type {CheckReport} from './run.js'
import {perfUnit} from './units.js'
import type {CheckResult, State} from './verdict.js'

/**
 * The Nagios/Icinga plugin output: `REPL STATE - what is wrong (or a summary) | perfdata`,
 * perfdata as `'label'=value[UOM];warn;crit;min;max` for every numeric result.
 */
export function nagiosLine(report: CheckReport, multipleTargets: boolean): string {
  const order: State[] = ['CRITICAL', 'UNKNOWN', 'WARNING']
  const bad = order.flatMap((s) => report.results.filter((r) => r.state === s))
  const where = (r: CheckResult) => (multipleTargets || r.check === 'connection' || r.check === 'privileges' ? `${r.target}: ` : '')
  let text: string
  if (bad.length) {
    text = bad.map((r) => `${where(r)}${r.message}`).join('; ')
  } else {
    const roles = report.servers.map((s) => `${s.role ?? 'server'} ${s.target}`).join(', ')
    text = `${roles ? `${roles}: ` : ''}${report.results.length} check${report.results.length === 1 ? '' : 's'} OK`
  }
  const perf = report.results.filter((r) => r.value !== null).map((r) => perfData(r, multipleTargets))
  return `REPL ${report.state} - ${text.replace(/\|/g, '/')}${perf.length ? ` | ${perf.join(' ')}` : ''}`
}

function perfData(r: CheckResult, withTarget: boolean): string {
  const parts = [...(withTarget ? [r.target] : []), r.check, ...(r.object ? [r.object.replace(/ /g, ':')] : [])]
  const label = parts.join(':').replace(/['=]/g, '_')
  const uom = r.unit === 'state' ? '' : perfUnit(r.unit)
  const num = (v: number | null) => (v === null ? '' : String(Math.round(v * 1000) / 1000))
  return `'${label}'=${num(r.value)}${uom};${num(r.warning)};${num(r.critical)};0`
}

/** --json: every result with its value, thresholds and state. */
export function checkJson(report: CheckReport): unknown {
  return {
    state: report.state,
    exitCode: report.exitCode,
    servers: report.servers,
    checks: report.results,
  }
}
