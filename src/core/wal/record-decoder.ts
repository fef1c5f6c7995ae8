import {align8, u16, u32, u64n} from './bytes.js'
import {ChunkPool} from './chunk-pool.js'
import type {CrcArena} from './crc32c.js'
import {XLOG_BLCKSZ} from './lsn.js'
import {PageSequence} from './page-sequence.js'
import {pageHeaderSizeAt, SIZE_OF_SHORT_PAGE_HEADER, XLP_FIRST_IS_CONTRECORD, type WalVersion} from './page.js'
import {OVERWRITTEN, RecordAssembly} from './record-assembly.js'
import {crcMatches} from './record-crc.js'
import type {RecordRunCounter} from './record-run-counter.js'
import {decodeRecordBody, lsnText, MAX_RECORD_LENGTH, SIZE_OF_XLOG_RECORD, WalRecord} from './record.js'
import {isValidRmgrId, RM_MAX_BUILTIN_ID, RM_MIN_CUSTOM_ID} from './rmgr/index.js'
import {XLOG_SWITCH} from './rmgr/xlog.js'
import type {SegmentSource} from './segment-source.js'
import {DEFAULT_CHUNK, toNumber, type ReadStatus, type WalReadFailure, type WalReaderOptions} from './wal-reader-options.js'

/**
 * The synchronous half of the WAL reader: decodes and validates records out of the loaded
 * window (a chunk of one segment) and says which bytes it needs next. Page headers are
 * checked as they are entered, records spanning pages are gathered (RecordAssembly), every
 * header and CRC is checked. WalReader adds the I/O that loads the window.
 */
export abstract class RecordDecoder {
  /** The current record, valid until the next read() or fill(). */
  readonly record = new WalRecord()
  /** Set once the first record has been returned. */
  firstRecordLsn: number | undefined
  /** Set when the listing ended on an invalid record or missing data. */
  failure: WalReadFailure | undefined
  /** Set when reading stopped because the signal was aborted. */
  interrupted = false
  /** WAL format, known after the first page has been read. */
  version: WalVersion | undefined
  /** Reading stopped at the end position (-e), not on an error or the end of data. */
  endReached = false

  protected readonly chunkSize: number
  protected readonly startLsn: number
  protected readonly endLimit: number
  protected readonly follow: boolean
  protected readonly stopAt: number
  protected readonly prefetchDepth: number
  protected readonly decodeBlocks: boolean
  /** Continuing another reader's work (previousRecord given): no locating, exact checks. */
  protected readonly continuing: boolean

  // The window: a chunk of one segment, [winStart, winEnd) in LSN terms. winLimit is the
  // usable length (bytes loaded, and not past the end position) for the fast path.
  protected win: Uint8Array = new Uint8Array(0)
  protected winStart = 0
  protected winEnd = 0
  protected winLimit = 0
  protected readonly pool: ChunkPool
  /** The arena when the current window lives in it, and the window's address there. */
  protected winArena: CrcArena | undefined
  protected winAddress = 0
  /** Records the fast path reaches below this window offset passed a CRC run check. */
  protected checkedRunEnd = 0

  // Position and validation state.
  protected phase: 'locate' | 'records' = 'locate'
  protected locatePage: number
  protected pos = 0
  protected prevLsn = 0
  protected lastGoodLsn: number
  protected randomAccess = true
  // prevLsn split in 32-bit halves, for the fast path's prev-link check
  protected prevLo = 0
  protected prevHi = 0
  protected checkedPage = -1
  /** Timeline of the page being read (copied from `pages` for the fast path). */
  protected pageTli = 0
  protected readonly pages: PageSequence
  protected done = false
  protected needPos = 0
  protected needLen = 0
  protected retryPending = false

  /** A record spanning pages, while it is gathered. */
  protected readonly assembly: RecordAssembly

