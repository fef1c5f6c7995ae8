import {ReplError} from '../errors.js'

/**
 * Everything that differs between the server versions repl supports, in one table, so the
 * rest of the code asks "can the server do X" instead of comparing version numbers.
 */
export interface ServerCapabilities {
  major: number
  /** BASE_BACKUP (OPTION value, ...) with typed CopyData messages, server-side compression, TARGET. */
  baseBackupOptionList: boolean
  /** CREATE_REPLICATION_SLOT ... (RESERVE_WAL, SNAPSHOT ...) option list. */
  slotOptionList: boolean
  /** READ_REPLICATION_SLOT. */
  readReplicationSlot: boolean
  /** INCREMENTAL backups (UPLOAD_MANIFEST). */
  incrementalBackup: boolean
  /** backup_manifest version (2 adds System-Identifier). */
  manifestVersion: 1 | 2
  /** Page magic of WAL this version writes. */
  xlogPageMagic: number
  /** FAILOVER option for logical slots. */
  slotFailover: boolean
  /** pg_stat_replication_slots / wal_status & safe_wal_size in pg_replication_slots. */
  slotWalStatus: boolean
  /** pg_stat_checkpointer (17+) vs pg_stat_bgwriter. */
  statCheckpointer: boolean
  /** pg_stat_database_conflicts.confl_active_logicalslot (16+). */
  conflictActiveLogicalSlot: boolean
  /** pg_replication_slots.invalidation_reason / inactive_since (17+). */
  slotInvalidationReason: boolean
}

const MIN_MAJOR = 13
const MAX_MAJOR = 18

const MAGIC: Record<number, number> = {13: 0xd106, 14: 0xd10d, 15: 0xd110, 16: 0xd113, 17: 0xd116, 18: 0xd118}

export function capabilitiesFor(major: number): ServerCapabilities {
  if (major < MIN_MAJOR || major > MAX_MAJOR) {
    throw new ReplError('UNSUPPORTED', `PostgreSQL ${major} is not supported: repl works with PostgreSQL ${MIN_MAJOR} to ${MAX_MAJOR}`)
  }
  return {
    major,
    baseBackupOptionList: major >= 15,
    slotOptionList: major >= 15,
    readReplicationSlot: major >= 15,
    incrementalBackup: major >= 17,
    manifestVersion: major >= 17 ? 2 : 1,
    xlogPageMagic: MAGIC[major]!,
    slotFailover: major >= 17,
    slotWalStatus: true,
    statCheckpointer: major >= 17,
    conflictActiveLogicalSlot: major >= 16,
    slotInvalidationReason: major >= 17,
  }
}

export function isSupportedMajor(major: number): boolean {
  return major >= MIN_MAJOR && major <= MAX_MAJOR
}
