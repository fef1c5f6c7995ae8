import type {WalVersion} from '../page.js'
import type {WalRecord} from '../record.js'
import {blockData, bracketList, flagList, identifyFrom, invalidationsText, mainData, offsets, relTriple, SIZE_OF_INVAL_MESSAGE, tf, type Fields, type RmgrDesc, type DescWriter} from './common.js'

export const XLOG_HEAP_INSERT = 0x00
export const XLOG_HEAP_DELETE = 0x10
export const XLOG_HEAP_UPDATE = 0x20
export const XLOG_HEAP_TRUNCATE = 0x30
export const XLOG_HEAP_HOT_UPDATE = 0x40
export const XLOG_HEAP_CONFIRM = 0x50
export const XLOG_HEAP_LOCK = 0x60
export const XLOG_HEAP_INPLACE = 0x70
export const XLOG_HEAP_OPMASK = 0x70
export const XLOG_HEAP_INIT_PAGE = 0x80

// 0x00 is XLOG_HEAP2_REWRITE (described by its table entry only)
export const XLOG_HEAP2_VISIBLE = 0x40
export const XLOG_HEAP2_MULTI_INSERT = 0x50
export const XLOG_HEAP2_LOCK_UPDATED = 0x60
export const XLOG_HEAP2_NEW_CID = 0x70
// 0x10-0x30 changed meaning: CLEAN/FREEZE_PAGE/CLEANUP_INFO (13), PRUNE/VACUUM/FREEZE_PAGE
// (14-16), PRUNE_ON_ACCESS/PRUNE_VACUUM_SCAN/PRUNE_VACUUM_CLEANUP (17+).

const HEAP_NAMES: Record<number, string> = {
  0x00: 'INSERT',
  0x80: 'INSERT+INIT',
  0x10: 'DELETE',
  0x20: 'UPDATE',
  0xa0: 'UPDATE+INIT',
  0x40: 'HOT_UPDATE',
  0xc0: 'HOT_UPDATE+INIT',
  0x30: 'TRUNCATE',
  0x50: 'HEAP_CONFIRM',
  0x60: 'LOCK',
  0x70: 'INPLACE',
}

const HEAP2_COMMON: Record<number, string> = {
  0x40: 'VISIBLE',
  0x50: 'MULTI_INSERT',
  0xd0: 'MULTI_INSERT+INIT',
  0x60: 'LOCK_UPDATED',
  0x70: 'NEW_CID',
  0x00: 'REWRITE',
}
const HEAP2_NAMES = {
  clean: {...HEAP2_COMMON, 0x10: 'CLEAN', 0x20: 'FREEZE_PAGE', 0x30: 'CLEANUP_INFO'},
  'prune-vacuum': {...HEAP2_COMMON, 0x10: 'PRUNE', 0x20: 'VACUUM', 0x30: 'FREEZE_PAGE'},
  'prune-freeze': {...HEAP2_COMMON, 0x10: 'PRUNE_ON_ACCESS', 0x20: 'PRUNE_VACUUM_SCAN', 0x30: 'PRUNE_VACUUM_CLEANUP'},
} as const

const INFOBITS: ReadonlyArray<readonly [number, string]> = [
  [0x01, 'IS_MULTI'],
  [0x02, 'LOCK_ONLY'],
  [0x04, 'EXCL_LOCK'],
  [0x08, 'KEYSHR_LOCK'],
  [0x10, 'KEYS_UPDATED'],
]

/** Infomask bits as 13-15 print them: names each followed by a space. */
function infobitsPlain(out: DescWriter, bits: number): void {
  for (const [bit, name] of INFOBITS) if (bits & bit) out.ascii(name).ascii(' ')
}

function infobitsLabelled(key: string, bits: number): string {
  return `${key}: ${flagList(bits, INFOBITS)}`
}

/** "xmax: X, off: O, infobits: [..], flags: 0xFF" (16+) of delete, lock and lock-updated. */
function xmaxOffLabelled(out: DescWriter, f: Fields): void {
  out.ascii('xmax: ').dec(f.u32(0)).ascii(', off: ').dec(f.u16(4)).ascii(', ').ascii(infobitsLabelled('infobits', f.u8(6))).ascii(', flags: 0x').hex(f.u8(7), 2)
}