  constructor(protected readonly dir: SegmentSource, options: WalReaderOptions) {
    this.chunkSize = Math.min(options.chunkSize ?? DEFAULT_CHUNK, this.segmentSize)
    this.startLsn = toNumber(options.start, 'start')
    this.endLimit = options.end === undefined || options.end === 0 || options.end === 0n ? Number.POSITIVE_INFINITY : toNumber(options.end, 'end')
    this.follow = options.follow ?? false
    this.stopAt = options.stopAt ?? Number.POSITIVE_INFINITY
    this.decodeBlocks = options.blocks ?? false
    this.continuing = options.previousRecord !== undefined
    this.prefetchDepth = this.follow ? 0 : (options.prefetch ?? 3)
    this.pool = options.pool ?? new ChunkPool(this.chunkSize, this.prefetchDepth + 2)
    this.assembly = new RecordAssembly(this.pool.reassemblyBuffer(), this.pool.arena)
    if (this.pool.chunkSize !== this.chunkSize) throw new Error('ChunkPool chunk size differs from the reader\'s')
    this.pages = new PageSequence(dir)
    this.locatePage = this.startLsn - (this.startLsn % XLOG_BLCKSZ)
    this.lastGoodLsn = this.startLsn
    if (options.previousRecord !== undefined) {
      this.phase = 'records'
      this.pos = this.startLsn
      this.setPrev(options.previousRecord)
      this.randomAccess = false
    }
  }

  /** Timeline of the first page read, and of the latest (for checks across readers). */
  get firstPageTli(): number | undefined {
    return this.pages.firstTli
  }

  get lastPageTli(): number {
    return this.pages.latestPageTli
  }

  /** Start of the last record returned, if any. */
  get lastRecordLsn(): number | undefined {
    return this.firstRecordLsn === undefined ? undefined : this.lastGoodLsn
  }

  /** Where the next record would start (the end of the last one read). */
  get nextLsn(): number {
    return this.pos
  }

  /** The position reading was asked to start at. */
  get startPosition(): number {
    return this.startLsn
  }

  get segmentSize(): number {
    return this.dir.segmentSize
  }

  /** Decode the next record into `this.record`, or report that I/O (fill) or the end comes. */
  read(): ReadStatus {
    for (;;) {
      if (this.fastRecord()) return 'record'
      if (this.done) return 'end'
      if (this.retryPending) return 'need-data'
      if (this.phase === 'locate') {
        const s = this.locate()
        if (s !== undefined) return s
        continue
      }
      if (!this.assembly.active && this.pos >= this.stopAt) {
        this.done = true
        return 'end'
      }
      if (this.assembly.active) {
        const s = this.continueAssembly()
        if (s === 'record') {
          if (this.skipping()) continue
          return s
        }
        if (s !== undefined) return s
        continue
      }
      const s = this.readRecordAt()
      if (s === 'record') {
        if (this.skipping()) continue
        return s
      }
      if (s !== undefined) return s
    }
  }

  // ---- positioning ----

  /** pg_waldump's XLogFindNextRecord: skip continuation data to the first record boundary. */
  private locate(): ReadStatus | undefined {
    const page = this.locatePage
    const s = this.enterPage(page)
    if (s !== undefined) return s
    const o = page - this.winStart
    const hs = pageHeaderSizeAt(this.win, o)
    if (u16(this.win, o + 2) & XLP_FIRST_IS_CONTRECORD) {
      const rem = align8(u32(this.win, o + 16))
      if (rem >= XLOG_BLCKSZ - hs) {
        this.locatePage += XLOG_BLCKSZ
        return undefined
      }
      this.pos = page + hs + rem
    } else {
      this.pos = page + hs
    }
    this.phase = 'records'
    this.randomAccess = true
    return undefined
  }

  /** Records before the requested start are read and checked but not returned. */
  private skipping(): boolean {
    if (this.firstRecordLsn !== undefined) return false
    if (this.record.lsn < this.startLsn) return true
    this.firstRecordLsn = this.record.lsn
    return false
  }

  // ---- records ----

