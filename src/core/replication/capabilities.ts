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
  /** FAILOVER option for logical slots (and pg_replication_slots.failover/synced). */
  slotFailover: boolean
  /** pg_replication_slots.two_phase (14+). */
  slotTwoPhaseColumn: boolean
  /** pg_stat_database_conflicts.confl_active_logicalslot (16+). */
  conflictActiveLogicalSlot: boolean
  /** pg_replication_slots.invalidation_reason / inactive_since (17+). */
  slotInvalidationReason: boolean
}

const MIN_MAJOR = 13
const MAX_MAJOR = 18

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
    slotFailover: major >= 17,
    slotTwoPhaseColumn: major >= 14,
    conflictActiveLogicalSlot: major >= 16,
    slotInvalidationReason: major >= 17,
  }
}
