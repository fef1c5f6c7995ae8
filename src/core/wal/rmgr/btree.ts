import type {WalRecord} from '../record.js'
import {blockData, bracketList, identifyFrom, mainData, offsets, relTriple, tf, type Fields, type RmgrDesc, fromText} from './common.js'

export const XLOG_BTREE_INSERT_LEAF = 0x00
export const XLOG_BTREE_INSERT_UPPER = 0x10
export const XLOG_BTREE_INSERT_META = 0x20
export const XLOG_BTREE_SPLIT_L = 0x30
export const XLOG_BTREE_SPLIT_R = 0x40
export const XLOG_BTREE_INSERT_POST = 0x50
export const XLOG_BTREE_DEDUP = 0x60
export const XLOG_BTREE_DELETE = 0x70
export const XLOG_BTREE_UNLINK_PAGE = 0x80
export const XLOG_BTREE_UNLINK_PAGE_META = 0x90
export const XLOG_BTREE_NEWROOT = 0xa0
export const XLOG_BTREE_MARK_PAGE_HALFDEAD = 0xb0
export const XLOG_BTREE_VACUUM = 0xc0
export const XLOG_BTREE_REUSE_PAGE = 0xd0
export const XLOG_BTREE_META_CLEANUP = 0xe0

const NAMES: Record<number, string> = {
  [XLOG_BTREE_INSERT_LEAF]: 'INSERT_LEAF',
  [XLOG_BTREE_INSERT_UPPER]: 'INSERT_UPPER',
  [XLOG_BTREE_INSERT_META]: 'INSERT_META',
  [XLOG_BTREE_SPLIT_L]: 'SPLIT_L',
  [XLOG_BTREE_SPLIT_R]: 'SPLIT_R',
  [XLOG_BTREE_INSERT_POST]: 'INSERT_POST',
  [XLOG_BTREE_DEDUP]: 'DEDUP',
  [XLOG_BTREE_VACUUM]: 'VACUUM',
  [XLOG_BTREE_DELETE]: 'DELETE',
  [XLOG_BTREE_MARK_PAGE_HALFDEAD]: 'MARK_PAGE_HALFDEAD',
  [XLOG_BTREE_UNLINK_PAGE]: 'UNLINK_PAGE',
  [XLOG_BTREE_UNLINK_PAGE_META]: 'UNLINK_PAGE_META',
  [XLOG_BTREE_NEWROOT]: 'NEWROOT',
  [XLOG_BTREE_REUSE_PAGE]: 'REUSE_PAGE',
  [XLOG_BTREE_META_CLEANUP]: 'META_CLEANUP',
}

/** 16+: deleted offsets, then updated offsets, then per update a count and its posting-list tids. */
function deletedAndUpdated(d: Fields, ndeleted: number, nupdated: number): string {
  let s = `, deleted:${bracketList(offsets(d, 0, ndeleted))}`
  const updatedAt = 2 * ndeleted
  let p = updatedAt + 2 * nupdated
  const items: string[] = []
  for (let i = 0; i < nupdated; i++) {
    const n = d.u16(p)
    items.push(`{ off: ${d.u16(updatedAt + 2 * i)}, nptids: ${n}, ptids: [${offsets(d, p + 2, n).join(', ')}] }`)
    p += 2 + 2 * n
    if (!d.has(p, 0)) break
  }
  return `${s}, updated: [${items.join(', ')}]`
}

