import type {WalVersion} from '../page.js'
import type {WalRecord} from '../record.js'
import {btreeRmgr} from './btree.js'
import {StringWriter, type RmgrDesc} from './common.js'
import {dbaseRmgr} from './dbase.js'
import {heap2Rmgr, heapRmgr} from './heap.js'
import {brinRmgr, ginRmgr, gistRmgr, hashRmgr, spgistRmgr} from './index-am.js'
import {genericRmgr, logicalMessageRmgr, relmapRmgr, replOriginRmgr, tblspcRmgr} from './misc.js'
import {seqRmgr} from './seq.js'
import {clogRmgr, commitTsRmgr, multixactRmgr} from './slru.js'
import {smgrRmgr} from './smgr.js'
import {standbyRmgr} from './standby.js'
import {xactRmgr} from './xact.js'
import {xlogRmgr} from './xlog.js'

export type {DescWriter, RmgrDesc} from './common.js'

/**
 * Built-in resource managers by id (rmgrlist.h; the same 22 in every major 13-18). Ids
 * 128-255 are extensions' custom rmgrs (15+), which pg_waldump calls "custom###".
 */
export const BUILTIN_RMGRS: readonly RmgrDesc[] = [
  xlogRmgr,
  xactRmgr,
  smgrRmgr,
  clogRmgr,
  dbaseRmgr,
  tblspcRmgr,
  multixactRmgr,
  relmapRmgr,
  standbyRmgr,
  heap2Rmgr,
  heapRmgr,
  btreeRmgr,
  hashRmgr,
  ginRmgr,
  gistRmgr,
  seqRmgr,
  spgistRmgr,
  brinRmgr,
  commitTsRmgr,
  replOriginRmgr,
  genericRmgr,
  logicalMessageRmgr,
]

export const RM_MAX_BUILTIN_ID = BUILTIN_RMGRS.length - 1
export const RM_MIN_CUSTOM_ID = 128
export const RM_MAX_ID = 255

export const RM_XLOG_ID = 0
export const RM_XACT_ID = 1

const customCache = new Map<number, RmgrDesc>()

function customRmgr(id: number): RmgrDesc {
  let r = customCache.get(id)
  if (!r) {
    r = {name: `custom${String(id).padStart(3, '0')}`, identify: () => undefined, write: () => {}}
    customCache.set(id, r)
  }
  return r
}

export function isValidRmgrId(id: number, v: WalVersion): boolean {
  return id <= RM_MAX_BUILTIN_ID || (v.customRmgrs && id >= RM_MIN_CUSTOM_ID && id <= RM_MAX_ID)
}

export function rmgrById(id: number): RmgrDesc {
  return BUILTIN_RMGRS[id] ?? customRmgr(id)
}

/** Find a built-in rmgr by name (case-insensitive), or a "custom###" id; undefined if none. */
export function rmgrIdByName(name: string): number | undefined {
  const lower = name.toLowerCase()
  const i = BUILTIN_RMGRS.findIndex((r) => r.name.toLowerCase() === lower)
  if (i >= 0) return i
  const m = /^custom(\d{3})$/i.exec(name)
  if (m) {
    const id = Number(m[1])
    if (id >= RM_MIN_CUSTOM_ID && id <= RM_MAX_ID) return id
  }
  return undefined
}

/** The details pg_waldump shows after the record type, as a string. */
export function describeRecord(rec: WalRecord): string {
  const w = new StringWriter()
  rmgrById(rec.rmid).write(rec, w)
  return w.value
}

/** The record-type name pg_waldump shows, e.g. "INSERT+INIT", or "UNKNOWN (x)". */
export function recordTypeName(rec: WalRecord): string {
  return rmgrById(rec.rmid).identify(rec.info, rec.version) ?? `UNKNOWN (${(rec.info & 0xf0).toString(16)})`
}
