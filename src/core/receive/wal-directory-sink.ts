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
 *   while WAL for the next one keeps arriving — pg_receivewal stops receiving for that fsync.
 *   The next segment's file is only created once the previous one has its final name (its
 *   WAL waits in memory until then, up to a bound): there is never a .partial after an
 *   unfinished segment, so a restart — which continues after the newest file — cannot skip one.
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
  /** Undefined until the file exists (see above); its first bytes wait in the sink's hold buffer meanwhile. */
  fd?: number
  /** Bytes from the start of the file held in memory. */
  heldBytes: number
  /** Uncompressed bytes of the segment written so far (all from its start). */
  written: number
  /** Uncompressed bytes known durable. */
  flushed: number
  encoder?: SegmentEncoder
  /** Bytes in the file: the append position of a compressed file. */
  fileBytes: number
  /** The directory was fsynced since the file was created. */
  entryDurable: boolean
}

const PARTIAL = '.partial'
const ZEROS = Buffer.alloc(1024 * 1024)
/** WAL held in memory while the previous segment is being finished; past it, writes wait. */
const MAX_HELD_BYTES = 8 * 1024 * 1024

const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const renameAsync = promisify(rename)

export class WalDirectorySink implements WalSink {
  private readonly sync: boolean
  private readonly suffix: string
  private current?: OpenSegment
  private durable: Lsn = 0n
  /** The completed segment being finished, if any; rejected when that failed. */
  private finishing?: Promise<void>
  /** True while `finishing` runs. */
  private finishingBusy = false
  private failure?: unknown
  /** Reused for every segment whose file waits (allocated on first use). */
  private hold?: Buffer

  constructor(private readonly options: WalDirectorySinkOptions) {
    this.sync = options.sync ?? true
    this.suffix = compressionSuffix(options.compression?.algorithm ?? 'none')
  }

  async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    this.throwIfFailed()
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
        segment = this.startSegment(timeline, segno)
      }
      if (inSegment !== segment.written) {
        throw new ReplError('PROTOCOL_ERROR', `Non-contiguous write to ${segment.name}: offset ${inSegment}, expected ${segment.written}`)
      }
      const n = Math.min(data.length - offset, segmentSize - inSegment)
      // Compressed output can exceed its input a little: leave room.
      if (segment.fd === undefined && (!this.finishingBusy || segment.heldBytes + n + 65536 > MAX_HELD_BYTES)) await this.createFile(segment)
      const piece = data.subarray(offset, offset + n)
      if (segment.encoder) {
        for (const out of segment.encoder.push(piece)) this.put(segment, out, segment.fileBytes)
      } else {
        this.put(segment, piece, inSegment)
      }
      segment.written += n
      offset += n
      position += BigInt(n)
      if (segment.written === segmentSize) await this.completeSegment(segment)
    }
  }

  async flush(): Promise<Lsn> {
    await this.finished()
    const segment = this.current
    if (segment && segment.flushed < segment.written) {
      await this.createFile(segment)
      if (segment.encoder) for (const out of segment.encoder.flush()) this.put(segment, out, segment.fileBytes)
      if (this.sync) {
        this.io(`Cannot fsync WAL file "${this.partialName(segment)}"`, () => fdatasyncSync(segment.fd!))
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

  private startSegment(timeline: number, segno: bigint): OpenSegment {
    const {compression, segmentSize} = this.options
    const segment: OpenSegment = {
      timeline,
      segno,
      name: walFileName(timeline, segno, segmentSize) + this.suffix,
      heldBytes: 0,
      written: 0,
      flushed: 0,
      fileBytes: 0,
      entryDurable: false,
    }
    if ((compression?.algorithm ?? 'none') !== 'none') segment.encoder = createSegmentEncoder(compression!)
    this.current = segment
    return segment
  }

  /** Create (or reopen) the segment's .partial file once the segment before it is final, then write what was held. */
  private async createFile(segment: OpenSegment): Promise<void> {
    if (segment.fd !== undefined) return
    await this.finished()
    const {directory, segmentSize} = this.options
    const path = join(directory, this.partialName(segment))
    const compressed = segment.encoder !== undefined
    segment.fd = this.io(`Cannot open WAL file "${path}"`, () => {
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
    const held = segment.heldBytes
    segment.heldBytes = 0
    if (held > 0) this.put(segment, this.hold!.subarray(0, held), 0)
  }

  /** Write to the file, or hold a copy until the file may exist (held bytes always start the file). */
  private put(segment: OpenSegment, data: Buffer, position: number): void {
    if (data.length === 0) return
    if (segment.fd === undefined) {
      const end = position + data.length
      if (!this.hold || this.hold.length < end) {
        const bigger = Buffer.allocUnsafe(Math.max(end, MAX_HELD_BYTES))
        this.hold?.copy(bigger, 0, 0, segment.heldBytes)
        this.hold = bigger
      }
      data.copy(this.hold, position)
      segment.heldBytes = Math.max(segment.heldBytes, end)
    } else {
      this.io(`Cannot write WAL file "${this.partialName(segment)}"`, () => writeAll(segment.fd!, data, position))
    }
    if (position + data.length > segment.fileBytes) segment.fileBytes = position + data.length
  }

  /** A full segment: fsync, close, rename into place and fsync the directory, in the background. */
  private async completeSegment(segment: OpenSegment): Promise<void> {
    await this.createFile(segment)
    if (segment.encoder) for (const out of segment.encoder.end()) this.put(segment, out, segment.fileBytes)
    this.current = undefined
    const {directory} = this.options
    const fd = segment.fd!
    const partial = join(directory, this.partialName(segment))
    const final = join(directory, segment.name)
    const startLsn = this.segmentStart(segment)
    const endLsn = startLsn + BigInt(this.options.segmentSize)
    const bytes = segment.encoder ? segment.fileBytes : this.options.segmentSize
    this.finishingBusy = true
    const finishing = (async () => {
      try {
        if (this.sync) await this.ioAsync(`Cannot fsync WAL file "${partial}"`, () => fsyncAsync(fd))
      } finally {
        await closeAsync(fd).catch(() => {})
      }
      await this.ioAsync(`Cannot rename "${partial}" to "${final}"`, () => renameAsync(partial, final))
      if (this.sync) await this.ioAsync(`Cannot fsync directory "${directory}"`, async () => this.syncDirectory())
      this.durable = endLsn
      this.options.onSegment?.({file: segment.name, timeline: segment.timeline, startLsn, endLsn, bytes})
    })().finally(() => (this.finishingBusy = false))
    // A failure is raised by the next write(), flush() or close().
    finishing.catch((err) => (this.failure ??= err))
    this.finishing = finishing
  }

  /** An incomplete segment stays .partial; compressed ones get their trailer so they stay readable. */
  private async closeSegment(segment: OpenSegment): Promise<void> {
    this.current = undefined
    await this.createFile(segment)
    if (segment.encoder) for (const out of segment.encoder.end()) this.put(segment, out, segment.fileBytes)
    try {
      this.io(`Cannot fsync WAL file "${this.partialName(segment)}"`, () => {
        if (this.sync) fsyncSync(segment.fd!)
      })
      this.durable = this.segmentStart(segment) + BigInt(segment.written)
    } finally {
      try {
        closeSync(segment.fd!)
      } catch {
        // Closing after a failed write: the error that matters was already raised.
      }
    }
  }

  /** Wait until the completed segment (if any) is final; raise a failure to finish it. */
  private async finished(): Promise<void> {
    if (this.finishing) {
      await this.finishing.catch(() => {})
      this.finishing = undefined
    }
    this.throwIfFailed()
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure
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
