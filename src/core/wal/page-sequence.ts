import {u16, u32, u64n} from './bytes.js'
import {XLOG_BLCKSZ} from './lsn.js'
import {XLP_ALL_FLAGS, XLP_LONG_HEADER, walVersionByMagic, type WalVersion} from './page.js'
import {lsnText} from './record.js'
import type {SegmentSource} from './segment-source.js'

/**
 * The page headers a reader enters, checked in order as xlogreader's
 * XLogReaderValidatePageHeader does: magic (the first one names the WAL format), flags,
 * segment and block size, the page's own address, and no timeline going backwards.
 */
export class PageSequence {
  /** WAL format, known once the first page's magic has been read. */
  version: WalVersion | undefined
  /** Timeline of the last page that passed, and of the first one. */
  tli = 0
  firstTli: number | undefined
  private latestPagePtr = 0
  private latestTli = 0

  constructor(private readonly dir: SegmentSource) {}

  /** Timeline of the latest page entered (for checks across readers). */
  get latestPageTli(): number {
    return this.latestTli
  }

  /** Check the header at b[o] of the page at LSN `page`; what is wrong, if anything. */
  check(b: Uint8Array, o: number, page: number): string | undefined {
    const segmentSize = this.dir.segmentSize
    const segno = Math.floor(page / segmentSize)
    const offset = page - segno * segmentSize
    const where = (): string => `in log segment ${this.dir.segmentName(BigInt(segno))}, offset ${offset}`
    const magic = u16(b, o)
    if (!this.version) {
      const v = walVersionByMagic(magic)
      if (!v) return `invalid magic number ${hex4(magic)} ${where()} (not a WAL format of PostgreSQL 13 to 18)`
      this.version = v
    } else if (magic !== this.version.magic) {
      return `invalid magic number ${hex4(magic)} ${where()}`
    }
    const info = u16(b, o + 2)
    if (info & ~XLP_ALL_FLAGS) return `invalid info bits ${hex4(info)} ${where()}`
    if (info & XLP_LONG_HEADER) {
      if (u32(b, o + 32) !== segmentSize) return 'WAL file is from different database system: incorrect segment size in page header'
      if (u32(b, o + 36) !== XLOG_BLCKSZ) return 'WAL file is from different database system: incorrect XLOG_BLCKSZ in page header'
    } else if (offset === 0) {
      return `invalid info bits ${hex4(info)} ${where()}`
    }
    const address = u64n(b, o + 8)
    if (address !== page) return `unexpected pageaddr ${lsnText(address)} ${where()}`
    const tli = u32(b, o + 4)
    if (page > this.latestPagePtr && tli < this.latestTli) {
      return `out-of-sequence timeline ID ${tli} (after ${this.latestTli}) ${where()}`
    }
    this.latestPagePtr = page
    this.latestTli = tli
    this.tli = tli
    this.firstTli ??= tli
    return undefined
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}
