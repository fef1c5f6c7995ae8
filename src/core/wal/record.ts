import {u16, u32} from './bytes.js'
import type {WalVersion} from './page.js'

/**
 * One WAL record: the fixed 24-byte header, block references (with optional full-page
 * images), and the rmgr's main data.
 *
 * Layout on disk: XLogRecord header | block headers ... | main-data header | block images and
 * block data, in block order | main data. Only the header is aligned (8 bytes); everything
 * after it is packed.
 *
 * A WalRecord is a view: it holds offsets into the buffer the record was read from and is
 * reused for the next record, so nothing is allocated per record. Copy what you keep.
 */

export const SIZE_OF_XLOG_RECORD = 24
/** Offset of xl_crc: the CRC covers the payload, then the header up to here. */
export const XLOG_RECORD_CRC_OFFSET = 20
export const XLR_RMGR_INFO_MASK = 0xf0
export const XLR_MAX_BLOCK_ID = 32
export const XLR_BLOCK_ID_DATA_SHORT = 255
export const XLR_BLOCK_ID_DATA_LONG = 254
export const XLR_BLOCK_ID_ORIGIN = 253
export const XLR_BLOCK_ID_TOPLEVEL_XID = 252

export const BKPBLOCK_FORK_MASK = 0x0f
export const BKPBLOCK_HAS_IMAGE = 0x10
export const BKPBLOCK_HAS_DATA = 0x20
export const BKPBLOCK_WILL_INIT = 0x40
export const BKPBLOCK_SAME_REL = 0x80

export const BLCKSZ = 8192
/** XLogRecordMaxSize (16+); older majors allowed up to 1 GB. Guards against garbage lengths. */
export const MAX_RECORD_LENGTH = 1020 * 1024 * 1024

export const FORK_NAMES = ['main', 'fsm', 'vm', 'init'] as const

export type FpiCompression = 'none' | 'pglz' | 'lz4' | 'zstd' | 'unknown'

/** A block reference of the current record. */
export class BlockRef {
  inUse = false
  forkNumber = 0
  /** fork_flags byte (fork number in the low 4 bits). */
  flags = 0
  hasImage = false
  hasData = false
  applyImage = false
  spcOid = 0
  dbOid = 0
  relNumber = 0
  blockNumber = 0
  dataLength = 0
  /** Offset of the block's data in the record buffer. */
  dataOffset = 0
  imageLength = 0
  imageOffset = 0
  holeOffset = 0
  holeLength = 0
  imageInfo = 0

  get willInit(): boolean {
    return (this.flags & BKPBLOCK_WILL_INIT) !== 0
  }

  get forkName(): string {
    return FORK_NAMES[this.forkNumber] ?? `unknown(${this.forkNumber})`
  }
}

export class WalRecord {
  version!: WalVersion
  /** Timeline of the page the record starts on. */
  timeline = 0
  /** Buffer holding the whole record (a read chunk, or a reassembly buffer). */
  buf: Uint8Array = new Uint8Array(0)
  /** Offset of the record header in `buf`. */
  off = 0
  /** Start of the record (a Number: exact below 2^53, i.e. 8 PiB of WAL). */
  lsn = 0
  /** Where the next record starts (after alignment; the next segment after a SWITCH). */
  endLsn = 0
  totalLength = 0
  xid = 0
  info = 0
  rmid = 0
  mainDataOffset = 0
  mainDataLength = 0
  /** Top-level xid of a subtransaction's first record (14+), 0 when absent. */
  toplevelXid = 0
  /** Replication origin id, 0 when absent. */
  origin = 0
  /** Total bytes of full-page images. */
  fpiLength = 0

  private readonly blockRefs: BlockRef[] = Array.from({length: XLR_MAX_BLOCK_ID + 1}, () => new BlockRef())
  private decodedMaxBlockId = -1
  /** Block references are decoded on first use: statistics never need them. */
  private blocksDecoded = false

  /** xl_prev, the previous record's start. */
  get prevLsn(): number {
    return u32(this.buf, this.off + 12) * 4294967296 + u32(this.buf, this.off + 8)
  }

  get crc(): number {
    return u32(this.buf, this.off + XLOG_RECORD_CRC_OFFSET)
  }

  /** Length without full-page images, as pg_waldump's "rec" length. */
  get recordLength(): number {
    return this.totalLength - this.fpiLength
  }

  /** The rmgr's 4 bits of xl_info. */
  get rmgrInfo(): number {
    return this.info & XLR_RMGR_INFO_MASK
  }