function describe(rec: WalRecord): string {
  const v = rec.version
  const f = mainData(rec)
  const L = v.labelledDescs
  // 13-15 separate with "; " and spaces, 16+ with "key: value, ".
  const kv = (k: string, val: string | number): string => (L ? `${k}: ${val}` : `${k} ${val}`)
  const sep = L ? ', ' : '; '
  switch (rec.rmgrInfo) {
    case XLOG_BTREE_INSERT_LEAF:
    case XLOG_BTREE_INSERT_UPPER:
    case XLOG_BTREE_INSERT_META:
    case XLOG_BTREE_INSERT_POST:
      return kv('off', f.u16(0))
    case XLOG_BTREE_SPLIT_L:
    case XLOG_BTREE_SPLIT_R:
      // level, firstrightoff, newitemoff, postingoff
      return [kv('level', f.u32(0)), kv('firstrightoff', f.u16(4)), kv('newitemoff', f.u16(6)), kv('postingoff', f.u16(8))].join(', ')
    case XLOG_BTREE_DEDUP:
      return kv('nintervals', f.u16(0))
    case XLOG_BTREE_VACUUM: {
      const s = [kv('ndeleted', f.u16(0)), kv('nupdated', f.u16(2))].join(sep)
      const d = L ? blockData(rec, 0) : undefined
      return d ? s + deletedAndUpdated(d, f.u16(0), f.u16(2)) : s
    }
    case XLOG_BTREE_DELETE: {
      if (!v.btreeSafexid) return `latestRemovedXid ${f.u32(0)}; ndeleted ${f.u32(4)}`
      if (!L) return `latestRemovedXid ${f.u32(0)}; ndeleted ${f.u16(4)}; nupdated ${f.u16(6)}`
      let s = `snapshotConflictHorizon: ${f.u32(0)}, ndeleted: ${f.u16(4)}, nupdated: ${f.u16(6)}`
      if (v.showIsCatalogRel) s += `, isCatalogRel: ${tf(f.u8(8))}`
      const d = blockData(rec, 0)
      return d ? s + deletedAndUpdated(d, f.u16(4), f.u16(6)) : s
    }
    case XLOG_BTREE_MARK_PAGE_HALFDEAD:
      // poffset, leafblk, leftblk, rightblk, topparent
      return [kv('topparent', f.u32(16)), kv('leaf', f.u32(4)), kv('left', f.u32(8)), kv('right', f.u32(12))].join(sep)
    case XLOG_BTREE_UNLINK_PAGE:
    case XLOG_BTREE_UNLINK_PAGE_META:
      if (!v.btreeSafexid) {
        // leftsib, rightsib, leafleftsib, leafrightsib, topparent, btpo_xact
        return `left ${f.u32(0)}; right ${f.u32(4)}; btpo_xact ${f.u32(20)}; leafleft ${f.u32(8)}; leafright ${f.u32(12)}; topparent ${f.u32(16)}`
      }
      // leftsib, rightsib, level, safexid (8-aligned), leafleftsib, leafrightsib, leaftopparent
      return (
        [kv('left', f.u32(0)), kv('right', f.u32(4)), kv('level', f.u32(8)), kv('safexid', `${f.u32(20)}:${f.u32(16)}`)].join(sep) +
        sep +
        [kv('leafleft', f.u32(24)), kv('leafright', f.u32(28)), kv('leaftopparent', f.u32(32))].join(sep)
      )
    case XLOG_BTREE_NEWROOT:
      return L ? `level: ${f.u32(4)}` : `lev ${f.u32(4)}`
    case XLOG_BTREE_REUSE_PAGE: {
      // RelFileNode, block, then the horizon (a plain xid in 13, a full xid from 14)
      if (!v.btreeSafexid) return `rel ${relTriple(f, 0)}; latestRemovedXid ${f.u32(16)}`
      const horizon = `${f.u32(20)}:${f.u32(16)}`
      if (!L) return `rel ${relTriple(f, 0)}; latestRemovedXid ${horizon}`
      return `rel: ${relTriple(f, 0)}, snapshotConflictHorizon: ${horizon}${v.showIsCatalogRel ? `, isCatalogRel: ${tf(f.u8(24))}` : ''}`
    }
    case XLOG_BTREE_META_CLEANUP: {
      const d = blockData(rec, 0)
      if (!d) return ''
      if (!v.btreeSafexid) return `oldest_btpo_xact ${d.u32(20)}; last_cleanup_num_heap_tuples: ${float64(d, 24).toFixed(6)}`
      return kv('last_cleanup_num_delpages', d.u32(20))
    }
    default:
      return ''
  }
}

function float64(f: Fields, o: number): number {
  if (!f.has(o, 8)) return 0
  return Buffer.from(f.b.buffer, f.b.byteOffset + f.base + o, 8).readDoubleLE(0)
}

const writeOther = fromText(describe)

export const btreeRmgr: RmgrDesc = {
  name: 'Btree',
  identify: identifyFrom(() => NAMES),
  write(rec, out) {
    const info = rec.rmgrInfo
    // Leaf inserts are most btree records: write them without building a string.
    if (info === XLOG_BTREE_INSERT_LEAF || info === XLOG_BTREE_INSERT_UPPER || info === XLOG_BTREE_INSERT_META || info === XLOG_BTREE_INSERT_POST) {
      out.ascii(rec.version.labelledDescs ? 'off: ' : 'off ').dec(mainData(rec).u16(0))
    } else {
      writeOther(rec, out)
    }
  },
}
