import {setTimeout as sleep} from 'node:timers/promises'

import {ReplError} from '../errors.js'
import {u16, u32, u64n} from './bytes.js'
import {CRC32C_INIT, CrcArena, crc32cFinish, crc32cUpdate} from './crc32c.js'
import {XLOG_BLCKSZ, type Lsn} from './lsn.js'
import {
  pageHeaderSizeAt,
  SIZE_OF_SHORT_PAGE_HEADER,
  XLP_ALL_FLAGS,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
  XLP_LONG_HEADER,
  walVersionByMagic,
  type WalVersion,
} from './page.js'
import {decodeRecordBody, lsnText, MAX_RECORD_LENGTH, SIZE_OF_XLOG_RECORD, WalRecord, XLOG_RECORD_CRC_OFFSET} from './record.js'
import {isValidRmgrId, RM_MAX_BUILTIN_ID, RM_MIN_CUSTOM_ID} from './rmgr/index.js'
import {XLOG_SWITCH} from './rmgr/xlog.js'
import type {SegmentFile, SegmentSource} from './segment-source.js'
import type {WalStats} from './stats.js'
import {walkFormat, WASM_STATS_TYPES, type WalkFormat} from './wal-stats-wasm.js'

/**
 * Walks WAL pages and yields validated, decoded records, the way PostgreSQL's xlogreader does
 * for pg_waldump: page headers checked (magic, flags, address, timeline), records reassembled
 * across pages and segments, every header and CRC checked, block references decoded.
 *
 * The hot path is synchronous and allocation-free: `read()` decodes the next record in place
 * (the returned WalRecord is reused) and asks for more data with 'need-data'; `fill()` does the
 * I/O, reading segments in large chunks and reading ahead the next ones while records are
 * decoded. `records()` wraps the two as an async iterator for callers that prefer it.
 */

export type ReadStatus = 'record' | 'need-data' | 'end'

export interface WalReaderOptions {
  /** First position to read; the first record at or after it is returned. */
  start: Lsn | number
  /** Stop before any record that does not end at or before this position (pg_waldump -e). */
  end?: Lsn | number
  /** Keep waiting for more WAL at the end instead of stopping (pg_waldump -f). */
  follow?: boolean
  /** Poll interval in follow mode. */
  followIntervalMs?: number
  signal?: AbortSignal
  /** Bytes read per I/O (a power of two; capped at the segment size). */
  chunkSize?: number
  /** Chunks read ahead while records are decoded. */
  prefetch?: number
  /** Decode block references of every record at once (printing needs them); otherwise they
   * are decoded when first used, and statistics never use them. */
  blocks?: boolean
  /** Where read buffers come from (chunkSize must match; one reader at a time); a private
   * pool otherwise. */
  pool?: ChunkPool
  /** Read no record that starts at or after this position (records starting before it are
   * read whole even if they run past it). */
  stopAt?: number
  /**
   * Continue where another reader stopped: `start` is where its last record ended, and that
   * record began at this position. The next record's prev-link is checked against it
   * exactly, as if reading had never stopped.
   */
  previousRecord?: number
}

/** Why a listing stopped early: the last good record and pg_waldump's reason. */
export interface WalReadFailure {
  /** LSN of the last record read successfully (or the start position when there was none). */
  lsn: number
  message: string
}

const DEFAULT_CHUNK = 4 * 1024 * 1024

function toNumber(lsn: Lsn | number, what: string): number {
  const n = typeof lsn === 'bigint' ? Number(lsn) : lsn
  if (!Number.isSafeInteger(n) || n < 0) throw new ReplError('UNSUPPORTED', `The ${what} position is beyond what this reader supports (2^53 bytes)`)
  return n
}

function align8(n: number): number {
  return n + ((8 - (n % 8)) % 8)
}

const REASSEMBLY_SIZE = 4 * XLOG_BLCKSZ

/**
 * Read buffers of one size, reused across readers (a worker reads many segments in turn).
 * They live in a CRC arena when WebAssembly is available, for the faster checksum engine.
 */
