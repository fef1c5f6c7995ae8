import type {CheckDefinition, Threshold, ThresholdSet} from './definitions.js'
import type {Unit} from './units.js'

export type State = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN'

/** Nagios plugin exit codes. */
export const STATE_EXIT: Record<State, number> = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}

/** Worse first when several results are combined: an unreachable server outranks a warning. */
const RANK: Record<State, number> = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}

export function worst(states: State[]): State {
  return states.reduce<State>((a, b) => (RANK[b] > RANK[a] ? b : a), 'OK')
}

/** One verdict: a check on one object (a standby, a slot…) of one server. */
export interface CheckResult {
  check: string
  /** host:port of the server, or the directory for wal-dir/backup-dir checks. */
  target: string
  /** What on the target: a standby's application_name (and write/flush/replay), a slot name. */
  object: string | null
  state: State
  /** A number in `unit`; null for state checks and unknown values. */
  value: number | null
  unit: Unit | 'state'
  /** Thresholds resolved to the unit (percentages resolved against the server's setting). */
  warning: number | null
  critical: number | null
  direction: 'above' | 'below'
  message: string
}

/** Resolve a threshold to a number in the check's unit; percentages take `base`. */
export function thresholdValue(t: Threshold | null, base?: number): number | null {
  if (!t) return null
  if ('value' in t) return t.value
  return base === undefined || base < 0 ? null : (base * t.percent) / 100
}

/** The state of a number against the check's thresholds. */
export function judge(value: number | null, def: CheckDefinition, set: ThresholdSet, base?: number): {state: State; warning: number | null; critical: number | null} {
  const warning = thresholdValue(set.warning, base)
  const critical = thresholdValue(set.critical, base)
  if (value === null) return {state: 'OK', warning, critical}
  const crosses = (limit: number | null) => limit !== null && (def.direction === 'above' ? value > limit : value < limit)
  return {state: crosses(critical) ? 'CRITICAL' : crosses(warning) ? 'WARNING' : 'OK', warning, critical}
}