/** "off O: xid X: flags 0xFF BITS " (13-15) of lock and lock-updated records. */
function offXmaxPlain(out: DescWriter, f: Fields, label: string): void {
  out.ascii('off ').dec(f.u16(4)).ascii(`: ${label} `).dec(f.u32(0)).ascii(': flags 0x').hex(f.u8(7), 2).ascii(' ')
  infobitsPlain(out, f.u8(6))
}

function writeHeap(rec: WalRecord, out: DescWriter): void {
  const v = rec.version
  const f = mainData(rec)
  const labelled = v.labelledDescs
  switch (rec.info & XLOG_HEAP_OPMASK) {
    case XLOG_HEAP_INSERT:
      // xl_heap_insert: offnum, flags
      out.ascii(labelled ? 'off: ' : 'off ').dec(f.u16(0)).ascii(labelled ? ', flags: 0x' : ' flags 0x').hex(f.u8(2), 2)
      return
    case XLOG_HEAP_DELETE:
      // xl_heap_delete: xmax, offnum, infobits_set, flags
      if (labelled) return xmaxOffLabelled(out, f)
      out.ascii('off ').dec(f.u16(4)).ascii(' flags 0x').hex(f.u8(7), 2).ascii(' ')
      infobitsPlain(out, f.u8(6))
      return
    case XLOG_HEAP_UPDATE:
    case XLOG_HEAP_HOT_UPDATE:
      // xl_heap_update: old_xmax, old_offnum, old_infobits_set, flags, new_xmax, new_offnum
      if (labelled) {
        out.ascii('old_xmax: ').dec(f.u32(0)).ascii(', old_off: ').dec(f.u16(4)).ascii(', ').ascii(infobitsLabelled('old_infobits', f.u8(6)))
        out.ascii(', flags: 0x').hex(f.u8(7), 2).ascii(', new_xmax: ').dec(f.u32(8)).ascii(', new_off: ').dec(f.u16(12))
        return
      }
      out.ascii('off ').dec(f.u16(4)).ascii(' xmax ').dec(f.u32(0)).ascii(' flags 0x').hex(f.u8(7), 2).ascii(' ')
      infobitsPlain(out, f.u8(6))
      out.ascii('; new off ').dec(f.u16(12)).ascii(' xmax ').dec(f.u32(8))
      return
    case XLOG_HEAP_TRUNCATE: {
      // xl_heap_truncate: dbId, nrelids, flags, relids[] (at 12)
      const flags = f.u8(8)
      const n = Math.max(0, Math.min(f.u32(4), Math.floor((f.length - 12) / 4)))
      const relids: number[] = []
      for (let i = 0; i < n; i++) relids.push(f.u32(12 + 4 * i))
      if (labelled) {
        out.ascii(`flags: ${flagList(flags, [[1, 'CASCADE'], [2, 'RESTART_SEQS']])}, nrelids: ${f.u32(4)}, relids:${bracketList(relids)}`)
        return
      }
      out.ascii(`${flags & 1 ? 'cascade ' : ''}${flags & 2 ? 'restart_seqs ' : ''}nrelids ${f.u32(4)} relids${relids.map((r) => ` ${r}`).join('')}`)
      return
    }
    case XLOG_HEAP_CONFIRM:
      out.ascii(labelled ? 'off: ' : 'off ').dec(f.u16(0))
      return
    case XLOG_HEAP_LOCK:
      // xl_heap_lock: xmax (locking_xid), offnum, infobits_set, flags
      return labelled ? xmaxOffLabelled(out, f) : offXmaxPlain(out, f, 'xid')
    case XLOG_HEAP_INPLACE: {
      out.ascii(labelled ? 'off: ' : 'off ').dec(f.u16(0))
      if (!v.inplaceInvals) return
      // 18: offnum, dbId, tsId, relcacheInitFileInval, nmsgs, msgs[]
      const n = Math.max(0, Math.min(f.i32(16), Math.floor((f.length - 20) / SIZE_OF_INVAL_MESSAGE)))
      out.text(invalidationsText(f, 20, n, f.u32(4), f.u32(8), f.u8(12) !== 0))
      return
    }
  }
}

/** xl_heap_freeze_plan / xlhp_freeze_plan: xmax, infomask2, infomask, frzflags, ntuples. */
const FREEZE_PLAN_SIZE = 12

