import type {WalRecord} from '../record.js'
import {identifyFrom, mainData, timestamptzText, type Fields, type RmgrDesc, fromText} from './common.js'

/** CLOG, CommitTs and MultiXact: the SLRU-backed rmgrs. Page numbers are int64 from 17. */

function pageNumber(rec: WalRecord, f: Fields, o: number): number {
  return rec.version.slruPage64 ? f.i64n(o) : f.i32(o)
}

function pageWidth(rec: WalRecord): number {
  return rec.version.slruPage64 ? 8 : 4
}

export const clogRmgr: RmgrDesc = {
  name: 'CLOG',
  identify: identifyFrom(() => ({0x00: 'ZEROPAGE', 0x10: 'TRUNCATE'})),
  write: fromText((rec) => {
    const f = mainData(rec)
    if (rec.rmgrInfo === 0x00) return `page ${pageNumber(rec, f, 0)}`
    // xl_clog_truncate: pageno, oldestXact, oldestXactDb
    if (rec.rmgrInfo === 0x10) return `page ${pageNumber(rec, f, 0)}; oldestXact ${f.u32(pageWidth(rec))}`
    return ''
  }),
}

const COMMIT_TS_NAMES: Record<number, string> = {0x00: 'ZEROPAGE', 0x10: 'TRUNCATE'}
const COMMIT_TS_NAMES_13: Record<number, string> = {...COMMIT_TS_NAMES, 0x20: 'SETTS'}

export const commitTsRmgr: RmgrDesc = {
  name: 'CommitTs',
  // commit_ts_identify() switches on the whole info byte.
  identify: identifyFrom((v) => (v.commitTsSetts ? COMMIT_TS_NAMES_13 : COMMIT_TS_NAMES), {mask: 0xff}),
  write: fromText((rec) => {
    const f = mainData(rec)
    if (rec.rmgrInfo === 0x00) return String(pageNumber(rec, f, 0))
    // xl_commit_ts_truncate: pageno, oldestXid
    if (rec.rmgrInfo === 0x10) return `pageno ${pageNumber(rec, f, 0)}, oldestXid ${f.u32(pageWidth(rec))}`
    if (rec.rmgrInfo === 0x20 && rec.version.commitTsSetts) {
      // xl_commit_ts_set: timestamp, nodeid, mainxid, then subxids
      let s = `set ${timestamptzText(f.i64n(0))}/${f.u16(8)} for: ${f.u32(12)}`
      for (let o = 16; o + 4 <= f.length; o += 4) s += `, ${f.u32(o)}`
      return s
    }
    return ''
  }),
}

const MEMBER_STATUS = ['(keysh) ', '(sh) ', '(fornokeyupd) ', '(forupd) ', '(nokeyupd) ', '(upd) ']

export const multixactRmgr: RmgrDesc = {
  name: 'MultiXact',
  identify: identifyFrom(() => ({0x00: 'ZERO_OFF_PAGE', 0x10: 'ZERO_MEM_PAGE', 0x20: 'CREATE_ID', 0x30: 'TRUNCATE_ID'})),
  write: fromText((rec) => {
    const f = mainData(rec)
    switch (rec.rmgrInfo) {
      case 0x00:
      case 0x10:
        return String(pageNumber(rec, f, 0))
      case 0x20: {
        // xl_multixact_create: mid, moff, nmembers, members[] of {xid, status}
        const n = Math.max(0, Math.min(f.i32(8), Math.floor((f.length - 12) / 8)))
        let s = `${f.u32(0)} offset ${f.u32(4)} nmembers ${f.i32(8)}: `
        for (let i = 0; i < n; i++) s += `${f.u32(12 + 8 * i)} ${MEMBER_STATUS[f.i32(16 + 8 * i)] ?? '(unk) '}`
        return s
      }
      case 0x30:
        // xl_multixact_truncate: oldestMultiDB, startTruncOff, endTruncOff, startTruncMemb, endTruncMemb
        return `offsets [${f.u32(4)}, ${f.u32(8)}), members [${f.u32(12)}, ${f.u32(16)})`
      default:
        return ''
    }
  }),
}