  /**
   * The common case in one place: the next record starts inside an already validated page,
   * lies wholly on that page, and is loaded. Anything else (page headers, records spanning
   * pages, errors, data still to read) takes the general path, which also produces the
   * error messages.
   */
  private fastRecord(): boolean {
    if (this.assembly.active || this.randomAccess || this.retryPending || this.done || this.pos >= this.stopAt) return false
    const rel = this.pos - this.winStart
    const pageOff = rel & (XLOG_BLCKSZ - 1)
    if (rel < 0 || pageOff === 0 || rel + SIZE_OF_XLOG_RECORD > this.winLimit) return false
    if (this.winStart + rel - pageOff !== this.checkedPage) return false
    const b = this.win
    const total = (b[rel]! | (b[rel + 1]! << 8) | (b[rel + 2]! << 16) | (b[rel + 3]! << 24)) >>> 0
    if (total < SIZE_OF_XLOG_RECORD || total > XLOG_BLCKSZ - pageOff || rel + total > this.winLimit) return false
    const rmid = b[rel + 17]!
    if (rmid > RM_MAX_BUILTIN_ID && !(rmid >= RM_MIN_CUSTOM_ID && this.version!.customRmgrs)) return false
    const prevLo = (b[rel + 8]! | (b[rel + 9]! << 8) | (b[rel + 10]! << 16) | (b[rel + 11]! << 24)) >>> 0
    const prevHi = (b[rel + 12]! | (b[rel + 13]! << 8) | (b[rel + 14]! << 16) | (b[rel + 15]! << 24)) >>> 0
    if (prevLo !== this.prevLo || prevHi !== this.prevHi) return false
    const arena = this.winArena
    if (arena === undefined) {
      if (!crcMatches(undefined, b, rel, total)) return false
    } else if (rel >= this.checkedRunEnd) {
      // Check this record and the ones after it on the page in one call; the walk below
      // takes the same steps, so records before checkedRunEnd are known good.
      const pageEnd = Math.min(rel - pageOff + XLOG_BLCKSZ, this.winLimit)
      this.checkedRunEnd = arena.checkRun(this.winAddress + rel, this.winAddress + pageEnd) - this.winAddress
      if (rel >= this.checkedRunEnd) return false // the general path reports the failure
    }
    const rec = this.record
    rec.buf = b
    rec.off = rel
    rec.lsn = this.pos
    rec.totalLength = total
    rec.xid = (b[rel + 4]! | (b[rel + 5]! << 8) | (b[rel + 6]! << 16) | (b[rel + 7]! << 24)) >>> 0
    rec.info = b[rel + 16]!
    rec.rmid = rmid
    rec.timeline = this.pageTli
    if (this.decodeBlocks) {
      if (rec.decodeWithBlocks() !== undefined) return false
    } else {
      if (decodeRecordBody(rec) !== undefined) return false
      rec.resetBlocks()
    }
    let end = this.pos + ((total + 7) & ~7)
    if (rmid === 0 && (rec.info & 0xf0) === XLOG_SWITCH) end = Math.ceil(end / this.segmentSize) * this.segmentSize
    rec.endLsn = end
    this.setPrev(this.pos)
    this.pos = end
    if (this.firstRecordLsn === undefined) return !this.skipping()
    return true
  }

  /**
   * Records in bulk, for statistics: hands `counter` the run of records fastRecord would
   * return next, on the current page, where it counts them with the same checks
   * (CrcArena.walkRun). The run stops at the first record that needs the general path (page
   * boundaries, records spanning pages, WAL switches, anything invalid), which read() then
   * takes. Returns how many were counted (0 without WebAssembly, or before the first record
   * has been read with read()).
   */
  countRecords(counter: RecordRunCounter): number {
    const arena = this.winArena
    if (arena === undefined || this.assembly.active || this.randomAccess || this.retryPending || this.done || this.firstRecordLsn === undefined) return 0
    if (this.pos >= this.stopAt) return 0
    const rel = this.pos - this.winStart
    const pageOff = rel & (XLOG_BLCKSZ - 1)
    if (rel < 0 || pageOff === 0 || this.pos - pageOff !== this.checkedPage) return 0
    // Only records wholly on this page, loaded, and (conservatively) ending before stopAt.
    const endRel = Math.min(rel - pageOff + XLOG_BLCKSZ, this.winLimit, this.stopAt - this.winStart)
    const lsnDelta = this.winStart - this.winAddress
    const n = counter.countRun(arena, this.winAddress + rel, this.winAddress + endRel, lsnDelta, this.prevLsn, this.version!)
    if (n === 0) return 0
    this.setPrev(counter.lastAddress + lsnDelta)
    this.pos = counter.stopAddress + lsnDelta
    return n
  }

