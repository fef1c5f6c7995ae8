import {closeSync, constants as fsc, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, writeSync} from 'node:fs'
import {join} from 'node:path'

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
 * - flush() fsyncs the open segment and reports how far WAL is durable.
 *
 * File I/O is synchronous on purpose, as in pg_receivewal: the loop waits for each write
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
}

const PARTIAL = '.partial'
const ZEROS = Buffer.alloc(1024 * 1024)

export class WalDirectorySink implements WalSink {
  private readonly sync: boolean
  private readonly suffix: string
  private current?: OpenSegment
  private durable: Lsn = 0n

  constructor(private readonly options: WalDirectorySinkOptions) {
    this.sync = options.sync ?? true
    this.suffix = compressionSuffix(options.compression?.algorithm ?? 'none')
  }

  async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    const {segmentSize} = this.options
    let position = start
    let offset = 0
    while (offset < data.length) {
      const segno = lsnToSegment(position, segmentSize)
      const inSegment = segmentOffset(position, segmentSize)
      let segment = this.current
      if (!segment || segment.timeline !== timeline || segment.segno !== segno) {
        if (segment) this.closeSegment(segment)
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
    const segment = this.current
    if (segment && segment.flushed < segment.written) {
      if (segment.encoder) this.append(segment, segment.encoder.flush())
      if (this.sync) this.io(`Cannot fsync WAL file "${this.partialName(segment)}"`, () => fdatasyncSync(segment.fd))
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
    if (segment) this.closeSegment(segment)
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
            if (this.options.preallocate && size < segmentSize) zeroFill(fd, size, segmentSize)
            else ftruncateSync(fd, segmentSize)
          }
        }
        if (this.sync) {
          // Make the new file itself durable before WAL in it is reported flushed.
          fsyncSync(fd)
          this.syncDirectory()
        }
      } catch (err) {
        closeSync(fd)
        throw err
      }
      return fd
    })
    const segment: OpenSegment = {timeline, segno, name, fd, written: 0, flushed: 0, fileBytes: 0}
    if (compressed) segment.encoder = createSegmentEncoder(compression!)
    this.current = segment
    return segment
  }

  /** A full segment: finish, fsync, close, rename into place, fsync the directory. */
  private completeSegment(segment: OpenSegment): void {
    const {directory} = this.options
    const partial = join(directory, this.partialName(segment))
    const final = join(directory, segment.name)
    if (segment.encoder) this.append(segment, segment.encoder.end())
    this.current = undefined
    this.io(`Cannot finish WAL file "${partial}"`, () => {
      try {
        if (this.sync) fsyncSync(segment.fd)
      } finally {
        closeSync(segment.fd)
      }
    })
    this.io(`Cannot rename "${partial}" to "${final}"`, () => {
      renameSync(partial, final)
      this.syncDirectory()
    })
    const endLsn = this.segmentStart(segment) + BigInt(this.options.segmentSize)
    this.durable = endLsn
    this.options.onSegment?.({
      file: segment.name,
      timeline: segment.timeline,
      startLsn: this.segmentStart(segment),
      endLsn,
      bytes: segment.encoder ? segment.fileBytes : this.options.segmentSize,
    })
  }

  /** An incomplete segment stays .partial; compressed ones get their trailer so they stay readable. */
  private closeSegment(segment: OpenSegment): void {
    this.current = undefined
    try {
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
