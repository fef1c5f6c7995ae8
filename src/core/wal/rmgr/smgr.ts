import type {WalRecord} from '../record.js'
import {identifyFrom, mainData, relPathAt, type RmgrDesc, fromText} from './common.js'

export const XLOG_SMGR_CREATE = 0x10
export const XLOG_SMGR_TRUNCATE = 0x20

const NAMES: Record<number, string> = {[XLOG_SMGR_CREATE]: 'CREATE', [XLOG_SMGR_TRUNCATE]: 'TRUNCATE'}

function describe(rec: WalRecord): string {
  const f = mainData(rec)
  if (rec.rmgrInfo === XLOG_SMGR_CREATE) {
    // xl_smgr_create: RelFileNode, ForkNumber
    return relPathAt(rec.version, f, 0, f.i32(12))
  }
  if (rec.rmgrInfo === XLOG_SMGR_TRUNCATE) {
    // xl_smgr_truncate: BlockNumber, RelFileNode, flags
    return `${relPathAt(rec.version, f, 4)} to ${f.u32(0)} blocks flags ${f.i32(16)}`
  }
  return ''
}

export const smgrRmgr: RmgrDesc = {name: 'Storage', identify: identifyFrom(() => NAMES), write: fromText(describe)}
