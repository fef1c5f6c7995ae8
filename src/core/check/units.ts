import {ReplError} from '../errors.js'

/** What a check's value measures, which decides how its thresholds are written and shown. */
export type Unit = 'bytes' | 'seconds' | 'count'

const BYTE_UNITS: Record<string, number> = {
  b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3, tb: 1024 ** 4, t: 1024 ** 4,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
}
const TIME_UNITS: Record<string, number> = {
  ms: 0.001, s: 1, sec: 1, secs: 1, second: 1, seconds: 1, m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400,
}

/**
 * A threshold as typed: `64MB`, `2GB` (1024-based, as PostgreSQL's memory units), `30s`,
 * `5min`, `1h`, a plain count; a bare number is bytes, seconds or a count as the check's unit
 * says. Sizes may be negative only for counts of nothing: they are refused.
 */
export function parseQuantity(text: string, unit: Unit, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  if (!m) throw new ReplError('INVALID_ARGUMENT', `Invalid ${what} "${text}": expected a number with an optional unit, e.g. ${example(unit)}`)
  const n = Number(m[1])
  const suffix = m[2]!.toLowerCase()
  if (suffix === '') return n
  const table = unit === 'bytes' ? BYTE_UNITS : unit === 'seconds' ? TIME_UNITS : undefined
  const factor = table?.[suffix]
  if (factor === undefined) {
    throw new ReplError('INVALID_ARGUMENT', `Invalid ${what} "${text}": unknown unit "${m[2]}" for ${unit === 'count' ? 'a count' : unit}`, {hint: `Write it as ${example(unit)}.`})
  }
  return n * factor
}

function example(unit: Unit): string {
  return unit === 'bytes' ? '64MB or 2GB' : unit === 'seconds' ? '30s, 5min or 1h' : 'a whole number such as 3'
}

/** A value as people read it: `64MB`, `1.5GB`, `30s`, `5min`, `12`. */
export function formatQuantity(value: number, unit: Unit): string {
  if (unit === 'count') return String(value)
  if (unit === 'bytes') {
    const units = ['B', 'kB', 'MB', 'GB', 'TB']
    let n = value
    let i = 0
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024
      i++
    }
    return `${trim(n)}${units[i]}`
  }
  if (value < 1) return `${trim(value * 1000)}ms`
  if (value < 120) return `${trim(value)}s`
  if (value < 7200) return `${trim(value / 60)}min`
  if (value < 86_400) return `${trim(value / 3600)}h`
  return `${trim(value / 86400)}d`
}

function trim(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 100 ? 0 : 1).replace(/\.0$/, '')
}

/** Nagios' units of measure in performance data. */
export function perfUnit(unit: Unit): string {
  return unit === 'bytes' ? 'B' : unit === 'seconds' ? 's' : ''
}
