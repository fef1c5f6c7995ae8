import type {WalRecord} from '../record.js'
import {identifyFrom, mainData, relTriple, type RmgrDesc, fromText} from './common.js'

export const XLOG_SEQ_LOG = 0x00

function describe(rec: WalRecord): string {
  return rec.rmgrInfo === XLOG_SEQ_LOG ? `rel ${relTriple(mainData(rec), 0)}` : ''
}

export const seqRmgr: RmgrDesc = {name: 'Sequence', identify: identifyFrom(() => ({[XLOG_SEQ_LOG]: 'LOG'})), write: fromText(describe)}