function freezePlansText(plans: Fields, at: number, nplans: number, offs: Fields, offsAt: number): string {
  const items: string[] = []
  let o = offsAt
  for (let i = 0; i < nplans; i++) {
    const p = at + FREEZE_PLAN_SIZE * i
    const ntuples = plans.u16(p + 10)
    const list = offsets(offs, o, ntuples)
    o += 2 * ntuples
    items.push(`{ xmax: ${plans.u32(p)}, infomask: ${plans.u16(p + 6)}, infomask2: ${plans.u16(p + 4)}, ntuples: ${ntuples}, offsets:${bracketList(list)} }`)
  }
  return bracketList(items)
}

function redirectsText(f: Fields, at: number, n: number): string {
  const items: string[] = []
  for (let i = 0; i < n; i++) items.push(`${f.u16(at + 4 * i)}->${f.u16(at + 4 * i + 2)}`)
  return bracketList(items)
}

/** 16: PRUNE with its offset arrays from block 0. */
function pruneLabelled(rec: WalRecord, f: Fields): string {
  const nredirected = f.u16(4)
  const ndead = f.u16(6)
  let s = `snapshotConflictHorizon: ${f.u32(0)}, nredirected: ${nredirected}, ndead: ${ndead}`
  const d = blockData(rec, 0)
  if (d) {
    const deadAt = 4 * nredirected
    const unusedAt = deadAt + 2 * ndead
    const nunused = Math.floor((d.length - unusedAt) / 2)
    s += `, nunused: ${nunused}, redirected:${redirectsText(d, 0, nredirected)}, dead:${bracketList(offsets(d, deadAt, ndead))}, unused:${bracketList(offsets(d, unusedAt, Math.max(0, nunused)))}`
  }
  return s
}

const XLHP_IS_CATALOG_REL = 1 << 1
const XLHP_HAS_CONFLICT_HORIZON = 1 << 3
const XLHP_HAS_FREEZE_PLANS = 1 << 4
const XLHP_HAS_REDIRECTIONS = 1 << 5
const XLHP_HAS_DEAD_ITEMS = 1 << 6
const XLHP_HAS_NOW_UNUSED_ITEMS = 1 << 7

/** 17+: the merged prune/freeze record; block 0 holds sub-records selected by flags. */
function pruneFreeze(rec: WalRecord, f: Fields): string {
  const flags = f.u8(1)
  let s = flags & XLHP_HAS_CONFLICT_HORIZON ? `snapshotConflictHorizon: ${f.u32(2)}` : ''
  s += `, isCatalogRel: ${tf(flags & XLHP_IS_CATALOG_REL)}`
  const d = blockData(rec, 0)
  if (!d) return s
  let p = 0
  let nplans = 0
  let plansAt = 0
  if (flags & XLHP_HAS_FREEZE_PLANS) {
    nplans = d.u16(p)
    plansAt = p + 4 // plans are 4-byte aligned after the uint16 count
    p = plansAt + FREEZE_PLAN_SIZE * nplans
  }
  const items = (flag: number, width: number): [number, number] => {
    if (!(flags & flag)) return [0, 0]
    const n = d.u16(p)
    const at = p + 2
    p = at + width * n
    return [n, at]
  }
  const [nredirected, redirectedAt] = items(XLHP_HAS_REDIRECTIONS, 4)
  const [ndead, deadAt] = items(XLHP_HAS_DEAD_ITEMS, 2)
  const [nunused, unusedAt] = items(XLHP_HAS_NOW_UNUSED_ITEMS, 2)
  s += `, nplans: ${nplans}, nredirected: ${nredirected}, ndead: ${ndead}, nunused: ${nunused}`
  if (nplans > 0) s += `, plans:${freezePlansText(d, plansAt, nplans, d, p)}`
  if (nredirected > 0) s += `, redirected:${redirectsText(d, redirectedAt, nredirected)}`
  if (ndead > 0) s += `, dead:${bracketList(offsets(d, deadAt, ndead))}`
  if (nunused > 0) s += `, unused:${bracketList(offsets(d, unusedAt, nunused))}`
  return s
}

