import type {WalRecord} from '../record.js'
import {identifyFrom, lsnOf, mainData, timestamptzText, type RmgrDesc, fromText} from './common.js'

export const XLOG_CHECKPOINT_SHUTDOWN = 0x00
export const XLOG_CHECKPOINT_ONLINE = 0x10
export const XLOG_NOOP = 0x20
export const XLOG_NEXTOID = 0x30
export const XLOG_SWITCH = 0x40
export const XLOG_BACKUP_END = 0x50
export const XLOG_PARAMETER_CHANGE = 0x60
export const XLOG_RESTORE_POINT = 0x70
export const XLOG_FPW_CHANGE = 0x80
export const XLOG_END_OF_RECOVERY = 0x90
export const XLOG_FPI_FOR_HINT = 0xa0
export const XLOG_FPI = 0xb0
export const XLOG_OVERWRITE_CONTRECORD = 0xd0
export const XLOG_CHECKPOINT_REDO = 0xe0

const NAMES: Record<number, string> = {
  [XLOG_CHECKPOINT_SHUTDOWN]: 'CHECKPOINT_SHUTDOWN',
  [XLOG_CHECKPOINT_ONLINE]: 'CHECKPOINT_ONLINE',
  [XLOG_NOOP]: 'NOOP',
  [XLOG_NEXTOID]: 'NEXTOID',
  [XLOG_SWITCH]: 'SWITCH',
  [XLOG_BACKUP_END]: 'BACKUP_END',
  [XLOG_PARAMETER_CHANGE]: 'PARAMETER_CHANGE',
  [XLOG_RESTORE_POINT]: 'RESTORE_POINT',
  [XLOG_FPW_CHANGE]: 'FPW_CHANGE',
  [XLOG_END_OF_RECOVERY]: 'END_OF_RECOVERY',
  // Back-patched into 13 and 14 minor releases (same WAL magic).
  [XLOG_OVERWRITE_CONTRECORD]: 'OVERWRITE_CONTRECORD',
  [XLOG_FPI]: 'FPI',
  [XLOG_FPI_FOR_HINT]: 'FPI_FOR_HINT',
}
const NAMES_17 = {...NAMES, [XLOG_CHECKPOINT_REDO]: 'CHECKPOINT_REDO'}

/** wal_level values as stored in WAL. */
const WAL_LEVELS = ['minimal', 'replica', 'logical']

function walLevel(n: number): string {
  return WAL_LEVELS[n] ?? '?'
}

/**
 * The fields of a checkpoint record (struct CheckPoint; 17 put wal_level in what was padding,
 * so the offsets are the same in every supported major).
 */
export interface CheckpointInfo {
  redo: number
  timeline: number
  prevTimeline: number
  fullPageWrites: boolean
  walLevel: number | undefined
  nextXidEpoch: number
  nextXid: number
  nextOid: number
  nextMulti: number
  nextMultiOffset: number
  oldestXid: number
  oldestXidDb: number
  oldestMulti: number
  oldestMultiDb: number
  time: number
  oldestCommitTsXid: number
  newestCommitTsXid: number
  oldestActiveXid: number
}

export function checkpointInfo(rec: WalRecord): CheckpointInfo {
  const f = mainData(rec)
  return {
    redo: f.u64n(0),
    timeline: f.u32(8),
    prevTimeline: f.u32(12),
    fullPageWrites: f.u8(16) !== 0,
    walLevel: rec.version.checkpointWalLevel ? f.i32(20) : undefined,
    nextXidEpoch: f.u32(28),
    nextXid: f.u32(24),
    nextOid: f.u32(32),
    nextMulti: f.u32(36),
    nextMultiOffset: f.u32(40),
    oldestXid: f.u32(44),
    oldestXidDb: f.u32(48),
    oldestMulti: f.u32(52),
    oldestMultiDb: f.u32(56),
    time: f.i64n(64),
    oldestCommitTsXid: f.u32(72),
    newestCommitTsXid: f.u32(76),
    oldestActiveXid: f.u32(80),
  }
}

function describe(rec: WalRecord): string {
  const v = rec.version
  const info = rec.rmgrInfo
  const f = mainData(rec)
  switch (info) {
    case XLOG_CHECKPOINT_SHUTDOWN:
    case XLOG_CHECKPOINT_ONLINE: {
      const c = checkpointInfo(rec)
      return (
        `redo ${lsnOf(c.redo)}; tli ${c.timeline}; prev tli ${c.prevTimeline}; fpw ${c.fullPageWrites}; ` +
        (c.walLevel !== undefined ? `wal_level ${walLevel(c.walLevel)}; ` : '') +
        `xid ${c.nextXidEpoch}:${c.nextXid}; oid ${c.nextOid}; multi ${c.nextMulti}; offset ${c.nextMultiOffset}; ` +
        `oldest xid ${c.oldestXid} in DB ${c.oldestXidDb}; oldest multi ${c.oldestMulti} in DB ${c.oldestMultiDb}; ` +
        `oldest/newest commit timestamp xid: ${c.oldestCommitTsXid}/${c.newestCommitTsXid}; ` +
        `oldest running xid ${c.oldestActiveXid}; ${info === XLOG_CHECKPOINT_SHUTDOWN ? 'shutdown' : 'online'}`
      )
    }
    case XLOG_NEXTOID:
      return String(f.u32(0))
    case XLOG_RESTORE_POINT:
      // xl_restore_point: TimestampTz rp_time, then the name.
      return f.cstring(8, 64)
    case XLOG_BACKUP_END:
      return lsnOf(f.u64n(0))
    case XLOG_PARAMETER_CHANGE:
      // xl_parameter_change: six ints then two bools.
      return (
        `max_connections=${f.i32(0)} max_worker_processes=${f.i32(4)} max_wal_senders=${f.i32(8)} ` +
        `max_prepared_xacts=${f.i32(12)} max_locks_per_xact=${f.i32(16)} wal_level=${walLevel(f.i32(20))} ` +
        `wal_log_hints=${f.u8(24) ? 'on' : 'off'} track_commit_timestamp=${f.u8(25) ? 'on' : 'off'}`
      )
    case XLOG_FPW_CHANGE:
      return f.u8(0) ? 'true' : 'false'
    case XLOG_END_OF_RECOVERY: {
      // xl_end_of_recovery: TimestampTz end_time, this tli, prev tli, wal_level (17+ shown).
      const s = `tli ${f.u32(8)}; prev tli ${f.u32(12)}; time ${timestamptzText(f.i64n(0))}`
      return v.checkpointWalLevel ? `${s}; wal_level ${walLevel(f.i32(16))}` : s
    }
    case XLOG_OVERWRITE_CONTRECORD:
      return `lsn ${lsnOf(f.u64n(0))}; time ${timestamptzText(f.i64n(8))}`
    case XLOG_CHECKPOINT_REDO:
      return v.checkpointWalLevel ? `wal_level ${walLevel(f.i32(0))}` : ''
    default:
      return ''
  }
}

export const xlogRmgr: RmgrDesc = {
  name: 'XLOG',
  identify: identifyFrom((v) => (v.checkpointWalLevel ? NAMES_17 : NAMES)),
  write: fromText(describe),
}
