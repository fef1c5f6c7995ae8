import {identifyFrom, mainData, relTriple, tf, type Fields, type RmgrDesc, fromText} from './common.js'

/**
 * Index access methods other than btree: Hash, Gin, Gist, SPGist, BRIN. All record types are
 * named; details are given for Hash, Gist and BRIN (Gin and SPGist print the type only).
 */

/** C's printf("%g"): 6 significant digits, trailing zeros dropped, exponent when far out. */
export function formatG(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf'
  if (x === 0) return Object.is(x, -0) ? '-0' : '0'
  const exp = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(6)))))
  if (exp < -4 || exp >= 6) {
    const [mant, e] = x.toExponential(5).split('e') as [string, string]
    const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant
    const en = Number(e)
    return `${m}e${en < 0 ? '-' : '+'}${String(Math.abs(en)).padStart(2, '0')}`
  }
  const s = x.toFixed(Math.max(0, 5 - exp))
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s
}

function float64(f: Fields, o: number): number {
  if (!f.has(o, 8)) return 0
  return Buffer.from(f.b.buffer, f.b.byteOffset + f.base + o, 8).readDoubleLE(0)
}

export const hashRmgr: RmgrDesc = {
  name: 'Hash',
  identify: identifyFrom(() => ({
    0x00: 'INIT_META_PAGE',
    0x10: 'INIT_BITMAP_PAGE',
    0x20: 'INSERT',
    0x30: 'ADD_OVFL_PAGE',
    0x40: 'SPLIT_ALLOCATE_PAGE',
    0x50: 'SPLIT_PAGE',
    0x60: 'SPLIT_COMPLETE',
    0x70: 'MOVE_PAGE_CONTENTS',
    0x80: 'SQUEEZE_PAGE',
    0x90: 'DELETE',
    0xa0: 'SPLIT_CLEANUP',
    0xb0: 'UPDATE_META_PAGE',
    0xc0: 'VACUUM_ONE_PAGE',
  })),
  write: fromText((rec) => {
    const f = mainData(rec)
    const v = rec.version
    switch (rec.rmgrInfo) {
      case 0x00:
        return `num_tuples ${formatG(float64(f, 0))}, fillfactor ${f.u16(12)}`
      case 0x10:
        return `bmsize ${f.u16(0)}`
      case 0x20:
        return `off ${f.u16(0)}`
      case 0x30:
        return `bmsize ${f.u16(0)}, bmpage_found ${tf(f.u8(2))}`
      case 0x40:
        return `new_bucket ${f.u32(0)}, meta_page_masks_updated ${tf(f.u8(8) & 1)}, issplitpoint_changed ${tf(f.u8(8) & 2)}`
      case 0x60:
        return `old_bucket_flag ${f.u16(0)}, new_bucket_flag ${f.u16(2)}`
      case 0x70:
        return `ntups ${f.u16(0)}, is_primary ${tf(f.u8(2))}`
      case 0x80:
        return `prevblkno ${f.u32(0)}, nextblkno ${f.u32(4)}, ntups ${f.u16(8)}, is_primary ${tf(f.u8(10))}`
      case 0x90:
        return `clear_dead_marking ${tf(f.u8(0))}, is_primary ${tf(f.u8(1))}`
      case 0xb0:
        return `ntuples ${formatG(float64(f, 0))}`
      case 0xc0: {
        const horizon = v.labelledDescs ? 'snapshotConflictHorizon' : 'latestRemovedXid'
        const s = `ntuples ${f.i32(4)}, ${horizon} ${f.u32(0)}`
        return v.showIsCatalogRel ? `${s}, isCatalogRel ${tf(f.u8(8))}` : s
      }
      default:
        return ''
    }
  }),
}

export const ginRmgr: RmgrDesc = {
  name: 'Gin',
  identify: identifyFrom(() => ({
    0x10: 'CREATE_PTREE',
    0x20: 'INSERT',
    0x30: 'SPLIT',
    0x40: 'VACUUM_PAGE',
    0x90: 'VACUUM_DATA_LEAF_PAGE',
    0x50: 'DELETE_PAGE',
    0x60: 'UPDATE_META_PAGE',
    0x70: 'INSERT_LISTPAGE',
    0x80: 'DELETE_LISTPAGE',
  })),
  write: () => {},
}

export const gistRmgr: RmgrDesc = {
  name: 'Gist',
  identify: identifyFrom(() => ({0x00: 'PAGE_UPDATE', 0x10: 'DELETE', 0x20: 'PAGE_REUSE', 0x30: 'PAGE_SPLIT', 0x60: 'PAGE_DELETE', 0x70: 'ASSIGN_LSN'})),
  write: fromText((rec) => {
    const f = mainData(rec)
    const v = rec.version
    const catalog = (o: number): string => (v.showIsCatalogRel ? `, isCatalogRel ${tf(f.u8(o))}` : '')
    switch (rec.rmgrInfo) {
      case 0x10:
        return `delete: ${v.labelledDescs ? 'snapshotConflictHorizon' : 'latestRemovedXid'} ${f.u32(0)}, nitems: ${f.u16(4)}${catalog(6)}`
      case 0x20:
        return `rel ${relTriple(f, 0)}; blk ${f.u32(12)}; ${v.labelledDescs ? 'snapshotConflictHorizon' : 'latestRemovedXid'} ${f.u32(20)}:${f.u32(16)}${catalog(24)}`
      case 0x30:
        return `page_split: splits to ${f.u16(18)} pages`
      case 0x60:
        return `deleteXid ${f.u32(4)}:${f.u32(0)}; downlink ${f.u16(8)}`
      default:
        return ''
    }
  }),
}

export const spgistRmgr: RmgrDesc = {
  name: 'SPGist',
  identify: identifyFrom(() => ({
    0x10: 'ADD_LEAF',
    0x20: 'MOVE_LEAFS',
    0x30: 'ADD_NODE',
    0x40: 'SPLIT_TUPLE',
    0x50: 'PICKSPLIT',
    0x60: 'VACUUM_LEAF',
    0x70: 'VACUUM_ROOT',
    0x80: 'VACUUM_REDIRECT',
  })),
  write: () => {},
}

export const brinRmgr: RmgrDesc = {
  name: 'BRIN',
  identify: identifyFrom(() => ({
    0x00: 'CREATE_INDEX',
    0x10: 'INSERT',
    0x90: 'INSERT+INIT',
    0x20: 'UPDATE',
    0xa0: 'UPDATE+INIT',
    0x30: 'SAMEPAGE_UPDATE',
    0x40: 'REVMAP_EXTEND',
    0x50: 'DESUMMARIZE',
  })),
  write: fromText((rec) => {
    const f = mainData(rec)
    switch (rec.info & 0x70) {
      case 0x00:
        return `v${f.u16(4)} pagesPerRange ${f.u32(0)}`
      case 0x10:
        return `heapBlk ${f.u32(0)} pagesPerRange ${f.u32(4)} offnum ${f.u16(8)}`
      case 0x20:
        return `heapBlk ${f.u32(4)} pagesPerRange ${f.u32(8)} old offnum ${f.u16(0)}, new offnum ${f.u16(12)}`
      case 0x30:
        return `offnum ${f.u16(0)}`
      case 0x40:
        return `targetBlk ${f.u32(0)}`
      case 0x50:
        return `pagesPerRange ${f.u32(0)}, heapBlk ${f.u32(4)}, page offset ${f.u16(8)}`
      default:
        return ''
    }
  }),
}