  private setPrev(lsn: number): void {
    this.prevLsn = lsn
    this.lastGoodLsn = lsn
    this.prevLo = lsn >>> 0
    this.prevHi = Math.floor(lsn / 4294967296)
  }

  private readRecordAt(): ReadStatus | undefined {
    let pos = this.pos
    if (pos % XLOG_BLCKSZ === 0) {
      const s = this.enterPage(pos)
      if (s !== undefined) return s
      const o = pos - this.winStart
      const hs = pageHeaderSizeAt(this.win, o)
      if (u16(this.win, o + 2) & XLP_FIRST_IS_CONTRECORD) return this.fail(`contrecord is requested by ${lsnText(pos + hs)}`)
      pos += hs
      this.pos = pos
    } else if (this.checkedPage !== pos - (pos % XLOG_BLCKSZ)) {
      // First record of a page we have not validated yet (only after locate()).
      const s = this.enterPage(pos - (pos % XLOG_BLCKSZ))
      if (s !== undefined) return s
      const o = pos - (pos % XLOG_BLCKSZ) - this.winStart
      if (pos % XLOG_BLCKSZ < pageHeaderSizeAt(this.win, o)) return this.fail(`invalid record offset at ${lsnText(pos)}`)
    }
    const room = XLOG_BLCKSZ - (pos % XLOG_BLCKSZ)
    const headerPart = room < SIZE_OF_XLOG_RECORD ? room : SIZE_OF_XLOG_RECORD
    if (!this.avail(pos, headerPart)) return this.needBytes(pos, headerPart)
    const b = this.win
    const o = pos - this.winStart
    const total = u32(b, o)
    if (room >= SIZE_OF_XLOG_RECORD) {
      const err = this.checkHeader(b, o, pos)
      if (err) return this.fail(err)
    } else if (total < SIZE_OF_XLOG_RECORD) {
      return this.fail(`invalid record length at ${lsnText(pos)}: wanted ${SIZE_OF_XLOG_RECORD}, got ${total}`)
    }
    if (total > MAX_RECORD_LENGTH) return this.fail(`record length ${total} at ${lsnText(pos)} too long`)
    if (total <= room) {
      if (!this.avail(pos, total)) return this.needBytes(pos, total)
      if (!crcMatches(this.winArena, b, o, total)) return this.fail(`incorrect resource manager data checksum in record at ${lsnText(pos)}`)
      return this.emit(b, o, pos, total, pos + align8(total), this.pageTli)
    }
    // The record continues on following pages: gather it into the reassembly buffer.
    this.assembly.begin(b, o, room, pos, total, this.pageTli, room >= SIZE_OF_XLOG_RECORD)
    return undefined
  }

  private continueAssembly(): ReadStatus | undefined {
    const asm = this.assembly
    while (!asm.complete) {
      const page = asm.page
      const s = this.enterPage(page)
      if (s !== undefined) return s
      const o = page - this.winStart
      const hs = pageHeaderSizeAt(this.win, o)
      const len = asm.continuation(this.win, o, hs)
      if (len === OVERWRITTEN) {
        asm.active = false
        this.pos = page
        return undefined
      }
      if (typeof len === 'string') return this.fail(len)
      if (!this.avail(page, hs + len)) return this.needBytes(page, hs + len)
      asm.append(this.win, o, hs, len)
      if (!asm.headerOk) {
        const err = this.checkHeader(asm.buf, 0, asm.lsn)
        if (err) return this.fail(err)
        asm.headerOk = true
      }
    }
    asm.active = false
    if (!crcMatches(asm.arena, asm.buf, 0, asm.total)) return this.fail(`incorrect resource manager data checksum in record at ${lsnText(asm.lsn)}`)
    return this.emit(asm.buf, 0, asm.lsn, asm.total, asm.endLsn, asm.tli)
  }

