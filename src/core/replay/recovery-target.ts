import {ReplError} from '../errors.js'
import {formatLsn, parseLsn, type Lsn} from '../wal/lsn.js'
import {RECOVERY_TARGET_SETTINGS} from '../server/recovery-settings.js'
import {formatUtc, parseTargetTime} from './target-time.js'

/**
 * Where recovery should stop, what the server does there, and how that reads as PostgreSQL's
 * recovery_target_* settings (PostgreSQL 12+: GUCs, one target at a time).
 */
export type RecoveryTarget =
  | {type: 'lsn'; lsn: Lsn}
  | {type: 'time'; usec: number; setting: string}
  | {type: 'xid'; xid: number; setting: string}
  | {type: 'name'; name: string}
  | {type: 'immediate'}
  /** No target: replay all WAL there is. */
  | {type: 'end'}

export type TargetAction = 'pause' | 'promote' | 'shutdown'

export type TargetTimeline = 'latest' | 'current' | number

export interface RecoveryGoal {
  target: RecoveryTarget
  /** recovery_target_inclusive: stop after (true) or before (false) the target record; lsn, time and xid only. */
  inclusive: boolean
  timeline: TargetTimeline
  action: TargetAction
}

export interface TargetInput {
  lsn?: string
  time?: string
  xid?: string
  name?: string
  immediate?: boolean
}

/** The longest restore point name the server keeps (MAXFNAMELEN - 1). */
const MAX_RESTORE_POINT_NAME = 63

/** Read the one target the flags give (none: all WAL). `serverZone` reads times without a zone. */
export function parseRecoveryTarget(input: TargetInput, serverZone: string): RecoveryTarget {
  const given = (['lsn', 'time', 'xid', 'name', 'immediate'] as const).filter((k) => input[k] !== undefined && input[k] !== false)
  if (given.length > 1) throw new ReplError('INVALID_ARGUMENT', `Only one recovery target can be given (got ${given.map((g) => (g === 'immediate' ? '--target immediate' : `--target-${g}`)).join(', ')})`)
  if (input.lsn !== undefined) return {type: 'lsn', lsn: parseLsn(input.lsn)}
  if (input.time !== undefined) return {type: 'time', ...parseTargetTime(input.time, serverZone)}
  if (input.xid !== undefined) return {type: 'xid', ...parseXid(input.xid)}
  if (input.name !== undefined) {
    if (input.name === '' || Buffer.byteLength(input.name) > MAX_RESTORE_POINT_NAME) {
      throw new ReplError('INVALID_ARGUMENT', `Invalid --target-name "${input.name}": a restore point name has 1 to ${MAX_RESTORE_POINT_NAME} bytes`)
    }
    return {type: 'name', name: input.name}
  }
  if (input.immediate) return {type: 'immediate'}
  return {type: 'end'}
}

/**
 * A transaction ID as txid_current() (32 bits) or pg_current_xact_id() (epoch << 32 | xid)
 * prints it; the server compares the low 32 bits, as WAL records carry them.
 */
function parseXid(text: string): {xid: number; setting: string} {
  if (!/^\d{1,20}$/.test(text.trim())) throw new ReplError('INVALID_ARGUMENT', `Invalid --target-xid "${text}": expected a transaction ID such as 1234`)
  const full = BigInt(text.trim())
  const xid = Number(full & 0xffffffffn)
  if (full >= 1n << 64n || xid < 3) throw new ReplError('INVALID_ARGUMENT', `Invalid --target-xid "${text}": not a normal transaction ID`)
  return {xid, setting: full.toString()}
}

export function parseTargetTimeline(text: string): TargetTimeline {
  const t = text.trim().toLowerCase()
  if (t === 'latest' || t === 'current') return t
  if (/^\d+$/.test(t) && Number(t) >= 1 && Number(t) <= 0xffffffff) return Number(t)
  throw new ReplError('INVALID_ARGUMENT', `Invalid --target-timeline "${text}": expected latest, current or a timeline ID`)
}

/** The postgresql.auto.conf settings for `goal` (null removes a setting). */
export function recoverySettings(goal: RecoveryGoal, restoreCommand: string): Record<string, string | null> {
  const settings: Record<string, string | null> = Object.fromEntries(RECOVERY_TARGET_SETTINGS.map((name) => [name, null]))
  const t = goal.target
  if (t.type === 'lsn') settings.recovery_target_lsn = formatLsn(t.lsn)
  else if (t.type === 'time') settings.recovery_target_time = t.setting
  else if (t.type === 'xid') settings.recovery_target_xid = t.setting
  else if (t.type === 'name') settings.recovery_target_name = t.name
  else if (t.type === 'immediate') settings.recovery_target = 'immediate'
  const hasTarget = t.type !== 'end'
  settings.recovery_target_inclusive = hasTarget && ['lsn', 'time', 'xid'].includes(t.type) ? (goal.inclusive ? 'on' : 'off') : null
  settings.recovery_target_action = hasTarget ? goal.action : null
  settings.recovery_target_timeline = String(goal.timeline)
  settings.restore_command = restoreCommand
  return settings
}

/** "transaction 1234", "LSN 0/3000000", … for messages. */
export function describeTarget(t: RecoveryTarget): string {
  switch (t.type) {
    case 'lsn':
      return `LSN ${formatLsn(t.lsn)}`
    case 'time':
      return `time ${formatUtc(t.usec)}`
    case 'xid':
      return `transaction ${t.xid}`
    case 'name':
      return `restore point "${t.name}"`
    case 'immediate':
      return 'the end of the backup (consistency)'
    case 'end':
      return 'the end of the archived WAL'
  }
}

/** The target as --json shows it. */
export function targetJson(t: RecoveryTarget): Record<string, unknown> {
  switch (t.type) {
    case 'lsn':
      return {type: 'lsn', value: formatLsn(t.lsn)}
    case 'time':
      return {type: 'time', value: t.setting}
    case 'xid':
      return {type: 'xid', value: t.setting}
    case 'name':
      return {type: 'name', value: t.name}
    default:
      return {type: t.type}
  }
}
