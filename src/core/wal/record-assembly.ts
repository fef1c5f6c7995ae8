import {align8, u16, u32} from './bytes.js'
import type {CrcArena} from './crc32c.js'
import {XLOG_BLCKSZ} from './lsn.js'
import {XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD} from './page.js'
import {lsnText} from './record.js'

/** continuation()'s answer when the rest of the record was never written. */
export const OVERWRITTEN = -1

/**
 * A record spanning pages (and segments), gathered from the continuation data after each
 * following page header, as xlogreader does: every such page must say it continues a record
 * (XLP_FIRST_IS_CONTRECORD) and how much is left, and that must agree with the record's
 * total length. The reader loads and validates the pages; this keeps the pieces.
 */
export class RecordAssembly {
  /** The record's bytes so far. */
  buf: Uint8Array
  /** The arena when `buf` lives in it (until it has to grow). */
  arena: CrcArena | undefined
  active = false
  /** Where the record starts, its total length, and how many bytes are gathered. */
  lsn = 0
  total = 0
  got = 0
  /** The page whose continuation data comes next. */
  page = 0
  /** The record header has been checked (it may itself span the first page boundary). */
  headerOk = false
  /** Timeline of the page the record starts on. */
  tli = 0
  private lastHeader = 0
  private lastRemaining = 0

  constructor(buffer: Uint8Array, arena: CrcArena | undefined) {
    this.buf = buffer
    this.arena = arena?.owns(buffer) ? arena : undefined
  }

  /** Start with the first `room` bytes of the record at b[o], the rest of its page. */
  begin(b: Uint8Array, o: number, room: number, lsn: number, total: number, tli: number, headerOk: boolean): void {
    this.active = true
    this.lsn = lsn
    this.total = total
    this.got = room
    this.page = lsn + room
    this.headerOk = headerOk
    this.tli = tli
    this.buf.set(b.subarray(o, o + room), 0)
  }

  get complete(): boolean {
    return this.got >= this.total
  }

  /**
   * Check the continuation header of the next page, at b[o] with a header of `hs` bytes
   * (validated already). Returns how many bytes after the header belong to the record,
   * OVERWRITTEN, or what is wrong.
   */
  continuation(b: Uint8Array, o: number, hs: number): number | string {
    const info = u16(b, o + 2)
    // The rest of this record was never written; the server wrote new WAL from here.
    if (info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) return OVERWRITTEN
    if (!(info & XLP_FIRST_IS_CONTRECORD)) return `there is no contrecord flag at ${lsnText(this.lsn)}`
    const rem = u32(b, o + 16)
    if (rem === 0 || this.total !== rem + this.got) {
      return `invalid contrecord length ${rem} (expected ${this.total - this.got}) at ${lsnText(this.lsn)}`
    }
    return Math.min(XLOG_BLCKSZ - hs, rem)
  }

  /** Add the `len` bytes continuation() allowed from the page at b[o]; on to the next page. */
  append(b: Uint8Array, o: number, hs: number, len: number): void {
    if (this.buf.length < this.total) this.grow()
    this.buf.set(b.subarray(o + hs, o + hs + len), this.got)
    this.got += len
    this.page += XLOG_BLCKSZ
    this.lastHeader = hs
    this.lastRemaining = u32(b, o + 16)
  }

  /** Where the next record starts once this one is complete. */
  get endLsn(): number {
    return this.page - XLOG_BLCKSZ + this.lastHeader + align8(this.lastRemaining)
  }

  private grow(): void {
    // Only after xlp_rem_len confirmed the length, so garbage lengths never allocate.
    let size = this.buf.length
    while (size < this.total) size *= 2
    const bigger = new Uint8Array(new ArrayBuffer(size))
    bigger.set(this.buf.subarray(0, this.got))
    this.buf = bigger
    this.arena = undefined
  }
}