  private emit(b: Uint8Array, o: number, lsn: number, total: number, end: number, tli: number): ReadStatus | undefined {
    const rec = this.record
    rec.buf = b
    rec.off = o
    rec.lsn = lsn
    rec.totalLength = total
    rec.xid = u32(b, o + 4)
    rec.info = b[o + 16]!
    rec.rmid = b[o + 17]!
    rec.timeline = tli
    const err = this.decodeBlocks ? rec.decodeWithBlocks() : decodeRecordBody(rec)
    if (err) return this.fail(err)
    if (!this.decodeBlocks) rec.resetBlocks()
    if (rec.rmid === 0 && (rec.info & 0xf0) === XLOG_SWITCH) {
      // The rest of the segment is unused: the next record starts the next segment.
      end = Math.ceil(end / this.segmentSize) * this.segmentSize
    }
    rec.endLsn = end
    this.setPrev(lsn)
    this.pos = end
    this.randomAccess = false
    return 'record'
  }

  private checkHeader(b: Uint8Array, o: number, lsn: number): string | undefined {
    const total = u32(b, o)
    if (total < SIZE_OF_XLOG_RECORD) return `invalid record length at ${lsnText(lsn)}: wanted ${SIZE_OF_XLOG_RECORD}, got ${total}`
    const rmid = b[o + 17]!
    if (!isValidRmgrId(rmid, this.version!)) {
      return `invalid resource manager ID ${rmid} at ${lsnText(lsn)}`
    }
    const prev = u64n(b, o + 8)
    if (this.randomAccess ? !(prev < lsn) : prev !== this.prevLsn) {
      return `record with incorrect prev-link ${lsnText(prev)} at ${lsnText(lsn)}`
    }
    return undefined
  }

  // ---- pages ----

  /** Make sure the header of the page at `page` is loaded and valid. */
  private enterPage(page: number): ReadStatus | undefined {
    if (!this.avail(page, SIZE_OF_SHORT_PAGE_HEADER)) return this.needBytes(page, SIZE_OF_SHORT_PAGE_HEADER)
    const o = page - this.winStart
    const hs = pageHeaderSizeAt(this.win, o)
    if (!this.avail(page, hs)) return this.needBytes(page, hs)
    if (this.checkedPage === page) return undefined
    const err = this.checkPage(this.win, o, page)
    if (err) return this.fail(err)
    this.checkedPage = page
    return undefined
  }

  protected checkPage(b: Uint8Array, o: number, page: number): string | undefined {
    const err = this.pages.check(b, o, page)
    if (this.version === undefined && this.pages.version !== undefined) {
      this.version = this.pages.version
      this.record.version = this.version
    }
    if (err === undefined) this.pageTli = this.pages.tli
    return err
  }

  // ---- data ----

  /** Are bytes [pos, pos+n) loaded, and before the end position? */
  protected avail(pos: number, n: number): boolean {
    return pos >= this.winStart && pos + n <= this.winEnd && pos + n <= this.endLimit
  }

  private needBytes(pos: number, n: number): ReadStatus {
    if (pos + n > this.endLimit) {
      // Like pg_waldump -e: a record not wholly before the end position is not shown.
      this.done = true
      this.endReached = true
      return 'end'
    }
    this.needPos = pos
    this.needLen = n
    return 'need-data'
  }

  protected fail(message: string): ReadStatus {
    this.assembly.active = false
    if (!this.continuing && (this.phase === 'locate' || this.firstRecordLsn === undefined)) {
      if (this.follow && this.phase === 'records') return this.retryLater()
      this.failure = {lsn: this.startLsn, message: `could not find a valid record after ${lsnText(this.startLsn)}: ${message}`}
      this.done = true
      return 'end'
    }
    if (this.follow) return this.retryLater()
    this.failure = {lsn: this.lastGoodLsn, message}
    this.done = true
    return 'end'
  }

  /** Follow mode: the end of valid WAL is where the server is still writing; look again. */
  protected retryLater(): ReadStatus {
    this.retryPending = true
    return 'need-data'
  }

}
