import {ReplError} from '../errors.js'
import {parseQuantity, type Unit} from './units.js'

/**
 * The checks `repl check` knows, as data: what each measures, on which kind of target, its
 * unit and default thresholds. Evaluation (evaluate.ts) turns gathered facts into verdicts
 * against these.
 */
export type Scope = 'primary' | 'standby' | 'server' | 'wal-dir' | 'backup-dir'

export interface CheckDefinition {
  name: string
  scope: Scope
  /** 'state' checks judge a condition (wal_status, paused…), not a number against thresholds. */
  unit: Unit | 'state'
  /** 'below': smaller values are worse (safe_wal_size). */
  direction: 'above' | 'below'
  warning: string | null
  critical: string | null
  description: string
}

export const CHECKS: CheckDefinition[] = [
  {name: 'lag_bytes', scope: 'primary', unit: 'bytes', direction: 'above', warning: '64MB', critical: '1GB', description: 'WAL each standby has not yet written, flushed and replayed (bytes behind this server\'s position), per WAL sender'},
  {name: 'lag_time', scope: 'primary', unit: 'seconds', direction: 'above', warning: '30s', critical: '5min', description: 'write_lag, flush_lag and replay_lag of each WAL sender, as the server measures them'},
  {name: 'sync_standbys', scope: 'primary', unit: 'count', direction: 'above', warning: '0', critical: null, description: 'standbys named in synchronous_standby_names (FIRST n / ANY n) that are not streaming as synchronous; CRITICAL whenever fewer than n are, as commits then wait'},
  {name: 'slot_retention', scope: 'server', unit: 'bytes', direction: 'above', warning: '1GB', critical: '4GB', description: 'WAL each replication slot holds back (from its restart_lsn to the current position)'},
  {name: 'slot_wal_status', scope: 'server', unit: 'state', direction: 'above', warning: null, critical: null, description: 'wal_status of each slot: reserved and extended are OK, unreserved WARNING, lost CRITICAL'},
  {name: 'slot_safe_wal_size', scope: 'server', unit: 'bytes', direction: 'below', warning: '20%', critical: '5%', description: 'safe_wal_size of each slot (WAL that can still be written before the slot is lost), against max_slot_wal_keep_size; thresholds in bytes or % of it; nothing to judge when it is -1'},
  {name: 'slot_inactive', scope: 'server', unit: 'count', direction: 'above', warning: '0', critical: null, description: 'number of (non-temporary) slots no client is using'},
  {name: 'slot_catalog_xmin_age', scope: 'server', unit: 'count', direction: 'above', warning: '10000000', critical: '100000000', description: 'age in transactions of the catalog_xmin each logical slot holds back'},
  {name: 'receiver', scope: 'standby', unit: 'state', direction: 'above', warning: null, critical: null, description: 'the WAL receiver is running and streaming (CRITICAL otherwise)'},
  {name: 'replay_paused', scope: 'standby', unit: 'state', direction: 'above', warning: null, critical: null, description: 'WARNING while WAL replay is paused (pg_wal_replay_pause())'},
  {name: 'replay_lag_bytes', scope: 'standby', unit: 'bytes', direction: 'above', warning: '64MB', critical: '1GB', description: 'WAL received but not yet replayed'},
  {name: 'replay_lag_time', scope: 'standby', unit: 'seconds', direction: 'above', warning: '30s', critical: '5min', description: 'age of the last replayed transaction while received WAL waits to be replayed (0 when all is replayed)'},
  {name: 'conflicts', scope: 'standby', unit: 'count', direction: 'above', warning: '0', critical: null, description: 'recovery conflicts (standby queries cancelled, pg_stat_database_conflicts) since the previous repl check of this server, remembered in --state-dir; the first check sets the baseline'},
  {name: 'archive_lag_bytes', scope: 'wal-dir', unit: 'bytes', direction: 'above', warning: '64MB', critical: '256MB', description: 'WAL the --wal-dir archive lacks: the server\'s position minus the end of the newest complete segment (or the start of the .partial one)'},
  {name: 'archive_age', scope: 'wal-dir', unit: 'seconds', direction: 'above', warning: '5min', critical: '1h', description: 'time since the newest segment or .partial file in --wal-dir was written, 0 while the server\'s position is still inside that segment'},
  {name: 'backup_age', scope: 'backup-dir', unit: 'seconds', direction: 'above', warning: '1d', critical: '7d', description: 'age of the newest backup_manifest in --backup-dir (the directory itself or a directory in it)'},
]

export const CHECK_NAMES = CHECKS.map((c) => c.name)

export function checkDefinition(name: string): CheckDefinition {
  const def = CHECKS.find((c) => c.name === name)
  if (!def) throw new ReplError('INVALID_ARGUMENT', `Unknown check "${name}"`, {hint: `Checks: ${CHECK_NAMES.join(', ')} (repl check --list).`})
  return def
}

/** A threshold: an absolute value in the check's unit, or a percentage of a server setting. */
export type Threshold = {value: number} | {percent: number}

export interface ThresholdSet {
  warning: Threshold | null
  critical: Threshold | null
}

export function parseThreshold(def: CheckDefinition, text: string, level: 'warning' | 'critical'): Threshold {
  if (def.unit === 'state') throw new ReplError('INVALID_ARGUMENT', `Check "${def.name}" judges a state and takes no ${level} threshold`)
  const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text)
  if (pct) {
    if (def.name !== 'slot_safe_wal_size') throw new ReplError('INVALID_ARGUMENT', `Invalid ${level} threshold "${text}" for ${def.name}: percentages apply to slot_safe_wal_size only`)
    return {percent: Number(pct[1])}
  }
  return {value: parseQuantity(text, def.unit, `${level} threshold for ${def.name}`)}
}

/**
 * Thresholds for every check from the defaults and --warning/--critical values, each
 * `NAME=VALUE`, or a bare VALUE when exactly one check is selected.
 */
export function resolveThresholds(selected: CheckDefinition[], warnings: string[], criticals: string[]): Map<string, ThresholdSet> {
  const out = new Map<string, ThresholdSet>()
  for (const def of CHECKS) {
    out.set(def.name, {
      warning: def.warning === null ? null : parseThreshold(def, def.warning, 'warning'),
      critical: def.critical === null ? null : parseThreshold(def, def.critical, 'critical'),
    })
  }
  const apply = (items: string[], level: 'warning' | 'critical') => {
    for (const item of items) {
      const m = /^([a-z_]+)=(.*)$/.exec(item)
      let def: CheckDefinition
      let text: string
      if (m) {
        def = checkDefinition(m[1]!)
        text = m[2]!
      } else if (selected.length === 1) {
        def = selected[0]!
        text = item
      } else {
        throw new ReplError('INVALID_ARGUMENT', `Invalid --${level} "${item}": expected NAME=VALUE (e.g. lag_bytes=64MB)`, {hint: 'A bare value is allowed with exactly one --check.'})
      }
      const set = out.get(def.name)!
      // "none" switches a level off.
      set[level] = text.trim().toLowerCase() === 'none' ? null : parseThreshold(def, text, level)
    }
  }
  apply(warnings, 'warning')
  apply(criticals, 'critical')
  return out
}