export class ChunkPool {
  readonly arena: CrcArena | undefined
  private readonly free: Uint8Array[] = []
  private reassembly: Uint8Array | undefined

  constructor(
    readonly chunkSize: number,
    capacity: number,
  ) {
    this.arena = CrcArena.create(chunkSize * capacity + REASSEMBLY_SIZE)
  }

  take(): Uint8Array {
    const b = this.free.pop()
    if (b) return b
    try {
      if (this.arena) return this.arena.alloc(this.chunkSize)
    } catch {
      // arena full: ordinary memory then
    }
    return new Uint8Array(new ArrayBuffer(this.chunkSize))
  }

  give(b: Uint8Array): void {
    if (b.length === this.chunkSize) this.free.push(b)
  }

  /** The buffer records spanning pages are gathered in (one per pool: readers take turns). */
  reassemblyBuffer(): Uint8Array {
    if (!this.reassembly) {
      try {
        this.reassembly = this.arena?.alloc(REASSEMBLY_SIZE)
      } catch {
        // arena full
      }
      this.reassembly ??= new Uint8Array(new ArrayBuffer(REASSEMBLY_SIZE))
    }
    return this.reassembly
  }
}

/** How much is read at once past `stopAt`, where only a spanning record's tail is wanted. */
const TAIL_READ = 64 * 1024

/** A chunk being read ahead. */
interface Prefetch {
  segno: number
  chunkOffset: number
  promise: Promise<number>
  buffer: Uint8Array
}

export class WalReader {
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

  private readonly chunkSize: number
  private readonly startLsn: number
  private readonly endLimit: number
  private readonly follow: boolean
  private readonly followIntervalMs: number
  private readonly signal: AbortSignal | undefined
  private readonly stopAt: number
  private readonly decodeBlocks: boolean
  /** Continuing another reader's work (previousRecord given): no locating, exact checks. */
  private readonly continuing: boolean

  // The window: a chunk of one segment, [winStart, winEnd) in LSN terms. winLimit is the
  // usable length (bytes loaded, and not past the end position) for the fast path.
  private win: Uint8Array = new Uint8Array(0)
  private winStart = 0
  private winEnd = 0
  private winLimit = 0
  private readonly pool: ChunkPool
  private readonly prefetches: Prefetch[] = []
  private readonly prefetchDepth: number
  /** The arena when the current window lives in it, and the window's address there. */
  private winArena: CrcArena | undefined
  private winAddress = 0
  /** Records the fast path reaches below this window offset passed a CRC run check. */
  private checkedRunEnd = 0
  private readonly files = new Map<number, Promise<SegmentFile | undefined>>()

  // Position and validation state.
  private phase: 'locate' | 'records' = 'locate'
  private locatePage: number
  private pos = 0
  private prevLsn = 0
  private lastGoodLsn: number
  private randomAccess = true
  // prevLsn split in 32-bit halves, for the fast path's prev-link check
  private prevLo = 0
  private prevHi = 0
  private checkedPage = -1
  private pageTli = 0
  private latestPagePtr = 0
  private latestPageTli = 0
  private done = false
  private needPos = 0
  private needLen = 0
  private retryPending = false

  // Reassembly of a record spanning pages.
  private asm: Uint8Array
  /** The arena when `asm` lives in it (until it has to grow). */
  private asmArena: CrcArena | undefined
  private asmActive = false
  private asmLsn = 0
  private asmTotal = 0
  private asmGot = 0
  private asmPage = 0
  private asmHeaderOk = false
  private asmTli = 0
  private asmLastHeader = 0
  private asmLastRemaining = 0

  /** The statistics countRecords last counted for (their per-type counts are in the arena). */
  private countTarget: WalStats | undefined
  private walkFormat: WalkFormat | undefined

