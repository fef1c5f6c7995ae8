import type {WalRecord} from '../record.js'
import {identifyFrom, mainData, type RmgrDesc, fromText} from './common.js'

// 15 split CREATE into two strategies and renumbered DROP.
const NAMES_13: Record<number, string> = {0x00: 'CREATE', 0x10: 'DROP'}
const NAMES_15: Record<number, string> = {0x00: 'CREATE_FILE_COPY', 0x10: 'CREATE_WAL_LOG', 0x20: 'DROP'}

function describe(rec: WalRecord): string {
  const f = mainData(rec)
  const info = rec.rmgrInfo
  const walLogStrategy = rec.version.dbaseWalLogStrategy
  if (info === 0x00) {
    // db_id, tablespace_id, src_db_id, src_tablespace_id
    return `copy dir ${f.u32(12)}/${f.u32(8)} to ${f.u32(4)}/${f.u32(0)}`
  }
  if (walLogStrategy && info === 0x10) return `create dir ${f.u32(4)}/${f.u32(0)}`
  if (info === (walLogStrategy ? 0x20 : 0x10)) {
    // db_id, ntablespaces, tablespace_ids[]
    const n = Math.max(0, Math.min(f.i32(4), Math.floor((f.length - 8) / 4)))
    let s = 'dir'
    for (let i = 0; i < n; i++) s += ` ${f.u32(8 + 4 * i)}/${f.u32(0)}`
    return s
  }
  return ''
}

export const dbaseRmgr: RmgrDesc = {
  name: 'Database',
  identify: identifyFrom((v) => (v.dbaseWalLogStrategy ? NAMES_15 : NAMES_13)),
  write: fromText(describe),
}
