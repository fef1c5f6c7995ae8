import {FORK_NAMES, type WalRecord} from '../wal/record.js'

/** pg_waldump's record filters (-r, -x, -R, -B, -F, -w); all given ones must match. */
export interface RecordFilter {
  /** Rmgr ids to keep. */
  rmgrs?: ReadonlySet<number>
  xid?: number
  /** Only records touching blocks of this relation (tablespace/database/relfilenode). */
  relation?: {spcOid: number; dbOid: number; relNumber: number}
  /** With `relation`: only this block number. */
  block?: number
  /** Only blocks of this fork. */
  fork?: number
  /** Only records with a full-page image. */
  fullPageImage?: boolean
}

export function isEmptyFilter(f: RecordFilter): boolean {
  return f.rmgrs === undefined && f.xid === undefined && f.relation === undefined && f.block === undefined && f.fork === undefined && !f.fullPageImage
}

/** Filters on relation, block, fork or full-page image look at block references. */
export function filterUsesBlocks(f: RecordFilter): boolean {
  return f.relation !== undefined || f.block !== undefined || f.fork !== undefined || f.fullPageImage === true
}

export function matchesFilter(rec: WalRecord, f: RecordFilter): boolean {
  if (f.rmgrs !== undefined && !f.rmgrs.has(rec.rmid)) return false
  if (f.xid !== undefined && rec.xid !== f.xid) return false
  if (f.relation !== undefined || f.block !== undefined || f.fork !== undefined) {
    if (!touchesBlock(rec, f)) return false
  }
  if (f.fullPageImage && !rec.hasFullPageImage) return false
  return true
}

function touchesBlock(rec: WalRecord, f: RecordFilter): boolean {
  const blocks = rec.blocks
  for (let id = 0; id <= rec.maxBlockId; id++) {
    const b = blocks[id]!
    if (!b.inUse) continue
    if (f.fork !== undefined && b.forkNumber !== f.fork) continue
    const r = f.relation
    if (r !== undefined && (b.spcOid !== r.spcOid || b.dbOid !== r.dbOid || b.relNumber !== r.relNumber)) continue
    if (f.block !== undefined && b.blockNumber !== f.block) continue
    return true
  }
  return false
}

/** Fork number for a fork name (main, fsm, vm, init), or undefined. */
export function forkNumberByName(name: string): number | undefined {
  const i = (FORK_NAMES as readonly string[]).indexOf(name)
  return i < 0 ? undefined : i
}