  /** Block references by id (entries up to maxBlockId; check `inUse`). */
  get blocks(): readonly BlockRef[] {
    if (!this.blocksDecoded) this.decodeBlocks()
    return this.blockRefs
  }

  get maxBlockId(): number {
    if (!this.blocksDecoded) this.decodeBlocks()
    return this.decodedMaxBlockId
  }

  hasBlockRef(id: number): boolean {
    return id <= this.maxBlockId && this.blockRefs[id]!.inUse
  }

  /** True if any block reference carries a full-page image. */
  get hasFullPageImage(): boolean {
    const blocks = this.blocks
    for (let id = 0; id <= this.decodedMaxBlockId; id++) if (blocks[id]!.inUse && blocks[id]!.hasImage) return true
    return false
  }

  /** Main data copied out (for callers that keep it beyond the next record). */
  mainData(): Uint8Array {
    return this.buf.slice(this.off + this.mainDataOffset, this.off + this.mainDataOffset + this.mainDataLength)
  }

  /** Called by the reader after it validated the record with decodeRecordBody(rec). */
  resetBlocks(): void {
    this.blocksDecoded = false
  }

  /** Validate and decode in one pass, block references included (when they will be used). */
  decodeWithBlocks(): string | undefined {
    const err = decodeRecordBody(this, this.blockRefs)
    this.blocksDecoded = err === undefined
    return err
  }

  private decodeBlocks(): void {
    // The reader already validated the same bytes, so this cannot fail.
    decodeRecordBody(this, this.blockRefs)
    this.blocksDecoded = true
  }

  /** @internal */
  setDecodedMaxBlockId(id: number): void {
    this.decodedMaxBlockId = id
  }
}

/**
 * Parse the block and data headers of a record whose header fields are already set on `rec`
 * and whose bytes are complete in `rec.buf`, with every check xlogreader makes. Sets the main
 * data, origin, top-level xid and FPI length; fills `blocks` only when given (reading
 * statistics does not need them). Returns an error message in pg_waldump's words, or
 * undefined. Never reads outside `[rec.off, rec.off + rec.totalLength)`.
 */
