import type {WalRecord} from '../record.js'
import {identifyFrom, invalidationsText, mainData, SIZE_OF_INVAL_MESSAGE, type RmgrDesc, fromText} from './common.js'

export const XLOG_STANDBY_LOCK = 0x00
export const XLOG_RUNNING_XACTS = 0x10
export const XLOG_INVALIDATIONS = 0x20

const NAMES: Record<number, string> = {
  [XLOG_STANDBY_LOCK]: 'LOCK',
  [XLOG_RUNNING_XACTS]: 'RUNNING_XACTS',
  [XLOG_INVALIDATIONS]: 'INVALIDATIONS',
}

/** xl_running_xacts, parsed. */
export interface RunningXacts {
  nextXid: number
  latestCompletedXid: number
  oldestRunningXid: number
  xids: number[]
  subxids: number[]
  subxidOverflow: boolean
}

export function parseRunningXacts(rec: WalRecord): RunningXacts {
  const f = mainData(rec)
  // xcnt, subxcnt, subxid_overflow, nextXid, oldestRunningXid, latestCompletedXid, xids[]
  const room = Math.max(0, Math.floor((f.length - 24) / 4))
  const xcnt = Math.max(0, Math.min(f.i32(0), room))
  const subxcnt = Math.max(0, Math.min(f.i32(4), room - xcnt))
  const xids: number[] = []
  const subxids: number[] = []
  for (let i = 0; i < xcnt; i++) xids.push(f.u32(24 + 4 * i))
  for (let i = 0; i < subxcnt; i++) subxids.push(f.u32(24 + 4 * (xcnt + i)))
  return {nextXid: f.u32(12), oldestRunningXid: f.u32(16), latestCompletedXid: f.u32(20), xids, subxids, subxidOverflow: f.u8(8) !== 0}
}

function describe(rec: WalRecord): string {
  const f = mainData(rec)
  switch (rec.rmgrInfo) {
    case XLOG_STANDBY_LOCK: {
      // nlocks, then {xid, dbOid, relOid} each
      const n = Math.max(0, Math.min(f.i32(0), Math.floor((f.length - 4) / 12)))
      let s = ''
      for (let i = 0; i < n; i++) {
        const o = 4 + 12 * i
        s += `xid ${f.u32(o)} db ${f.u32(o + 4)} rel ${f.u32(o + 8)} `
      }
      return s
    }
    case XLOG_RUNNING_XACTS: {
      const r = parseRunningXacts(rec)
      let s = `nextXid ${r.nextXid} latestCompletedXid ${r.latestCompletedXid} oldestRunningXid ${r.oldestRunningXid}`
      if (r.xids.length > 0) s += `; ${r.xids.length} xacts: ${r.xids.join(' ')}`
      if (rec.version.runningXactsSubxids) {
        if (r.subxidOverflow) s += '; subxid overflowed'
        if (r.subxids.length > 0) s += `; ${r.subxids.length} subxacts: ${r.subxids.join(' ')}`
      } else if (r.subxidOverflow) {
        s += '; subxid ovf'
      }
      return s
    }
    case XLOG_INVALIDATIONS: {
      // dbId, tsId, relcacheInitFileInval, nmsgs, msgs[]
      const n = Math.max(0, Math.min(f.i32(12), Math.floor((f.length - 16) / SIZE_OF_INVAL_MESSAGE)))
      return invalidationsText(f, 16, n, f.u32(0), f.u32(4), f.u8(8) !== 0)
    }
    default:
      return ''
  }
}

export const standbyRmgr: RmgrDesc = {name: 'Standby', identify: identifyFrom(() => NAMES), write: fromText(describe)}