  constructor(private readonly dir: SegmentSource, options: WalReaderOptions) {
    this.chunkSize = Math.min(options.chunkSize ?? DEFAULT_CHUNK, this.segmentSize)
    this.startLsn = toNumber(options.start, 'start')
    this.endLimit = options.end === undefined || options.end === 0 || options.end === 0n ? Number.POSITIVE_INFINITY : toNumber(options.end, 'end')
    this.follow = options.follow ?? false
    this.followIntervalMs = options.followIntervalMs ?? 1000
    this.signal = options.signal
    this.stopAt = options.stopAt ?? Number.POSITIVE_INFINITY
    this.decodeBlocks = options.blocks ?? false
    this.continuing = options.previousRecord !== undefined
    this.prefetchDepth = this.follow ? 0 : (options.prefetch ?? 3)
    this.pool = options.pool ?? new ChunkPool(this.chunkSize, this.prefetchDepth + 2)
    this.asm = this.pool.reassemblyBuffer()
    this.asmArena = this.pool.arena?.owns(this.asm) ? this.pool.arena : undefined
    if (this.pool.chunkSize !== this.chunkSize) throw new Error('ChunkPool chunk size differs from the reader\'s')
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
  firstPageTli: number | undefined

  get lastPageTli(): number {
    return this.latestPageTli
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

  /** Reading stopped at the end position (-e), not on an error or the end of data. */
  endReached = false

  async *records(): AsyncGenerator<WalRecord> {
    try {
      for (;;) {
        const s = this.read()
        if (s === 'record') yield this.record
        else if (s === 'need-data') await this.fill()
        else return
      }
    } finally {
      await this.close()
    }
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
      if (!this.asmActive && this.pos >= this.stopAt) {
        this.done = true
        return 'end'
      }
      if (this.asmActive) {
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

  /** Read more WAL as asked for by read(). Resolves without data only at the end. */
  async fill(): Promise<void> {
    if (this.done) return
    if (this.retryPending) {
      this.retryPending = false
      if (!(await this.pause())) return
      await this.invalidate()
    }
    if (this.signal?.aborted) return this.stop()
    const pos = this.needPos
    const segno = Math.floor(pos / this.segmentSize)
    const segOffset = pos - segno * this.segmentSize
    const chunkOffset = segOffset - (segOffset % this.chunkSize)
    let buffer: Uint8Array | undefined
    let got = 0
    const head = this.prefetches[0]
    if (head && head.segno === segno && head.chunkOffset === chunkOffset) {
      this.prefetches.shift()
      buffer = head.buffer
      got = await head.promise.catch(() => -1)
    }
    // No read-ahead of this chunk, or it failed: read now (and report what went wrong).
    if (buffer === undefined || got < 0) {
      if (buffer) this.pool.give(buffer)
      await this.dropPrefetches()
      const file = await this.segment(segno)
      if (!file) return
      buffer = this.pool.take()
      // Past stopAt only the tail of a record spanning into it is wanted: read just that.
      const segStart = segno * this.segmentSize
      const length = segStart + chunkOffset >= this.stopAt ? Math.min(this.chunkSize, Math.ceil((pos + this.needLen - segStart - chunkOffset) / TAIL_READ) * TAIL_READ) : this.chunkSize
      got = await file.read(buffer, 0, chunkOffset, length)
    }
    if (this.win.length > 0) this.pool.give(this.win)
    await this.closeFilesBefore(segno)
    this.win = buffer
    this.winArena = this.pool.arena?.owns(buffer) ? this.pool.arena : undefined
    this.winAddress = buffer.byteOffset
    this.checkedRunEnd = 0
    this.winStart = segno * this.segmentSize + chunkOffset
    this.winEnd = this.winStart + got
    this.winLimit = Math.min(got, this.endLimit - this.winStart)
    if (!this.avail(pos, this.needLen)) {
      const name = this.dir.segmentName(BigInt(segno))
      const have = Math.max(0, this.winEnd - pos)
      if (this.follow) this.retryPending = true
      else this.fail(`could not read from file ${name}, offset ${segOffset}: read ${have} of ${this.needLen}`)
      return
    }
    if (got === this.chunkSize) this.topUpPrefetches(segno, chunkOffset)
  }

  async close(): Promise<void> {
    this.foldCounts()
    await this.dropPrefetches()
    if (this.win.length > 0) this.pool.give(this.win)
    this.win = new Uint8Array(0)
    this.winStart = 0
    this.winEnd = 0
    this.winLimit = 0
    this.checkedRunEnd = 0
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map(async (f) => (await f.catch(() => undefined))?.close().catch(() => undefined)))
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
    if (this.asmActive || this.randomAccess || this.retryPending || this.done || this.pos >= this.stopAt) return false
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
   * Statistics without records: counts the records fastRecord would return next, with the
   * same checks, in WebAssembly a page at a time (CrcArena.walkRun). Stops at the first
   * record that needs the general path (page boundaries, records spanning pages, WAL
   * switches, anything invalid), which read() then takes. Returns how many were counted
   * (0 without WebAssembly, or before the first record has been read with read()). Their
   * per-type counts are added to `stats` when the reader closes.
   */
  countRecords(stats: WalStats): number {
    const arena = this.winArena
    if (arena === undefined || this.asmActive || this.randomAccess || this.retryPending || this.done || this.firstRecordLsn === undefined) return 0
    if (this.pos >= this.stopAt) return 0
    const rel = this.pos - this.winStart
    const pageOff = rel & (XLOG_BLCKSZ - 1)
    if (rel < 0 || pageOff === 0 || this.pos - pageOff !== this.checkedPage) return 0
    if (this.countTarget !== stats) {
      this.foldCounts()
      this.countTarget = stats
    }
    const address = this.winAddress + rel
    // Only records wholly on this page, loaded, and (conservatively) ending before stopAt.
    const endRel = Math.min(rel - pageOff + XLOG_BLCKSZ, this.winLimit, this.stopAt - this.winStart)
    const lsnDelta = this.winStart - this.winAddress
    const stop = arena.walkRun(address, this.winAddress + endRel, lsnDelta, this.prevLsn, (this.walkFormat ??= walkFormat(this.version!)))
    const n = arena.walkedCount
    if (n === 0) return 0
    this.setPrev(arena.walkedLast + lsnDelta)
    this.pos = stop + lsnDelta
    stats.count += n
    stats.endLsn = this.pos
    return n
  }

  /** Add the per-type counts the WebAssembly walker gathered to the statistics they belong to. */
  private foldCounts(): void {
    if (this.countTarget && this.pool.arena) {
      this.countTarget.addTypeCounts(this.pool.arena.walkCounts, WASM_STATS_TYPES)
      this.pool.arena.walkCounts.fill(0)
    }
    this.countTarget = undefined
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
    this.asmActive = true
    this.asmLsn = pos
    this.asmTotal = total
    this.asmGot = room
    this.asmPage = pos + room
    this.asmHeaderOk = room >= SIZE_OF_XLOG_RECORD
    this.asmTli = this.pageTli
    this.asm.set(b.subarray(o, o + room), 0)
    return undefined
  }

  private continueAssembly(): ReadStatus | undefined {
    while (this.asmGot < this.asmTotal) {
      const page = this.asmPage
      if (!this.avail(page, SIZE_OF_SHORT_PAGE_HEADER)) return this.needBytes(page, SIZE_OF_SHORT_PAGE_HEADER)
      let o = page - this.winStart
      const hs = pageHeaderSizeAt(this.win, o)
      const s = this.enterPage(page)
      if (s !== undefined) return s
      o = page - this.winStart
      const info = u16(this.win, o + 2)
      if (info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
        // The rest of this record was never written; the server wrote new WAL from here.
        this.asmActive = false
        this.pos = page
        return undefined
      }
      if (!(info & XLP_FIRST_IS_CONTRECORD)) return this.fail(`there is no contrecord flag at ${lsnText(this.asmLsn)}`)
      const rem = u32(this.win, o + 16)
      if (rem === 0 || this.asmTotal !== rem + this.asmGot) {
        return this.fail(`invalid contrecord length ${rem} (expected ${this.asmTotal - this.asmGot}) at ${lsnText(this.asmLsn)}`)
      }
      const len = Math.min(XLOG_BLCKSZ - hs, rem)
      if (!this.avail(page, hs + len)) return this.needBytes(page, hs + len)
      o = page - this.winStart
      if (this.asm.length < this.asmTotal) this.growAssembly()
      this.asm.set(this.win.subarray(o + hs, o + hs + len), this.asmGot)
      this.asmGot += len
      if (!this.asmHeaderOk) {
        const err = this.checkHeader(this.asm, 0, this.asmLsn)
        if (err) return this.fail(err)
        this.asmHeaderOk = true
      }
      this.asmPage += XLOG_BLCKSZ
      this.asmLastHeader = hs
      this.asmLastRemaining = rem
    }
    this.asmActive = false
    if (!crcMatches(this.asmArena, this.asm, 0, this.asmTotal)) return this.fail(`incorrect resource manager data checksum in record at ${lsnText(this.asmLsn)}`)
    const end = this.asmPage - XLOG_BLCKSZ + this.asmLastHeader + align8(this.asmLastRemaining)
    return this.emit(this.asm, 0, this.asmLsn, this.asmTotal, end, this.asmTli)
  }

  private growAssembly(): void {
    // Only after xlp_rem_len confirmed the length, so garbage lengths never allocate.
    let size = this.asm.length
    while (size < this.asmTotal) size *= 2
    const bigger = new Uint8Array(new ArrayBuffer(size))
    bigger.set(this.asm.subarray(0, this.asmGot))
    this.asm = bigger
    this.asmArena = undefined
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

  private checkPage(b: Uint8Array, o: number, page: number): string | undefined {
    const segno = Math.floor(page / this.segmentSize)
    const offset = page - segno * this.segmentSize
    const where = (): string => `in log segment ${this.dir.segmentName(BigInt(segno))}, offset ${offset}`
    const magic = u16(b, o)
    if (!this.version) {
      const v = walVersionByMagic(magic)
      if (!v) return `invalid magic number ${hex4(magic)} ${where()} (not a WAL format of PostgreSQL 13 to 18)`
      this.version = v
      this.record.version = v
    } else if (magic !== this.version.magic) {
      return `invalid magic number ${hex4(magic)} ${where()}`
    }
    const info = u16(b, o + 2)
    if (info & ~XLP_ALL_FLAGS) return `invalid info bits ${hex4(info)} ${where()}`
    if (info & XLP_LONG_HEADER) {
      if (u32(b, o + 32) !== this.segmentSize) return 'WAL file is from different database system: incorrect segment size in page header'
      if (u32(b, o + 36) !== XLOG_BLCKSZ) return 'WAL file is from different database system: incorrect XLOG_BLCKSZ in page header'
    } else if (offset === 0) {
      return `invalid info bits ${hex4(info)} ${where()}`
    }
    const address = u64n(b, o + 8)
    if (address !== page) return `unexpected pageaddr ${lsnText(address)} ${where()}`
    const tli = u32(b, o + 4)
    if (page > this.latestPagePtr && tli < this.latestPageTli) {
      return `out-of-sequence timeline ID ${tli} (after ${this.latestPageTli}) ${where()}`
    }
    this.latestPagePtr = page
    this.latestPageTli = tli
    this.pageTli = tli
    this.firstPageTli ??= tli
    return undefined
  }

  // ---- data ----

  /** Are bytes [pos, pos+n) loaded, and before the end position? */
  private avail(pos: number, n: number): boolean {
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

  private fail(message: string): ReadStatus {
    this.asmActive = false
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
  private retryLater(): ReadStatus {
    this.retryPending = true
    return 'need-data'
  }

  private stop(): void {
    this.interrupted = true
    this.done = true
  }

  private async pause(): Promise<boolean> {
    try {
      await sleep(this.followIntervalMs, undefined, {signal: this.signal})
      return true
    } catch {
      this.stop()
      return false
    }
  }

  /** Forget loaded data so it is read again from disk (files may have grown or been renamed). */
  private async invalidate(): Promise<void> {
    await this.close()
    this.checkedPage = -1
    this.asmActive = false
    // Reload from the page the next record starts on; it is validated again.
    const from = this.phase === 'locate' ? this.locatePage : this.pos
    this.needPos = from - (from % XLOG_BLCKSZ)
    this.needLen = SIZE_OF_SHORT_PAGE_HEADER
  }

  /** Keep `prefetchDepth` chunks after the one at (segno, chunkOffset) being read. */
  private topUpPrefetches(segno: number, chunkOffset: number): void {
    const last = this.prefetches[this.prefetches.length - 1]
    let nextSeg = last ? last.segno : segno
    let nextOff = last ? last.chunkOffset : chunkOffset
    while (this.prefetches.length < this.prefetchDepth) {
      nextOff += this.chunkSize
      if (nextOff >= this.segmentSize) {
        nextSeg += 1
        nextOff = 0
      }
      const at = nextSeg * this.segmentSize + nextOff
      if (at >= this.endLimit || at >= this.stopAt) return
      const buffer = this.pool.take()
      const chunk = nextOff
      const promise = this.segment(nextSeg, true).then((file) => (file ? file.read(buffer, 0, chunk, this.chunkSize) : -1))
      promise.catch(() => -1) // a failed read-ahead is retried, and reported, by the real read
      this.prefetches.push({segno: nextSeg, chunkOffset: nextOff, promise, buffer})
    }
  }

  private async dropPrefetches(): Promise<void> {
    const pending = this.prefetches.splice(0)
    for (const pf of pending) {
      await pf.promise.catch(() => 0) // its buffer is free again only once the read settles
      this.pool.give(pf.buffer)
    }
  }

  /** Segments before the current one are done with (read-ahead only goes forward). */
  private async closeFilesBefore(segno: number): Promise<void> {
    for (const [n, f] of this.files) {
      if (n < segno) {
        this.files.delete(n)
        await (await f.catch(() => undefined))?.close().catch(() => undefined)
      }
    }
  }

  /** The open file of segment `segno`; in follow mode waits for it to appear. */
  private async segment(segno: number, readAhead = false): Promise<SegmentFile | undefined> {
    for (;;) {
      // Cache the opening itself: read-ahead asks for the same new segment several times at once.
      let opening = this.files.get(segno)
      if (!opening) {
        opening = this.dir.openSegment(BigInt(segno))
        this.files.set(segno, opening)
        opening.catch(() => undefined)
      }
      const file = await opening
      if (file) {
        if (readAhead || this.needPos % this.segmentSize === 0) return file
        await this.checkFirstPage(file, segno)
        return this.done ? undefined : file
      }
      this.files.delete(segno)
      if (readAhead) return undefined
      if (!this.follow) {
        this.fail(`could not find file "${this.dir.segmentName(BigInt(segno))}"`)
        return undefined
      }
      if (!(await this.pause())) return undefined
    }
  }

  /** Entering a segment in the middle: its first page's long header is still checked. */
  private async checkFirstPage(file: SegmentFile, segno: number): Promise<void> {
    const page = new Uint8Array(XLOG_BLCKSZ)
    const n = await file.read(page, 0, 0, XLOG_BLCKSZ)
    if (n < XLOG_BLCKSZ) return
    const err = this.checkPage(page, 0, segno * this.segmentSize)
    if (err) this.fail(err)
  }
}

/** Above this, the native engine beats WebAssembly despite its call overhead. */
const NATIVE_CRC_FROM = 4096

/** The record CRC covers the payload first, then the header up to xl_crc. `arena` is given
 * when `b` lives in it. */
function crcMatches(arena: CrcArena | undefined, b: Uint8Array, o: number, total: number): boolean {
  if (arena !== undefined && total < NATIVE_CRC_FROM) return arena.checkRecord(b, o, total)
  const crc = crc32cUpdate(crc32cUpdate(CRC32C_INIT, b, o + SIZE_OF_XLOG_RECORD, o + total), b, o, o + XLOG_RECORD_CRC_OFFSET)
  return crc32cFinish(crc) === u32(b, o + XLOG_RECORD_CRC_OFFSET)
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}