function describePruning(rec: WalRecord, f: Fields, v: WalVersion): string {
  const op = rec.info & XLOG_HEAP_OPMASK
  const labelled = v.labelledDescs
  if (v.heap2Pruning === 'prune-freeze') return pruneFreeze(rec, f)
  if (v.heap2Pruning === 'clean') {
    // CLEAN: xl_heap_clean (latestRemovedXid, ...); CLEANUP_INFO: RelFileNode, latestRemovedXid
    if (op === 0x10) return `remxid ${f.u32(0)}`
    if (op === 0x30) return `remxid ${f.u32(12)}`
    return `cutoff xid ${f.u32(0)} ntuples ${f.u16(4)}`
  }
  if (op === 0x10) {
    return labelled ? pruneLabelled(rec, f) : `latestRemovedXid ${f.u32(0)} nredirected ${f.u16(4)} ndead ${f.u16(6)}`
  }
  if (op === 0x20) {
    if (!labelled) return `nunused ${f.u16(0)}`
    const d = blockData(rec, 0)
    return `nunused: ${f.u16(0)}${d ? `, unused:${bracketList(offsets(d, 0, f.u16(0)))}` : ''}`
  }
  // FREEZE_PAGE
  if (!labelled) return `cutoff xid ${f.u32(0)} ntuples ${f.u16(4)}`
  const nplans = f.u16(4)
  let s = `snapshotConflictHorizon: ${f.u32(0)}, nplans: ${nplans}`
  const d = blockData(rec, 0)
  if (d) s += `, plans:${freezePlansText(d, 0, nplans, d, FREEZE_PLAN_SIZE * nplans)}`
  return s
}

function writeHeap2(rec: WalRecord, out: DescWriter): void {
  const v = rec.version
  const f = mainData(rec)
  const labelled = v.labelledDescs
  switch (rec.info & XLOG_HEAP_OPMASK) {
    case 0x10:
      if (!labelled && v.heap2Pruning === 'prune-vacuum') {
        // xl_heap_prune: latestRemovedXid, nredirected, ndead (the common case in 14-15)
        out.ascii('latestRemovedXid ').dec(f.u32(0)).ascii(' nredirected ').dec(f.u16(4)).ascii(' ndead ').dec(f.u16(6))
        return
      }
      out.text(describePruning(rec, f, v))
      return
    case 0x20:
    case 0x30:
      out.text(describePruning(rec, f, v))
      return
    case XLOG_HEAP2_VISIBLE:
      // xl_heap_visible: cutoff xid / snapshotConflictHorizon, flags
      out.ascii(labelled ? 'snapshotConflictHorizon: ' : 'cutoff xid ').dec(f.u32(0)).ascii(labelled ? ', flags: 0x' : ' flags 0x').hex(f.u8(4), 2)
      return
    case XLOG_HEAP2_MULTI_INSERT: {
      // xl_heap_multi_insert: flags, ntuples, offsets[] (at 4)
      const ntuples = f.u16(2)
      if (!labelled) {
        out.dec(ntuples).ascii(' tuples flags 0x').hex(f.u8(0), 2)
        return
      }
      out.ascii('ntuples: ').dec(ntuples).ascii(', flags: 0x').hex(f.u8(0), 2)
      if (rec.hasBlockRef(0) && rec.blocks[0]!.hasData && !(rec.info & XLOG_HEAP_INIT_PAGE)) out.ascii(', offsets:').ascii(bracketList(offsets(f, 4, ntuples)))
      return
    }
    case XLOG_HEAP2_LOCK_UPDATED:
      // xl_heap_lock_updated: xmax, offnum, infobits_set, flags
      return labelled ? xmaxOffLabelled(out, f) : offXmaxPlain(out, f, 'xmax')
    case XLOG_HEAP2_NEW_CID: {
      // xl_heap_new_cid: top_xid, cmin, cmax, combocid, rel (12), tid (block hi/lo, offset)
      const tid = `${f.u16(28) * 65536 + f.u16(30)}/${f.u16(32)}`
      out.ascii(
        labelled
          ? `rel: ${relTriple(f, 16)}, tid: ${tid}, cmin: ${f.u32(4)}, cmax: ${f.u32(8)}, combo: ${f.u32(12)}`
          : `rel ${relTriple(f, 16)}; tid ${tid}; cmin: ${f.u32(4)}, cmax: ${f.u32(8)}, combo: ${f.u32(12)}`,
      )
      return
    }
  }
}

export const heapRmgr: RmgrDesc = {name: 'Heap', identify: identifyFrom(() => HEAP_NAMES), write: writeHeap}
export const heap2Rmgr: RmgrDesc = {name: 'Heap2', identify: identifyFrom((v) => HEAP2_NAMES[v.heap2Pruning]), write: writeHeap2}
