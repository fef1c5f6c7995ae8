import {close, closeSync, constants as fsc, fdatasyncSync, fstatSync, fsync, fsyncSync, ftruncateSync, openSync, readFileSync, rename, renameSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {ReplError, fromSystemError} from '../errors.js'
import {lsnToSegment, segmentOffset, segmentStartLsn, walFileName, type Lsn} from '../wal/lsn.js'
import {compressionSuffix, createSegmentEncoder, type SegmentEncoder, type WalCompression} from './segment-compression.js'
import type {WalSink} from './wal-sink.js'

/**
 * A WalSink writing a directory of WAL segment files the way pg_receivewal does, so the
 * directory can serve restore_command and be resumed after any crash:
 *
 * - a segment is written as NAME.partial (NAME.gz.partial / NAME.lz4.partial when compressed)
 *   and renamed to NAME only once complete and fsynced, with the directory fsynced after;
 *   a file without .partial is therefore always a whole, durable segment;
 * - an uncompressed .partial is sized to a full segment from the start (zeros, sparse unless
 *   `preallocate`), so pg_receivewal accepts our .partial files and we accept its;
 * - an existing .partial is reopened in place, not truncated: bytes received earlier stay
 *   until the server sends them again (compressed ones must be rewritten from scratch);
 * - flush() fsyncs the open segment (and, the first time, the directory, so the file itself
 *   survives a crash) and reports how far WAL is durable;
 * - a completed segment is finished (fsync, close, rename, directory fsync) in the background
 *   while the next one is being written — pg_receivewal waits for that fsync; finishing runs
 *   strictly in order, so a segment never becomes final before the one preceding it.
 *
 * Writes are synchronous on purpose, as in pg_receivewal: the loop waits for each write
 * anyway, and on a busy machine every hop to libuv's thread pool and back costs a scheduler
 * wake-up — measurably slower than the system calls themselves. Incoming WAL keeps arriving in
 * the socket buffer meanwhile.
 */

export interface WalDirectorySinkOptions {
  directory: string
  segmentSize: number
  compression?: WalCompression
  /** fsync files and the directory (default true; false is --no-sync). */
  sync?: boolean
  /** Write zeros into new .partial files instead of leaving them sparse (cheaper fsyncs later, as for --synchronous). */
  preallocate?: boolean
  /** Called after a segment was completed, fsynced and renamed to its final name. */
  onSegment?: (segment: FinishedSegment) => void
  /** Called when a timeline history file was stored. */
  onHistoryFile?: (name: string) => void
}

export interface FinishedSegment {
  /** File name in the directory, e.g. 000000010000000000000003 or …03.gz. */
  file: string
  timeline: number
  /** First and end (exclusive) LSN of the segment. */
  startLsn: Lsn
  endLsn: Lsn
  /** Size of the file on disk (compressed size when compressed). */
  bytes: number
}

interface OpenSegment {
  timeline: number
  segno: bigint
  /** Final name (with compression suffix, without .partial). */
  name: string
  fd: number
  /** Uncompressed bytes of the segment written so far (all from its start). */
  written: number
  /** Uncompressed bytes known durable. */
  flushed: number
  encoder?: SegmentEncoder
  /** Compressed files: append position. */
  fileBytes: number
  /** The directory was fsynced since the file was created. */
  entryDurable: boolean
}

const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const renameAsync = promisify(rename)
/** Segments being finished in the background at most; more and write() waits. */
const MAX_FINISHING = 2

const PARTIAL = '.partial'
const ZEROS = Buffer.alloc(1024 * 1024)

export class WalDirectorySink implements WalSink {
  private readonly sync: boolean
  private readonly suffix: string
  private current?: OpenSegment
  private durable: Lsn = 0n
  /** Completed segments being finished, in order; rejected once one fails. */
  private finishing: Promise<void> = Promise.resolve()
  private finishingCount = 0
  private failure?: unknown

  constructor(private readonly options: WalDirectorySinkOptions) {
    this.sync = options.sync ?? true
    this.suffix = compressionSuffix(options.compression?.algorithm ?? 'none')
  }

  async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    this.throwIfFailed()
    if (this.finishingCount >= MAX_FINISHING) await this.finished()
    const {segmentSize} = this.options
    let position = start
    let offset = 0
    while (offset < data.length) {
      const segno = lsnToSegment(position, segmentSize)
      const inSegment = segmentOffset(position, segmentSize)
      let segment = this.current
      if (!segment || segment.timeline !== timeline || segment.segno !== segno) {
        if (segment) await this.closeSegment(segment)
        if (inSegment !== 0) {
          throw new ReplError('PROTOCOL_ERROR', `WAL for segment ${walFileName(timeline, segno, segmentSize)} must start at its beginning, got offset ${inSegment}`)
        }
        segment = this.openSegment(timeline, segno)
      }
      if (inSegment !== segment.written) {
        throw new ReplError('PROTOCOL_ERROR', `Non-contiguous write to ${segment.name}: offset ${inSegment}, expected ${segment.written}`)
      }
      const n = Math.min(data.length - offset, segmentSize - inSegment)
      const piece = data.subarray(offset, offset + n)
      if (segment.encoder) this.append(segment, segment.encoder.push(piece))
      else this.io(`Cannot write WAL file "${this.partialName(segment)}"`, () => writeAll(segment.fd, piece, inSegment))
      segment.written += n
      offset += n
      position += BigInt(n)
      if (segment.written === segmentSize) this.completeSegment(segment)
    }
  }

  async flush(): Promise<Lsn> {
    await this.finished()
    const segment = this.current
    if (segment && segment.flushed < segment.written) {
      if (segment.encoder) this.append(segment, segment.encoder.flush())
      if (this.sync) {
        this.io(`Cannot fsync WAL file "${this.partialName(segment)}"`, () => fdatasyncSync(segment.fd))
        if (!segment.entryDurable) this.io(`Cannot fsync directory "${this.options.directory}"`, () => this.syncDirectory())
      }
      segment.entryDurable = true
      segment.flushed = segment.written
      this.durable = this.segmentStart(segment) + BigInt(segment.written)
    }
    return this.durable
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    const path = join(this.options.directory, name)
    let existing: Buffer | undefined
    try {
      existing = readFileSync(path)
    } catch {
      existing = undefined
    }
    if (existing?.equals(content)) return
    const temp = `${path}.tmp`
    this.io(`Cannot write timeline history file "${path}"`, () => {
      const fd = openSync(temp, 'w', 0o600)
      try {
        writeAll(fd, content, 0)
        if (this.sync) fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(temp, path)
      this.syncDirectory()
    })
    this.options.onHistoryFile?.(name)
  }

  async close(_options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void> {
    // Whatever the reason, what was written stays: complete segments are already final, the
    // last one stays .partial (fsynced) for the next run to continue.
    const segment = this.current
    if (segment) await this.closeSegment(segment)
    await this.finished()
    this.io(`Cannot fsync directory "${this.options.directory}"`, () => this.syncDirectory())
  }

  private segmentStart(segment: OpenSegment): Lsn {
    return segmentStartLsn(segment.segno, this.options.segmentSize)
  }

  private partialName(segment: OpenSegment): string {
    return segment.name + PARTIAL
  }

  private openSegment(timeline: number, segno: bigint): OpenSegment {
    const {directory, segmentSize, compression} = this.options
    const name = walFileName(timeline, segno, segmentSize) + this.suffix
    const path = join(directory, name + PARTIAL)
    const compressed = (compression?.algorithm ?? 'none') !== 'none'
    const fd = this.io(`Cannot open WAL file "${path}"`, () => {
      // Uncompressed: reopen without truncating (see above). Compressed: start a new stream.
      const fd = openSync(path, compressed ? 'w' : fsc.O_WRONLY | fsc.O_CREAT, 0o600)
      try {
        if (!compressed) {
          const {size} = fstatSync(fd)
          if (size !== segmentSize) {
            if (this.options.preallocate && size < segmentSize) {
              zeroFill(fd, size, segmentSize)
              // Blocks allocated and durable now keep the fdatasync after each write cheap.
              if (this.sync) fsyncSync(fd)
            } else {
              ftruncateSync(fd, segmentSize)
            }
          }
        }
      } catch (err) {
        closeSync(fd)
        throw err
      }
      return fd
    })
    const segment: OpenSegment = {timeline, segno, name, fd, written: 0, flushed: 0, fileBytes: 0, entryDurable: false}
    if (compressed) segment.encoder = createSegmentEncoder(compression!)
    this.current = segment
    return segment
  }

  /** A full segment: fsync, close, rename into place, fsync the directory — queued behind earlier ones. */
  private completeSegment(segment: OpenSegment): void {
    const {directory} = this.options
    const partial = join(directory, this.partialName(segment))
    const final = join(directory, segment.name)
    if (segment.encoder) this.append(segment, segment.encoder.end())
    this.current = undefined
    const startLsn = this.segmentStart(segment)
    const endLsn = startLsn + BigInt(this.options.segmentSize)
    const bytes = segment.encoder ? segment.fileBytes : this.options.segmentSize
    this.enqueue(async () => {
      try {
        if (this.sync) await this.ioAsync(`Cannot fsync WAL file "${partial}"`, () => fsyncAsync(segment.fd))
      } finally {
        await closeAsync(segment.fd).catch(() => {})
      }
      await this.ioAsync(`Cannot rename "${partial}" to "${final}"`, () => renameAsync(partial, final))
      if (this.sync) await this.ioAsync(`Cannot fsync directory "${directory}"`, async () => this.syncDirectory())
      this.durable = endLsn
      this.options.onSegment?.({file: segment.name, timeline: segment.timeline, startLsn, endLsn, bytes})
    }, () => closeAsync(segment.fd).catch(() => {}))
  }

  /** An incomplete segment stays .partial; compressed ones get their trailer so they stay readable. */
  private async closeSegment(segment: OpenSegment): Promise<void> {
    this.current = undefined
    try {
      await this.finished()
      if (segment.encoder) this.append(segment, segment.encoder.end())
      this.io(`Cannot fsync WAL file "${this.partialName(segment)}"`, () => {
        if (this.sync) fsyncSync(segment.fd)
      })
      this.durable = this.segmentStart(segment) + BigInt(segment.written)
    } finally {
      try {
        closeSync(segment.fd)
      } catch {
        // Closing after a failed write: the error that matters was already raised.
      }
    }
  }

  /** Run `job` after the finishing queued before it; `skipped` instead when one of those failed. */
  private enqueue(job: () => Promise<void>, skipped: () => Promise<void>): void {
    this.finishingCount++
    this.finishing = this.finishing
      .then(job, async (err) => {
        await skipped()
        throw err
      })
      .finally(() => this.finishingCount--)
    // Remember a failure at once; it is raised by the next write(), flush() or close().
    this.finishing.catch((err) => (this.failure ??= err))
  }

  /** Wait until every completed segment is final; raise the first failure. */
  private async finished(): Promise<void> {
    await this.finishing
    this.throwIfFailed()
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure
  }

  private append(segment: OpenSegment, pieces: Buffer[]): void {
    for (const piece of pieces) {
      if (piece.length === 0) continue
      this.io(`Cannot write WAL file "${this.partialName(segment)}"`, () => writeAll(segment.fd, piece, segment.fileBytes))
      segment.fileBytes += piece.length
    }
  }

  private syncDirectory(): void {
    if (!this.sync) return
    const fd = openSync(this.options.directory, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  }

  private io<T>(action: string, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      throw fromSystemError(err, action)
    }
  }

  private async ioAsync<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw fromSystemError(err, action)
    }
  }
}

/** write(2) may write less than asked (e.g. close to a full disk): loop until done. */
function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0
  while (done < data.length) {
    const written = writeSync(fd, data, done, data.length - done, position + done)
    if (written === 0) throw Object.assign(new Error('no space left on device'), {code: 'ENOSPC'})
    done += written
  }
}

function zeroFill(fd: number, from: number, to: number): void {
  for (let p = from; p < to; p += ZEROS.length) writeAll(fd, ZEROS.subarray(0, Math.min(ZEROS.length, to - p)), p)
}