export function decodeRecordBody(rec: WalRecord, blocks?: BlockRef[]): string | undefined {
  const b = rec.buf
  const base = rec.off
  const fpi = rec.version.fpi
  const allowToplevelXid = rec.version.toplevelXidBlock
  let p = base + SIZE_OF_XLOG_RECORD
  const end = base + rec.totalLength
  let datatotal = 0
  let maxBlockId = -1
  let haveRel = false
  let spc = 0
  let db = 0
  let rel = 0
  let fpiLength = 0
  rec.mainDataLength = 0
  rec.toplevelXid = 0
  rec.origin = 0

  while (end - p > datatotal) {
    const blockId = b[p++]!
    if (blockId === XLR_BLOCK_ID_DATA_SHORT) {
      if (end - p < 1) return shortData(rec)
      rec.mainDataLength = b[p++]!
      datatotal += rec.mainDataLength
      break // main data is always the last fragment
    } else if (blockId === XLR_BLOCK_ID_DATA_LONG) {
      if (end - p < 4) return shortData(rec)
      rec.mainDataLength = u32(b, p)
      p += 4
      datatotal += rec.mainDataLength
      break
    } else if (blockId === XLR_BLOCK_ID_ORIGIN) {
      if (end - p < 2) return shortData(rec)
      rec.origin = u16(b, p)
      p += 2
    } else if (blockId === XLR_BLOCK_ID_TOPLEVEL_XID && allowToplevelXid) {
      if (end - p < 4) return shortData(rec)
      rec.toplevelXid = u32(b, p)
      p += 4
    } else if (blockId <= XLR_MAX_BLOCK_ID) {
      if (blockId <= maxBlockId) return `out-of-order block_id ${blockId} at ${lsnText(rec.lsn)}`
      if (blocks) for (let i = maxBlockId + 1; i < blockId; i++) blocks[i]!.inUse = false
      maxBlockId = blockId
      if (end - p < 3) return shortData(rec)
      const forkFlags = b[p]!
      const dataLength = b[p + 1]! | (b[p + 2]! << 8)
      p += 3
      const hasData = (forkFlags & BKPBLOCK_HAS_DATA) !== 0
      if (hasData && dataLength === 0) return `BKPBLOCK_HAS_DATA set, but no data included at ${lsnText(rec.lsn)}`
      if (!hasData && dataLength !== 0) return `BKPBLOCK_HAS_DATA not set, but data length is ${dataLength} at ${lsnText(rec.lsn)}`
      datatotal += dataLength
      let imageLength = 0
      let holeOffset = 0
      let holeLength = 0
      let imageInfo = 0
      if (forkFlags & BKPBLOCK_HAS_IMAGE) {
        if (end - p < 5) return shortData(rec)
        imageLength = b[p]! | (b[p + 1]! << 8)
        holeOffset = b[p + 2]! | (b[p + 3]! << 8)
        imageInfo = b[p + 4]!
        p += 5
        const compressed = (imageInfo & fpi.compressed) !== 0
        const hasHole = (imageInfo & fpi.hasHole) !== 0
        if (!compressed) {
          holeLength = BLCKSZ - imageLength
        } else if (hasHole) {
          if (end - p < 2) return shortData(rec)
          holeLength = b[p]! | (b[p + 1]! << 8)
          p += 2
        }
        datatotal += imageLength
        fpiLength += imageLength
        if (hasHole && (holeOffset === 0 || holeLength === 0 || imageLength === BLCKSZ)) {
          return `BKPIMAGE_HAS_HOLE set, but hole offset ${holeOffset} length ${holeLength} block image length ${imageLength} at ${lsnText(rec.lsn)}`
        }
        if (!hasHole && (holeOffset !== 0 || holeLength !== 0)) {
          return `BKPIMAGE_HAS_HOLE not set, but hole offset ${holeOffset} length ${holeLength} at ${lsnText(rec.lsn)}`
        }
        if (compressed && imageLength === BLCKSZ) {
          return `BKPIMAGE_COMPRESSED set, but block image length ${imageLength} at ${lsnText(rec.lsn)}`
        }
        if (!hasHole && !compressed && imageLength !== BLCKSZ) {
          return `neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is ${imageLength} at ${lsnText(rec.lsn)}`
        }
      }
      if (!(forkFlags & BKPBLOCK_SAME_REL)) {
        if (end - p < 12) return shortData(rec)
        if (blocks) {
          spc = u32(b, p)
          db = u32(b, p + 4)
          rel = u32(b, p + 8)
        }
        p += 12
        haveRel = true
      } else if (!haveRel) {
        return `BKPBLOCK_SAME_REL set but no previous rel at ${lsnText(rec.lsn)}`
      }
      if (end - p < 4) return shortData(rec)
      if (blocks) {
        const blk = blocks[blockId]!
        blk.inUse = true
        blk.flags = forkFlags
        blk.forkNumber = forkFlags & BKPBLOCK_FORK_MASK
        blk.hasImage = (forkFlags & BKPBLOCK_HAS_IMAGE) !== 0
        blk.hasData = hasData
        blk.dataLength = dataLength
        blk.imageLength = imageLength
        blk.holeOffset = holeOffset
        blk.holeLength = holeLength
        blk.imageInfo = imageInfo
        blk.applyImage = blk.hasImage && (imageInfo & fpi.apply) !== 0
        blk.spcOid = spc
        blk.dbOid = db
        blk.relNumber = rel
        blk.blockNumber = u32(b, p)
      }
      p += 4
    } else {
      return `invalid block_id ${blockId} at ${lsnText(rec.lsn)}`
    }
  }
  if (end - p !== datatotal) return shortData(rec)
  // Main data is always last.
  rec.mainDataOffset = rec.totalLength - rec.mainDataLength
  rec.fpiLength = fpiLength
  if (blocks) {
    // Payload offsets, relative to the record start: images and data in block order.
    let q = p - base
    for (let id = 0; id <= maxBlockId; id++) {
      const blk = blocks[id]!
      if (!blk.inUse) continue
      if (blk.hasImage) {
        blk.imageOffset = q
        q += blk.imageLength
      }
      if (blk.hasData) {
        blk.dataOffset = q
        q += blk.dataLength
      }
    }
    rec.setDecodedMaxBlockId(maxBlockId)
  }
  return undefined
}

function shortData(rec: WalRecord): string {
  return `record with invalid length at ${lsnText(rec.lsn)}`
}

/** "X/X" as PostgreSQL prints LSNs in messages (no zero padding). */
export function lsnText(lsn: number): string {
  return `${Math.floor(lsn / 4294967296).toString(16).toUpperCase()}/${(lsn >>> 0).toString(16).toUpperCase()}`
}

export function fpiCompression(rec: WalRecord, blk: BlockRef): FpiCompression {
  const f = rec.version.fpi
  const info = blk.imageInfo
  if ((info & f.compressed) === 0) return 'none'
  if (f.pglz && info & f.pglz) return 'pglz'
  if (f.lz4 && info & f.lz4) return 'lz4'
  if (f.zstd && info & f.zstd) return 'zstd'
  return 'unknown'
}
