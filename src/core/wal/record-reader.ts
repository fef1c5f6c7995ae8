import {setTimeout as sleep} from 'node:timers/promises'

import {XLOG_BLCKSZ} from './lsn.js'
import {SIZE_OF_SHORT_PAGE_HEADER} from './page.js'
import {ReadAhead} from './read-ahead.js'
import {RecordDecoder} from './record-decoder.js'
import type {WalRecord} from './record.js'
import type {SegmentFile, SegmentSource} from './segment-source.js'
import type {WalReaderOptions} from './wal-reader-options.js'

export {ChunkPool} from './chunk-pool.js'
export type {RecordRunCounter} from './record-run-counter.js'
export type {ReadStatus, WalReadFailure, WalReaderOptions} from './wal-reader-options.js'

/** How much is read at once past `stopAt`, where only a spanning record's tail is wanted. */
const TAIL_READ = 64 * 1024

/**
 * Walks WAL pages and yields validated, decoded records, the way PostgreSQL's xlogreader does
 * for pg_waldump: page headers checked (magic, flags, address, timeline), records reassembled
 * across pages and segments, every header and CRC checked, block references decoded.
 *
 * The hot path is synchronous and allocation-free: `read()` (RecordDecoder) decodes the next
 * record in place (the returned WalRecord is reused) and asks for more data with 'need-data';
 * `fill()` does the I/O, reading segments in large chunks and reading ahead the next ones
 * while records are decoded. `records()` wraps the two as an async iterator for callers that
 * prefer it.
 */
export class WalReader extends RecordDecoder {
  private readonly followIntervalMs: number
  private readonly signal: AbortSignal | undefined
  private readonly ahead: ReadAhead

  constructor(dir: SegmentSource, options: WalReaderOptions) {
    super(dir, options)
    this.followIntervalMs = options.followIntervalMs ?? 1000
    this.signal = options.signal
    this.ahead = new ReadAhead(dir, this.pool, this.prefetchDepth, Math.min(this.endLimit, this.stopAt))
  }

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
    let buffer: Uint8Array
    let got: number
    const ahead = await this.ahead.take(segno, chunkOffset)
    if (ahead) {
      buffer = ahead.buffer
      got = ahead.got
    } else {
      // Not read ahead, or that read failed: read now (and report what went wrong).
      const file = await this.segment(segno)
      if (!file) return
      buffer = this.pool.take()
      // Past stopAt only the tail of a record spanning into it is wanted: read just that.
      const segStart = segno * this.segmentSize
      const length = segStart + chunkOffset >= this.stopAt ? Math.min(this.chunkSize, Math.ceil((pos + this.needLen - segStart - chunkOffset) / TAIL_READ) * TAIL_READ) : this.chunkSize
      got = await file.read(buffer, 0, chunkOffset, length)
    }
    if (this.win.length > 0) this.pool.give(this.win)
    await this.ahead.closeBefore(segno)
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
    if (got === this.chunkSize) this.ahead.topUp(segno, chunkOffset)
  }

  async close(): Promise<void> {
    await this.ahead.drop()
    if (this.win.length > 0) this.pool.give(this.win)
    this.win = new Uint8Array(0)
    this.winStart = 0
    this.winEnd = 0
    this.winLimit = 0
    this.checkedRunEnd = 0
    await this.ahead.closeAll()
  }

  // ---- I/O ----

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
    this.assembly.active = false
    // Reload from the page the next record starts on; it is validated again.
    const from = this.phase === 'locate' ? this.locatePage : this.pos
    this.needPos = from - (from % XLOG_BLCKSZ)
    this.needLen = SIZE_OF_SHORT_PAGE_HEADER
  }

  /** The open file of segment `segno`; in follow mode waits for it to appear. */
  private async segment(segno: number): Promise<SegmentFile | undefined> {
    for (;;) {
      const file = await this.ahead.open(segno)
      if (file) {
        if (this.needPos % this.segmentSize === 0) return file
        await this.checkFirstPage(file, segno)
        return this.done ? undefined : file
      }
      this.ahead.forget(segno)
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

